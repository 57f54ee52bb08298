//! One sequence from prompt to finish: chunked prefill, then decode steps, each token
//! sampled, detokenized incrementally and checked against stop conditions.
//!
//! Used by the CLI; the server's engine drives the same pieces (sampler, detokenizer,
//! stop strings) one step at a time for many sequences.

use crate::engine::decoder::Decoder;
use crate::engine::sampler::{SamplingParams, TokenLogprobs};
use crate::output::reasoning::{Markers, Phase};
use crate::prompt::tokenizer::TokenizerError;
use crate::runtime::Runtime;
use candor_models::{ContiguousCache, KvCache, LogitsFor, ModelError, Sequence};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest number of prompt tokens run in one forward pass: bounds the attention
/// score matrices of long prompts.
const PREFILL_CHUNK: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the prompt has {prompt} tokens but the model's context is {context} tokens")]
    ContextLength { prompt: usize, context: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-turn token or a stop string.
    Stop,
    /// max_tokens or the end of the context.
    Length,
    /// The caller asked to stop (a client went away).
    Cancelled,
    /// The request ran past its deadline (`--request-timeout`).
    Timeout,
}

impl FinishReason {
    /// The name OpenAI's API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length | FinishReason::Cancelled | FinishReason::Timeout => "length",
        }
    }
}

/// One generated token, as the caller sees it.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    /// None for the final release of held-back text after the last token.
    pub token: Option<u32>,
    /// Answer text this token released (may be empty: part of a character, held back
    /// because it may begin a stop string or a marker, or thinking).
    pub text: &'a str,
    /// Thinking text this token released (only with [`GenerateParams::reasoning`]).
    pub reasoning: &'a str,
    /// Present when the request asked for logprobs.
    pub logprobs: Option<TokenLogprobs>,
}

#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub sampling: SamplingParams,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// Keep going past end-of-turn tokens (benchmarks).
    pub ignore_eos: bool,
    /// Some(k): report each token's logprob and the k most likely alternatives.
    pub logprobs: Option<usize>,
    /// Separate the thinking from the answer (chat completions of reasoning models).
    pub reasoning: Option<ReasoningParams>,
    /// Past it, the sequence ends (finish reason `Timeout`).
    pub deadline: Option<Instant>,
}

impl GenerateParams {
    /// Plain generation: no stop strings, reasoning, logprobs or deadline.
    pub fn new(sampling: SamplingParams, max_tokens: usize) -> Self {
        Self {
            sampling,
            max_tokens,
            stop: Vec::new(),
            ignore_eos: false,
            logprobs: None,
            reasoning: None,
            deadline: None,
        }
    }
}

/// How a sequence's thinking is followed and bounded.
#[derive(Debug, Clone)]
pub struct ReasoningParams {
    pub markers: Arc<Markers>,
    /// Where the rendered prompt leaves the model.
    pub phase: Phase,
    /// Leave markers and thinking in the answer text (`--reasoning-format raw`).
    pub raw: bool,
    /// Model-generated thinking tokens allowed; then `closing` is inserted.
    pub budget: Option<usize>,
    /// Token ids that end the block when the budget is spent (lead-in and end marker).
    pub closing: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Generated {
    /// The answer (everything, without reasoning params).
    pub text: String,
    pub reasoning: String,
    /// Thinking tokens the model generated.
    pub reasoning_tokens: usize,
    pub tokens: Vec<u32>,
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    /// Prompt tokens found in the session cache and not recomputed.
    pub cached_tokens: usize,
    pub prefill_time: Duration,
    pub decode_time: Duration,
}

impl Generated {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        (self.prompt_tokens - self.cached_tokens) as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    /// Decode speed over the tokens after the first (the first comes from the prefill).
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// A KV cache and the tokens it holds, kept between turns of a chat so that only the new
/// part of each prompt is computed.
pub struct Session {
    cache: ContiguousCache,
    tokens: Vec<u32>,
}

impl Session {
    pub fn new(rt: &Runtime) -> Self {
        Self {
            cache: ContiguousCache::new(rt.model.config().num_layers),
            tokens: Vec::new(),
        }
    }

    /// Keeps the longest cached prefix of `prompt`, leaving at least one token to compute.
    fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        self.cache.truncate(common);
        self.tokens.truncate(common);
        common
    }
}

/// Generates a completion of `prompt`, calling `on_step` for each token; generation
/// ends early (FinishReason::Cancelled) when it returns false.
pub fn generate(
    rt: &Runtime,
    session: &mut Session,
    prompt: &[u32],
    params: &GenerateParams,
    mut on_step: impl FnMut(Step<'_>) -> bool,
) -> Result<Generated, GenerateError> {
    let context = rt.context_length();
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    if prompt.len() >= context {
        return Err(GenerateError::ContextLength {
            prompt: prompt.len(),
            context,
        });
    }
    let model = &rt.model;
    let start = Instant::now();

    // 1. Prefill what the session cache does not hold yet, in chunks.
    let cached = session.reuse_prefix(prompt);
    let mut logits = None;
    for chunk in prompt[cached..].chunks(PREFILL_CHUNK) {
        let start_pos = session.cache.len();
        let last = start_pos + chunk.len() == prompt.len();
        let out = model.forward(&mut [Sequence {
            tokens: chunk,
            start_pos,
            cache: &mut session.cache,
            logits: if last {
                LogitsFor::Last
            } else {
                LogitsFor::None
            },
        }])?;
        session.tokens.extend_from_slice(chunk);
        if last {
            logits = Some(row(&out, rt.vocab_size())?);
        }
    }
    let mut logits = logits.expect("the last prefill chunk asks for logits");
    let prefill_time = start.elapsed();

    // 2. Decode.
    let decode_start = Instant::now();
    let mut decoder = Decoder::new(rt, prompt, params.clone());
    let finish = loop {
        let out = decoder.step(rt, &logits, session.cache.len() + 1, context)?;
        let produced = out.token.is_some() || !out.text.is_empty() || !out.reasoning.is_empty();
        let go_on = if produced {
            on_step(Step {
                token: out.token,
                text: &out.text,
                reasoning: &out.reasoning,
                logprobs: out.logprobs,
            })
        } else {
            true
        };
        if let Some(finish) = out.finish {
            break finish;
        }
        if !go_on {
            decoder.cancel();
            break FinishReason::Cancelled;
        }
        let token = out.token.expect("a sequence that goes on has a new token");
        let start_pos = session.cache.len();
        let out = model.forward(&mut [Sequence {
            tokens: &[token],
            start_pos,
            cache: &mut session.cache,
            logits: LogitsFor::Last,
        }])?;
        session.tokens.push(token);
        logits = row(&out, rt.vocab_size())?;
    };
    Ok(Generated {
        text: decoder.text().to_string(),
        reasoning: decoder.reasoning().to_string(),
        reasoning_tokens: decoder.reasoning_tokens(),
        tokens: decoder.tokens().to_vec(),
        finish,
        prompt_tokens: prompt.len(),
        cached_tokens: cached,
        prefill_time,
        decode_time: decode_start.elapsed(),
    })
}

/// The single row of a (1, vocab) logits tensor, without the padding rows the tokenizer
/// has no token for (they can never be sampled).
pub(crate) fn row(logits: &candor_models::Tensor, vocab: usize) -> Result<Vec<f32>, ModelError> {
    let mut v = logits.squeeze(0)?.to_vec1::<f32>()?;
    v.truncate(vocab);
    Ok(v)
}
