//! What chat and text completions share: turning a validated request into engine
//! submissions, collecting a non-streamed answer, and streaming SSE chunks.

use crate::api::error::ApiError;
use crate::api::server::{AppState, Loaded};
use crate::engine::generate::{FinishReason, GenerateParams};
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

/// Checks the context and queues `n` choices of one prompt.
pub fn submit(
    state: &AppState,
    loaded: &Loaded,
    req: &ValidRequest,
    prompt: Vec<u32>,
    first_index: usize,
    param: &str,
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
            }
        })
        .collect();
    let receivers = loaded.engine.submit(prompt, params).map_err(|e| match e {
        EngineError::QueueFull { .. } => ApiError::overloaded(),
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
        let mut logprobs = Vec::new();
        let usage = loop {
            match choice.events.recv().await {
                Some(Event::Token {
                    text: t,
                    logprobs: lp,
                    ..
                }) => {
                    text.push_str(&t);
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
pub fn usage_json(prompt_tokens: usize, completion_tokens: usize, cached: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

/// A piece of a streamed choice, for the endpoint to shape into its chunk type.
pub enum Delta {
    Text {
        index: usize,
        text: String,
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
    let ttft = usage
        .iter()
        .map(|u| u.time_to_first_token)
        .min()
        .unwrap_or_default();
    let tps = usage
        .iter()
        .map(|u| u.decode_tokens_per_s)
        .fold(0.0, f64::max);
    let finish: Vec<&str> = usage.iter().map(|u| u.finish.as_str()).collect();
    tracing::info!(
        id,
        prompt_tokens = prompt,
        completion_tokens = completion,
        ttft_ms = ttft.as_millis() as u64,
        tokens_per_s = format!("{tps:.1}"),
        finish = finish.join(","),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request done"
    );
}

/// Streams the choices as SSE: `chunk` maps each delta to a JSON chunk, `usage_chunk`
/// makes the final usage chunk (when asked for), then `[DONE]`.
pub fn stream_response(
    id: String,
    tokenizer: Arc<Tokenizer>,
    choices: Vec<Choice>,
    started: Instant,
    chunk: impl Fn(Delta) -> Value + Send + 'static,
    usage_chunk: Option<Box<dyn Fn(Value) -> Value + Send>>,
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
    let body = async_events(id, tokenizer, merged, started, chunk, usage_chunk);
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
        .with_no_buffering()
}

fn async_events(
    id: String,
    tokenizer: Arc<Tokenizer>,
    mut merged: impl Stream<Item = (usize, bool, Event)> + Unpin + Send + 'static,
    started: Instant,
    chunk: impl Fn(Delta) -> Value + Send + 'static,
    usage_chunk: Option<Box<dyn Fn(Value) -> Value + Send>>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
    tokio::spawn(async move {
        let mut usages = Vec::new();
        let mut first_text = std::collections::HashSet::new();
        while let Some((index, _, ev)) = merged.next().await {
            let event = match ev {
                Event::Token { text, logprobs, .. } => {
                    let lp = logprobs.map(|l| {
                        let piece = token_text(&tokenizer, l.token);
                        (l, piece)
                    });
                    if text.is_empty() && lp.is_none() {
                        continue;
                    }
                    let first = first_text.insert(index);
                    chunk(Delta::Text {
                        index,
                        text,
                        logprobs: lp,
                        first,
                    })
                }
                Event::Done(usage) => {
                    let v = chunk(Delta::Finish {
                        index,
                        finish: usage.finish,
                    });
                    usages.push(usage);
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
        if let Some(make) = usage_chunk {
            let completion: usize = usages.iter().map(|u| u.completion_tokens).sum();
            let prompt = usages.first().map_or(0, |u| u.prompt_tokens);
            let cached = usages.first().map_or(0, |u| u.cached_tokens);
            let _ = tx.send(
                SseEvent::default().data(make(usage_json(prompt, completion, cached)).to_string()),
            );
        }
        let _ = tx.send(SseEvent::default().data("[DONE]"));
        log_request(&id, &usages, started);
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
    let completion: usize = results.iter().map(|r| r.usage.completion_tokens).sum();
    let prompt: usize = prompts.iter().sum();
    let cached = results.first().map_or(0, |r| r.usage.cached_tokens);
    usage_json(prompt, completion, cached)
}
