//! A sequence: one choice of one request, from its prompt to its last token. What the
//! scheduler tracks of it ([`Sequence`]: tokens, what is computed, its KV blocks), what
//! arrives to make one ([`SequenceRequest`]), and what it reports back ([`Event`],
//! [`Usage`]).

use crate::engine::params::{FinishReason, GenerateParams};
use crate::engine::sampler::TokenLogprobs;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// A sequence as submitted to the engine thread.
pub struct SequenceRequest {
    pub prompt: Vec<u32>,
    pub params: GenerateParams,
    pub events: UnboundedSender<Event>,
    pub submitted: Instant,
    /// Choices of one request share an id: the later ones wait until the first has
    /// computed the prompt, then take its blocks from the prefix cache.
    pub request: u64,
}

/// A sequence as the scheduler sees it; `P` is what the engine keeps beside it (the
/// sampler, detokenizer and channel), which the scheduler never looks at.
pub struct Sequence<P> {
    /// Arrival order, unique: preemption picks the newest.
    pub id: u64,
    /// The request it is a choice of.
    pub request: u64,
    /// Prompt then generated tokens.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Tokens whose keys and values are in the cache.
    pub computed: usize,
    /// Its KV blocks, in order (empty without the paged pool).
    pub blocks: Vec<u32>,
    /// Chained hashes of the full blocks registered so far.
    pub hashes: Vec<u64>,
    /// Prompt tokens found in the prefix cache at its first admission.
    pub cached_tokens: Option<usize>,
    /// The first prompt token whose logprob is still to be reported, while the request
    /// scores its prompt: the logits before it must be computed, not taken from the
    /// prefix cache.
    pub score_from: Option<usize>,
    pub payload: P,
}

impl<P> Sequence<P> {
    /// Some of the prompt is still to be computed (a decode has one token left).
    pub fn prefilling(&self) -> bool {
        self.computed + 1 < self.tokens.len()
    }
}

/// What a running sequence reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// One generated token (or, with `token: None`, text released at the end).
    Token {
        token: Option<u32>,
        /// Answer text.
        text: String,
        /// Thinking text (only for sequences with reasoning params).
        reasoning: String,
        logprobs: Option<TokenLogprobs>,
    },
    /// Logprobs of prompt tokens, in order, continuing the previous such event (the
    /// first prompt token has none).
    PromptLogprobs(Vec<TokenLogprobs>),
    Done(Usage),
    /// The sequence failed; it is over.
    Error(String),
}

/// Counts and timings of a finished sequence.
#[derive(Debug, Clone)]
pub struct Usage {
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    /// Of the completion tokens, those the model spent thinking.
    pub reasoning_tokens: usize,
    /// From submission to the first token, queueing included.
    pub time_to_first_token: Duration,
    pub decode_tokens_per_s: f64,
}
