//! What a sequence is asked to do (sampling, limits, stop strings, reasoning) and how it
//! can end; the engine's [`crate::engine::output_processor::OutputProcessor`] carries it
//! out step by step.

use crate::constraint::Constraint;
use crate::engine::sampler::SamplingParams;
use crate::prompt::tokenizer::TokenizerError;
use crate::reasoning::ReasoningParams;
use candor_models::ModelError;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("structured output: {0}")]
    Constraint(String),
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

#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub sampling: SamplingParams,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// Keep going past end-of-turn tokens (benchmarks).
    pub ignore_eos: bool,
    /// Some(k): report each token's logprob and the k most likely alternatives.
    pub logprobs: Option<usize>,
    /// Some(k): also report the logprob and k alternatives of every prompt token after the
    /// first, as the model predicts it from the tokens before (scoring, `echo`).
    pub prompt_logprobs: Option<usize>,
    /// Separate the thinking from the answer (chat completions of reasoning models).
    pub reasoning: Option<ReasoningParams>,
    /// Past it, the sequence ends (finish reason `Timeout`).
    pub deadline: Option<Instant>,
    /// What the answer must match (structured output); the thinking stays free.
    pub constraint: Option<Constraint>,
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
            prompt_logprobs: None,
            reasoning: None,
            deadline: None,
            constraint: None,
        }
    }
}
