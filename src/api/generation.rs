//! What chat and text completions share between a built prompt and a response:
//! submitting a prompt's `n` choices to the engine, waiting for a non-streamed answer,
//! the usage totals and the log line of a finished request. Streaming is [`super::sse`]'s.

use crate::api::admission::{ClientId, ClientPermit};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::constraint::Constraint;
use crate::engine::params::GenerateParams;
use crate::engine::sampler::TokenLogprobs;
use crate::engine::{EngineError, Event, PromptChoices, Usage};
use crate::loaded_model::LoadedModel;
use crate::openai;
use crate::prompt::tokenizer::Tokenizer;
use crate::prompt::Prompt;
use crate::validate::{Input, ValidRequest};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

/// One choice of a response: the events of the sequence that generates it.
pub struct ChoiceStream {
    /// Its index in the response's `choices`.
    pub index: usize,
    pub events: UnboundedReceiver<Event>,
    /// The client's places in the queue, given back when the request's last choice is
    /// dropped.
    pub held: Arc<ClientPermit>,
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

/// The prompts of one request, ready to run.
pub struct Submission<'a> {
    pub valid: &'a ValidRequest,
    /// Each is answered with `n` choices, numbered prompt by prompt.
    pub prompts: Vec<Prompt>,
    /// The request field the prompts came from (`messages`, `prompt`), for errors.
    pub param: &'static str,
    /// Who sent it, for its share of the queue.
    pub client: &'a ClientId,
    /// When the request arrived: its deadline counts from here.
    pub started: Instant,
    /// The state every choice's grammar starts from (structured output).
    pub constraint: Option<Constraint>,
}

/// Compiles the request's grammar for this model, if it has one: a grammar llguidance
/// cannot compile is a 400 naming the field it came from.
pub fn constraint(lm: &LoadedModel, valid: &ValidRequest) -> Result<Option<Constraint>, ApiError> {
    let Some(g) = &valid.grammar else {
        return Ok(None);
    };
    let grammars = lm
        .grammars()
        .map_err(|e| ApiError::internal(format!("structured output is unavailable: {e}")))?;
    grammars.compile(&g.grammar).map(Some).map_err(|e| {
        ApiError::bad_request(format!("'{}' cannot be used: {e}", g.param), Some(&g.param))
    })
}

/// Queues the `n` choices of every prompt at once, or none.
pub fn submit(state: &AppState, s: Submission) -> Result<Vec<ChoiceStream>, ApiError> {
    let loaded = state.loaded()?;
    let req = s.valid;
    // The field to name when there are too many sequences: `n` when it alone is at fault.
    let count_param = if s.prompts.len() > 1 { s.param } else { "n" };
    let held = state
        .clients
        .acquire(s.client, s.prompts.len() * req.n)
        .map_err(|e| ApiError::client_refused(e, count_param))?;
    let context = state.context_length(&loaded.model);
    let deadline = state.config.request_timeout.map(|t| s.started + t);
    // An echoed prompt with logprobs carries the logprobs of its own tokens.
    let prompt_logprobs = match req.input {
        Input::Completion { echo: true, .. } => req.logprobs,
        _ => None,
    };
    let prompts = s
        .prompts
        .into_iter()
        .map(|prompt| {
            let max_tokens = req
                .max_tokens
                .unwrap_or(context.saturating_sub(prompt.ids.len()));
            let params = (0..req.n)
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
                        prompt_logprobs,
                        reasoning: prompt.reasoning.clone(),
                        deadline,
                        constraint: s.constraint.clone(),
                    }
                })
                .collect();
            PromptChoices {
                prompt: prompt.ids,
                params,
            }
        })
        .collect();
    let receivers = loaded
        .engine
        .submit_all(prompts, req.max_tokens.is_some())
        .map_err(|e| match e {
            EngineError::TooManyChoices { .. } => ApiError::engine(e, count_param),
            e => ApiError::engine(e, s.param),
        })?;
    let held = Arc::new(held);
    Ok(receivers
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, events)| ChoiceStream {
            index,
            events,
            held: held.clone(),
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
    /// The logprobs of the prompt's tokens after the first, when asked for.
    pub prompt_logprobs: Vec<TokenLogprobs>,
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
        let mut prompt_logprobs = Vec::new();
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
                Some(Event::PromptLogprobs(lps)) => prompt_logprobs.extend(lps),
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
            prompt_logprobs,
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
