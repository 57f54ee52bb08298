//! What chat and text completions share between a built prompt and a response:
//! submitting a prompt's `n` choices to the engine, waiting for a non-streamed answer,
//! the usage totals and the log line of a finished request. Streaming is [`super::sse`]'s.

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::engine::params::GenerateParams;
use crate::engine::sampler::TokenLogprobs;
use crate::engine::{Event, Usage};
use crate::openai;
use crate::prompt::tokenizer::Tokenizer;
use crate::prompt::Prompt;
use crate::validate::ValidRequest;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

/// One choice of a response: the events of the sequence that generates it.
pub struct ChoiceStream {
    /// Its index in the response's `choices`.
    pub index: usize,
    pub events: UnboundedReceiver<Event>,
}

/// What every response or chunk starts with: `id`, `created`, `model`.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Envelope {
    pub fn new(id_prefix: &str, model: &str) -> Self {
        Self {
            id: openai::new_id(id_prefix),
            created: openai::unix_now(),
            model: model.to_string(),
        }
    }
}

/// One prompt of a request, ready to run.
pub struct Submission<'a> {
    pub valid: &'a ValidRequest,
    pub prompt: Prompt,
    /// Index of the first of its `n` choices in the response.
    pub first_index: usize,
    /// The request field the prompt came from (`messages`, `prompt`), for errors.
    pub param: &'static str,
    /// When the request arrived: its deadline counts from here.
    pub started: Instant,
}

/// Queues the `n` choices of one prompt at once, or none.
pub fn submit(state: &AppState, s: Submission) -> Result<Vec<ChoiceStream>, ApiError> {
    let loaded = state.loaded()?;
    let req = s.valid;
    let context = state.context_length(&loaded.model);
    let max_tokens = req
        .max_tokens
        .unwrap_or(context.saturating_sub(s.prompt.ids.len()));
    let deadline = state.config.request_timeout.map(|t| s.started + t);
    let params: Vec<GenerateParams> = (0..req.n)
        .map(|i| {
            let mut sampling = req.sampling.clone();
            // Independent choices: each its own stream of random numbers.
            sampling.seed = sampling.seed.map(|seed| seed.wrapping_add(i as u64));
            GenerateParams {
                sampling,
                max_tokens,
                stop: req.stop.clone(),
                ignore_eos: req.ignore_eos,
                logprobs: req.logprobs,
                reasoning: s.prompt.reasoning.clone(),
                deadline,
            }
        })
        .collect();
    let receivers = loaded
        .engine
        .submit(s.prompt.ids, params, req.max_tokens.is_some())
        .map_err(|e| ApiError::engine(e, s.param))?;
    Ok(receivers
        .into_iter()
        .enumerate()
        .map(|(i, events)| ChoiceStream {
            index: s.first_index + i,
            events,
        })
        .collect())
}

/// The full output of one choice.
pub struct Collected {
    pub index: usize,
    pub text: String,
    pub reasoning: String,
    /// Each generated token's logprobs with the token's text.
    pub logprobs: Vec<(TokenLogprobs, String)>,
    pub usage: Usage,
}

/// Waits for every choice to finish.
pub async fn collect(
    tokenizer: &Tokenizer,
    choices: Vec<ChoiceStream>,
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

/// The text of one token, as logprobs show it.
pub fn token_text(tokenizer: &Tokenizer, id: u32) -> String {
    tokenizer.decode(&[id], false).unwrap_or_default()
}

/// OpenAI's usage over all choices: `prompt_tokens` counts each prompt once, cached
/// tokens are the first choice's (the others reuse its prompt).
pub fn total_usage(prompt_tokens: usize, usages: &[&Usage]) -> openai::Usage {
    let completion: usize = usages.iter().map(|u| u.completion_tokens).sum();
    let reasoning: usize = usages.iter().map(|u| u.reasoning_tokens).sum();
    let cached = usages.first().map_or(0, |u| u.cached_tokens);
    openai::Usage {
        prompt_tokens,
        completion_tokens: completion,
        total_tokens: prompt_tokens + completion,
        prompt_tokens_details: openai::PromptTokensDetails {
            cached_tokens: cached,
        },
        completion_tokens_details: openai::CompletionTokensDetails {
            reasoning_tokens: reasoning,
        },
    }
}

/// Logs one line per finished request.
pub fn log_request(id: &str, usage: &[&Usage], started: Instant) {
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
