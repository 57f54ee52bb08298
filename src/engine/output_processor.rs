//! One sequence's output side, one token at a time: given the logits of its last position,
//! pick the next token (sampled, or inserted by a spent thinking budget), turn it into text
//! (incremental detokenization, the reasoning splitter, stop strings) and decide whether
//! the sequence goes on.
//!
//! It holds no model state: the engine thread ([`super::worker`]) drives it after each
//! forward pass, and the events it sends carry the text; the processor keeps none of it.

use crate::engine::params::{FinishReason, GenerateError, GenerateParams};
use crate::engine::sampler::{logprobs, Sampler, TokenLogprobs};
use crate::loaded_model::LoadedModel;
use crate::output::detokenizer::{Detokenizer, DetokenizerOptions};
use crate::output::stop::StopStrings;
use crate::reasoning::{Phase, ReasoningSplitter};
use std::collections::VecDeque;
use std::time::Instant;

/// What one call to [`OutputProcessor::step`] produced.
#[derive(Debug, Clone, Default)]
pub struct Emitted {
    /// The token appended to the sequence; None when the step ended it without one
    /// (an end-of-turn token, the deadline).
    pub token: Option<u32>,
    /// Answer text released by this step.
    pub text: String,
    /// Thinking text released by this step.
    pub reasoning: String,
    pub logprobs: Option<TokenLogprobs>,
    /// Set when the sequence is over.
    pub finish: Option<FinishReason>,
}

pub struct OutputProcessor {
    params: GenerateParams,
    sampler: Sampler,
    detok: Detokenizer,
    stops: StopStrings,
    splitter: Option<ReasoningSplitter>,
    forced: VecDeque<u32>,
    budget_spent: bool,
    /// Generated tokens, inserted ones included.
    tokens: Vec<u32>,
    finish: Option<FinishReason>,
    /// Scratch: the logits with what the grammar forbids at minus infinity.
    masked: Vec<f32>,
}

impl OutputProcessor {
    pub fn new(lm: &LoadedModel, prompt: &[u32], params: GenerateParams) -> Self {
        let splitter = params
            .reasoning
            .as_ref()
            .map(|r| ReasoningSplitter::new(r.markers.clone(), r.phase, r.raw));
        Self {
            sampler: Sampler::new(params.sampling.clone(), prompt),
            detok: Detokenizer::new(lm.tokenizer.clone(), DetokenizerOptions::default()),
            stops: StopStrings::new(params.stop.clone()),
            splitter,
            forced: VecDeque::new(),
            budget_spent: false,
            tokens: Vec::new(),
            finish: None,
            masked: Vec::new(),
            params,
        }
    }

    /// Some(k): the prompt's logprobs are wanted, each with k alternatives.
    pub fn prompt_logprobs(&self) -> Option<usize> {
        self.params.prompt_logprobs
    }

    /// Generated tokens so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn reasoning_tokens(&self) -> usize {
        self.splitter.as_ref().map_or(0, |s| s.reasoning_tokens())
    }

    /// Takes the logits of the sequence's last position; `cached` is the number of tokens
    /// the sequence's KV cache will hold once the returned token is fed back, and
    /// `context` the most it may hold.
    pub fn step(
        &mut self,
        lm: &LoadedModel,
        logits: &[f32],
        cached: usize,
        context: usize,
    ) -> Result<Emitted, GenerateError> {
        assert!(self.finish.is_none(), "step after the sequence finished");
        if self.params.deadline.is_some_and(|d| Instant::now() >= d) {
            return self.end(FinishReason::Timeout);
        }
        if self.params.max_tokens == 0 {
            // Scoring a prompt (`echo` with `max_tokens: 0`): nothing to generate.
            return self.end(FinishReason::Length);
        }
        if let (Some(r), Some(sp)) = (&self.params.reasoning, &self.splitter) {
            let over = r.budget.is_some_and(|b| sp.reasoning_tokens() >= b);
            if over && !self.budget_spent && sp.phase() == Phase::Thinking {
                // Close the block as if the model had: lead-in, end marker, newlines.
                self.budget_spent = true;
                self.forced.extend(&r.closing);
            }
        }
        let (token, is_forced, constrained) = match self.forced.pop_front() {
            Some(t) => (t, true, false),
            None => {
                let (t, constrained) = self.sample(logits)?;
                (t, false, constrained)
            }
        };
        if !is_forced && !self.params.ignore_eos && lm.eos_ids.contains(&token) {
            return self.end(FinishReason::Stop);
        }
        let mut grammar_done = false;
        if let (true, Some(c)) = (constrained, &mut self.params.constraint) {
            c.consume(token).map_err(GenerateError::Constraint)?;
            grammar_done = c.is_finished();
        }
        self.sampler.accept(token);
        self.tokens.push(token);
        let lp = self.params.logprobs.map(|k| logprobs(logits, token, k));
        let piece = self.detok.push(token)?.unwrap_or_default();
        let (thought, answer) = match &mut self.splitter {
            Some(sp) => {
                let split = sp.push(Some(token), &piece, is_forced);
                (split.reasoning, split.content)
            }
            None => (String::new(), piece),
        };
        let mut out = Emitted {
            token: Some(token),
            logprobs: lp,
            ..Emitted::default()
        };
        let mut stopped = false;
        if !answer.is_empty() {
            let scan = self.stops.push(&answer);
            out.text = scan.text;
            stopped = scan.stopped;
        }
        out.reasoning = thought;
        if grammar_done && !stopped {
            // The grammar allows nothing more: the answer is complete.
            let rest = self.end(FinishReason::Stop)?;
            out.text.push_str(&rest.text);
            out.reasoning.push_str(&rest.reasoning);
            out.finish = rest.finish;
        } else if stopped {
            // The stop string ends the answer: nothing held back is released.
            self.finish = Some(FinishReason::Stop);
            out.finish = self.finish;
        } else if self.tokens.len() >= self.params.max_tokens || cached + 1 > context {
            let rest = self.end(FinishReason::Length)?;
            out.text.push_str(&rest.text);
            out.reasoning.push_str(&rest.reasoning);
            out.finish = rest.finish;
        }
        Ok(out)
    }

    /// Samples the next token; under a grammar, from the tokens it allows. Returns the
    /// token and whether the grammar chose among them (it is then to be consumed). The
    /// thinking is free: a sequence that is thinking samples from all the logits, and
    /// one that may still open its block may always choose the start marker.
    fn sample(&mut self, logits: &[f32]) -> Result<(u32, bool), GenerateError> {
        let phase = self.splitter.as_ref().map(|s| s.phase());
        let Some(constraint) = &mut self.params.constraint else {
            return Ok((self.sampler.sample(logits), false));
        };
        if phase == Some(Phase::Thinking) {
            return Ok((self.sampler.sample(logits), false));
        }
        let start = match phase {
            Some(Phase::Undecided) => self
                .params
                .reasoning
                .as_ref()
                .and_then(|r| r.markers.start_id),
            _ => None,
        };
        self.masked.clear();
        self.masked.extend_from_slice(logits);
        constraint
            .mask(&mut self.masked, start)
            .map_err(GenerateError::Constraint)?;
        let token = self.sampler.sample(&self.masked);
        Ok((token, start != Some(token)))
    }

    /// Ends the sequence at its deadline, outside a step (waiting, or between steps).
    pub fn expire(&mut self) -> Result<Emitted, GenerateError> {
        self.end(FinishReason::Timeout)
    }

    /// Ends the sequence for a reason decided outside (the client went away).
    pub fn cancel(&mut self) {
        self.finish = Some(FinishReason::Cancelled);
    }

    /// Ends the sequence, releasing what the detokenizer, splitter and stop scanner hold.
    fn end(&mut self, finish: FinishReason) -> Result<Emitted, GenerateError> {
        self.finish = Some(finish);
        let piece = self.detok.finish()?.unwrap_or_default();
        let (mut thought, mut answer) = (String::new(), piece.clone());
        if let Some(sp) = &mut self.splitter {
            let a = sp.push(None, &piece, true);
            let b = sp.finish();
            thought = a.reasoning + &b.reasoning;
            answer = a.content + &b.content;
        }
        let scan = self.stops.push(&answer);
        let mut rest = scan.text;
        if !scan.stopped {
            rest.push_str(&self.stops.finish());
        }
        Ok(Emitted {
            token: None,
            text: rest,
            reasoning: thought,
            logprobs: None,
            finish: Some(finish),
        })
    }
}
