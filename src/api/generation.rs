//! What chat and text completions share: turning a validated request into engine
//! submissions, collecting a non-streamed answer, and streaming SSE chunks.

use crate::api::error::ApiError;
use crate::api::openai;
use crate::api::server::{AppState, Loaded};
use crate::engine::params::{FinishReason, GenerateParams, ReasoningParams};
use crate::engine::sampler::TokenLogprobs;
use crate::engine::{EngineError, Event, Usage};
use crate::prompt::tokenizer::Tokenizer;
use crate::validate::ValidRequest;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

/// One choice's events, tagged with its index in the response.
pub struct Choice {
    pub index: usize,
    pub events: UnboundedReceiver<Event>,
}

/// What a response looks like around its choices: `id`, `created`, `model`.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// `system_fingerprint` of every response.
pub const FINGERPRINT: &str = concat!("candor-", env!("CARGO_PKG_VERSION"));

impl Envelope {
    pub fn new(id_prefix: &str, model: &str) -> Self {
        Self {
            id: openai::new_id(id_prefix),
            created: crate::api::server::unix_now(),
            model: model.to_string(),
        }
    }

    /// A response or chunk with these choices (and usage, when given).
    pub fn wrap(&self, object: &str, choices: Vec<Value>, usage: Option<Value>) -> Value {
        let mut v = json!({"id": self.id, "object": object, "created": self.created,
            "model": self.model, "system_fingerprint": FINGERPRINT,
            "choices": choices});
        if let Some(usage) = usage {
            v["usage"] = usage;
        }
        v
    }
}

/// Checks the context and queues `n` choices of one prompt.
#[allow(clippy::too_many_arguments)]
pub fn submit(
    state: &AppState,
    loaded: &Loaded,
    req: &ValidRequest,
    prompt: Vec<u32>,
    first_index: usize,
    param: &str,
    reasoning: Option<ReasoningParams>,
    started: Instant,
) -> Result<Vec<Choice>, ApiError> {
    let context = state.context_length(&loaded.runtime);
    let wanted = prompt.len() + req.max_tokens.unwrap_or(1);
    if prompt.len() >= context || wanted > context {
        return Err(ApiError::context_length_exceeded(
            param,
            prompt.len(),
            req.max_tokens,
            context,
        ));
    }
    let max_tokens = req.max_tokens.unwrap_or(context - prompt.len());
    let params: Vec<GenerateParams> = (0..req.n)
        .map(|i| {
            let mut sampling = req.sampling.clone();
            // Independent choices: each its own stream of random numbers.
            sampling.seed = sampling.seed.map(|s| s.wrapping_add(i as u64));
            GenerateParams {
                sampling,
                max_tokens,
                stop: req.stop.clone(),
                ignore_eos: req.ignore_eos,
                logprobs: req.logprobs,
                reasoning: reasoning.clone(),
                deadline: state.config.request_timeout.map(|t| started + t),
            }
        })
        .collect();
    let receivers = loaded
        .engine
        .submit(prompt, params, req.max_tokens.is_some())
        .map_err(|e| match e {
            EngineError::QueueFull { .. } => ApiError::overloaded(),
            EngineError::TooLarge { .. } | EngineError::EmptyPrompt => {
                ApiError::bad_request(e.to_string(), Some(param))
            }
            EngineError::TooManyChoices { .. } => ApiError::bad_request(e.to_string(), Some("n")),
            EngineError::Stopped => ApiError::internal("the engine has stopped"),
        })?;
    Ok(receivers
        .into_iter()
        .enumerate()
        .map(|(i, events)| Choice {
            index: first_index + i,
            events,
        })
        .collect())
}

/// The full output of one choice.
pub struct Collected {
    pub index: usize,
    pub text: String,
    pub reasoning: String,
    pub logprobs: Vec<(TokenLogprobs, String)>,
    pub usage: Usage,
}

/// Waits for every choice to finish.
pub async fn collect(
    tokenizer: &Tokenizer,
    choices: Vec<Choice>,
) -> Result<Vec<Collected>, ApiError> {
    let mut out = Vec::with_capacity(choices.len());
    for mut choice in choices {
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut logprobs = Vec::new();
        let usage = loop {
            match choice.events.recv().await {
                Some(Event::Token {
                    text: t,
                    reasoning: r,
                    logprobs: lp,
                    ..
                }) => {
                    text.push_str(&t);
                    reasoning.push_str(&r);
                    if let Some(lp) = lp {
                        let piece = token_text(tokenizer, lp.token);
                        logprobs.push((lp, piece));
                    }
                }
                Some(Event::Done(usage)) => break usage,
                Some(Event::Error(e)) => return Err(ApiError::internal(e)),
                None => return Err(ApiError::internal("the engine dropped the request")),
            }
        };
        out.push(Collected {
            index: choice.index,
            text,
            reasoning,
            logprobs,
            usage,
        });
    }
    Ok(out)
}

pub fn token_text(tokenizer: &Tokenizer, id: u32) -> String {
    tokenizer.decode(&[id], false).unwrap_or_default()
}

/// OpenAI's usage object over all choices (the prompt counted once per prompt).
pub fn usage_json(prompt_tokens: usize, cached: usize, usages: &[&Usage]) -> Value {
    let completion: usize = usages.iter().map(|u| u.completion_tokens).sum();
    let reasoning: usize = usages.iter().map(|u| u.reasoning_tokens).sum();
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    })
}

/// A piece of a streamed choice, for the endpoint to shape into its chunk type.
pub enum Delta {
    Text {
        index: usize,
        text: String,
        /// Thinking text (empty unless the sequence separates it and it is shown).
        reasoning: String,
        logprobs: Option<(TokenLogprobs, String)>,
        first: bool,
    },
    Finish {
        index: usize,
        finish: FinishReason,
    },
}

/// Logs one line per finished request.
pub fn log_request(id: &str, usage: &[Usage], started: Instant) {
    let prompt: usize = usage.iter().map(|u| u.prompt_tokens).sum();
    let completion: usize = usage.iter().map(|u| u.completion_tokens).sum();
    let reasoning: usize = usage.iter().map(|u| u.reasoning_tokens).sum();
    let ttft = usage
        .iter()
        .map(|u| u.time_to_first_token)
        .min()
        .unwrap_or_default();
    let tps = usage
        .iter()
        .map(|u| u.decode_tokens_per_s)
        .fold(0.0, f64::max);
    let finish: Vec<String> = usage
        .iter()
        .map(|u| format!("{:?}", u.finish).to_lowercase())
        .collect();
    tracing::info!(
        id,
        prompt_tokens = prompt,
        completion_tokens = completion,
        reasoning_tokens = reasoning,
        ttft_ms = ttft.as_millis() as u64,
        tokens_per_s = format!("{tps:.1}"),
        finish = finish.join(","),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request done"
    );
}

/// How a stream is shaped.
pub struct StreamShape {
    pub envelope: Envelope,
    /// `object` of each chunk.
    pub object: &'static str,
    /// Send the thinking (else it is dropped; it still counts in usage).
    pub show_reasoning: bool,
    /// A last chunk with `choices: []` and `usage`.
    pub include_usage: bool,
    /// Prompt tokens of the request (each prompt counted once).
    pub prompt_tokens: usize,
}

/// Streams the choices as SSE: `choice` maps each delta to one choice object of a chunk;
/// the usage chunk follows when asked for, then `[DONE]`.
pub fn stream_response(
    shape: StreamShape,
    tokenizer: Arc<Tokenizer>,
    choices: Vec<Choice>,
    started: Instant,
    choice: impl Fn(Delta) -> Value + Send + 'static,
) -> Response {
    let streams = choices.into_iter().map(|c| {
        let index = c.index;
        stream::unfold((c.events, true), move |(mut rx, first)| async move {
            let ev = rx.recv().await?;
            Some(((index, first, ev), (rx, false)))
        })
        .boxed()
    });
    let merged = stream::select_all(streams);
    let body = async_events(shape, tokenizer, merged, started, choice);
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
        .with_no_buffering()
}

fn async_events(
    shape: StreamShape,
    tokenizer: Arc<Tokenizer>,
    mut merged: impl Stream<Item = (usize, bool, Event)> + Unpin + Send + 'static,
    started: Instant,
    choice: impl Fn(Delta) -> Value + Send + 'static,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    let envelope = shape.envelope.clone();
    let (object, show_reasoning, include_usage, prompt_tokens) = (
        shape.object,
        shape.show_reasoning,
        shape.include_usage,
        shape.prompt_tokens,
    );
    let chunk = move |d: Delta| shape.envelope.wrap(object, vec![choice(d)], None);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
    tokio::spawn(async move {
        let mut usages = Vec::new();
        let mut first_text = std::collections::HashSet::new();
        while let Some((index, _, ev)) = merged.next().await {
            let event = match ev {
                Event::Token {
                    text,
                    mut reasoning,
                    logprobs,
                    ..
                } => {
                    let lp = logprobs.map(|l| {
                        let piece = token_text(&tokenizer, l.token);
                        (l, piece)
                    });
                    if !show_reasoning {
                        reasoning.clear();
                    }
                    if text.is_empty() && reasoning.is_empty() && lp.is_none() {
                        continue;
                    }
                    let first = first_text.insert(index);
                    chunk(Delta::Text {
                        index,
                        text,
                        reasoning,
                        logprobs: lp,
                        first,
                    })
                }
                Event::Done(usage) => {
                    let v = chunk(Delta::Finish {
                        index,
                        finish: usage.finish,
                    });
                    usages.push((index, usage));
                    v
                }
                Event::Error(e) => serde_json::to_value(ApiError::internal(e).body())
                    .expect("an error body serializes"),
            };
            if tx
                .send(SseEvent::default().data(event.to_string()))
                .is_err()
            {
                // The client went away: dropping `merged` cancels every choice.
                return;
            }
        }
        usages.sort_by_key(|(i, _)| *i);
        let usages: Vec<Usage> = usages.into_iter().map(|(_, u)| u).collect();
        if include_usage {
            // As the non-streamed total: cached tokens of the first choice.
            let cached = usages.first().map_or(0, |u| u.cached_tokens);
            let usage = usage_json(prompt_tokens, cached, &usages.iter().collect::<Vec<_>>());
            let last = envelope.wrap(object, Vec::new(), Some(usage));
            let _ = tx.send(SseEvent::default().data(last.to_string()));
        }
        let _ = tx.send(SseEvent::default().data("[DONE]"));
        log_request(&envelope.id, &usages, started);
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    rx: tokio::sync::mpsc::UnboundedReceiver<SseEvent>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

trait NoBuffering {
    fn with_no_buffering(self) -> Response;
}

impl NoBuffering for Response {
    /// Tells reverse proxies (nginx) not to hold back the stream.
    fn with_no_buffering(mut self) -> Response {
        let h = self.headers_mut();
        h.insert("x-accel-buffering", "no".parse().expect("valid header"));
        h.insert(
            axum::http::header::CACHE_CONTROL,
            "no-cache".parse().expect("valid header"),
        );
        self
    }
}

/// Turns a collected result list into usage counts (prompt counted once per prompt).
pub fn total_usage(results: &[Collected], prompts: &[usize]) -> Value {
    let prompt: usize = prompts.iter().sum();
    let cached = results.first().map_or(0, |r| r.usage.cached_tokens);
    let usages: Vec<&Usage> = results.iter().map(|r| &r.usage).collect();
    usage_json(prompt, cached, &usages)
}
