//! The engine thread's loop: take new sequences, drop those whose client left or whose
//! deadline passed, let the [`Scheduler`] decide a step, run it with the [`Runner`], and
//! turn each sequence's logits into its next token and events through its
//! [`OutputProcessor`]. Gauges and counters go to [`Metrics`] as it goes.

use crate::engine::metrics::Metrics;
use crate::engine::output_processor::{Emitted, OutputProcessor};
use crate::engine::params::FinishReason;
use crate::engine::runner::{EntryLogits, Runner};
use crate::engine::sampler::{logprobs, TokenLogprobs};
use crate::engine::scheduler::{Scheduler, Step};
use crate::engine::sequence::{Event, Sequence, SequenceRequest, Usage};
use crate::loaded_model::LoadedModel;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What the engine keeps beside each sequence: where its output goes and its timings.
pub struct SequenceRun {
    pub processor: OutputProcessor,
    pub events: UnboundedSender<Event>,
    pub submitted: Instant,
    /// Past it, the sequence ends (finish reason `Timeout`).
    pub deadline: Option<Instant>,
    pub first_token: Option<Instant>,
    pub last_token: Option<Instant>,
}

pub struct Worker {
    pub lm: Arc<LoadedModel>,
    pub scheduler: Scheduler<SequenceRun>,
    pub runner: Runner,
    /// Sequences submitted and not finished, shared with the handles (the queue bound).
    pub pending: Arc<AtomicUsize>,
    pub metrics: Arc<Metrics>,
    /// Most tokens a sequence may use.
    pub context: usize,
}

impl Worker {
    /// Runs until every handle is dropped and the work is done.
    pub fn run(mut self, requests: mpsc::Receiver<SequenceRequest>) {
        loop {
            if self.scheduler.is_idle() {
                self.publish_gauges();
                match requests.recv() {
                    Ok(r) => self.enqueue(r),
                    Err(_) => return,
                }
            }
            while let Ok(r) = requests.try_recv() {
                self.enqueue(r);
            }
            self.drop_cancelled();
            for a in self.scheduler.admit() {
                self.metrics.add_prompt(a.prompt_tokens);
                self.metrics
                    .add_prefix_lookup(a.prompt_tokens, a.cached_tokens);
            }
            self.publish_gauges();
            if self.scheduler.running().is_empty() {
                // Nothing fits yet (cannot happen with an empty batch unless the pool is
                // smaller than one prompt, refused at submission); avoid spinning.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            self.step();
            self.publish_gauges();
        }
    }

    fn enqueue(&mut self, r: SequenceRequest) {
        let run = SequenceRun {
            processor: OutputProcessor::new(&self.lm, &r.prompt, r.params.clone()),
            events: r.events,
            submitted: r.submitted,
            deadline: r.params.deadline,
            first_token: None,
            last_token: None,
        };
        let score_prompt = r.params.prompt_logprobs.is_some();
        self.scheduler
            .enqueue(r.request, r.prompt, score_prompt, run);
    }

    fn publish_gauges(&self) {
        let m = &self.metrics;
        m.running
            .store(self.scheduler.running().len() as u64, Ordering::Relaxed);
        m.waiting
            .store(self.scheduler.waiting_len() as u64, Ordering::Relaxed);
        let st = self.scheduler.block_stats();
        m.kv_blocks_used.store(st.used as u64, Ordering::Relaxed);
        m.kv_blocks_cached
            .store(st.cached as u64, Ordering::Relaxed);
        m.kv_blocks_free.store(st.free as u64, Ordering::Relaxed);
    }

    /// Reports a sequence that left the batch (its blocks already released).
    fn finished(&mut self, s: Sequence<SequenceRun>, finish: FinishReason) {
        // Before Done reaches the client, so that /metrics and the queue bound seen after
        // it are current.
        self.publish_gauges();
        let run = &s.payload;
        let p = &run.processor;
        self.metrics.add_reasoning(p.reasoning_tokens());
        self.metrics
            .requests_finished
            .fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_sub(1, Ordering::AcqRel);
        if finish != FinishReason::Cancelled || !run.events.is_closed() {
            let generated = p.tokens().len();
            let decode_time = match (run.first_token, run.last_token) {
                (Some(a), Some(b)) => b - a,
                _ => Duration::ZERO,
            };
            let usage = Usage {
                finish,
                prompt_tokens: s.prompt_len,
                cached_tokens: s.cached_tokens.unwrap_or(0),
                completion_tokens: generated,
                reasoning_tokens: p.reasoning_tokens(),
                time_to_first_token: run.first_token.unwrap_or_else(Instant::now) - run.submitted,
                decode_tokens_per_s: generated.saturating_sub(1) as f64
                    / decode_time.as_secs_f64().max(1e-9),
            };
            let _ = run.events.send(Event::Done(usage));
        }
    }

    fn failed(&mut self, s: Sequence<SequenceRun>, message: &str) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        let _ = s.payload.events.send(Event::Error(message.to_string()));
    }

    /// Sequences whose client went away leave at once, freeing their blocks; those past
    /// their deadline end with what they hold back released.
    fn drop_cancelled(&mut self) {
        let now = Instant::now();
        let gone = self.scheduler.remove_where(|s| {
            s.payload.events.is_closed() || s.payload.deadline.is_some_and(|d| now >= d)
        });
        for (mut s, was_running) in gone {
            if s.payload.events.is_closed() {
                if was_running {
                    s.payload.processor.cancel();
                }
                self.finished(s, FinishReason::Cancelled);
                continue;
            }
            match s.payload.processor.expire() {
                Ok(out) => {
                    send(&s.payload.events, out);
                    self.finished(s, FinishReason::Timeout);
                }
                Err(e) => self.failed(s, &e.to_string()),
            }
        }
    }

    fn step(&mut self) {
        let step = self.scheduler.schedule();
        self.metrics
            .preemptions
            .fetch_add(step.preempted as u64, Ordering::Relaxed);
        if step.batch.is_empty() && step.copies.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = self.runner.run(&step, self.scheduler.running());
        if step.batch.is_empty() {
            return;
        }
        self.metrics.steps.fetch_add(1, Ordering::Relaxed);
        if tracing::enabled!(tracing::Level::DEBUG) {
            self.log_step(&step, started);
        }
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("forward pass failed: {e}");
                // Fail the sequences of this step; their caches may be half written.
                let mut idx: Vec<usize> = step.batch.iter().map(|&(i, _)| i).collect();
                idx.sort_unstable_by_key(|&i| std::cmp::Reverse(i));
                for i in idx {
                    let s = self.scheduler.finish(i, false);
                    self.failed(s, &e);
                }
                return;
            }
        };
        self.scheduler.complete(&step);
        let finished = self.emit(&step, rows);
        for (i, how) in finished {
            let keep_partial = how.is_ok();
            let s = self.scheduler.finish(i, keep_partial);
            match how {
                Ok(f) => self.finished(s, f),
                Err(e) => self.failed(s, &e),
            }
        }
    }

    /// Reports the prompt logprobs a step computed, then steps the output processors of
    /// the sequences that got the logits of their last token; returns those that ended
    /// (index in the batch, how), highest index first.
    fn emit(
        &mut self,
        step: &Step,
        logits: Vec<EntryLogits>,
    ) -> Vec<(usize, Result<FinishReason, String>)> {
        let mut finished = Vec::new();
        let (lm, context, metrics) = (&self.lm, self.context, &self.metrics);
        for (&(i, _), entry) in step.batch.iter().zip(logits) {
            let s = &mut self.scheduler.running_mut()[i];
            if let Some(scored) = score_prompt(s, &entry) {
                if s.payload
                    .events
                    .send(Event::PromptLogprobs(scored))
                    .is_err()
                {
                    s.payload.processor.cancel();
                    finished.push((i, Ok(FinishReason::Cancelled)));
                    continue;
                }
            }
            if s.computed < s.tokens.len() {
                continue;
            }
            let logits = entry.rows.last().expect("logits for the last token");
            let run = &mut s.payload;
            let out = match run.processor.step(lm, logits, s.computed + 1, context) {
                Ok(out) => out,
                Err(e) => {
                    finished.push((i, Err(e.to_string())));
                    continue;
                }
            };
            let now = Instant::now();
            if let Some(token) = out.token {
                s.tokens.push(token);
                metrics.add_generated(1);
                match run.last_token {
                    None => metrics.time_to_first_token.observe(now - run.submitted),
                    Some(t) => metrics.inter_token_latency.observe(now - t),
                }
                run.first_token.get_or_insert(now);
                run.last_token = Some(now);
            }
            let finish = out.finish;
            if !send(&run.events, out) {
                run.processor.cancel();
                finished.push((i, Ok(FinishReason::Cancelled)));
            } else if let Some(f) = finish {
                finished.push((i, Ok(f)));
            }
        }
        finished.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        finished
    }

    fn log_step(&self, step: &Step, started: Instant) {
        let running = self.scheduler.running();
        let decodes = step
            .batch
            .iter()
            .filter(|&&(i, _)| !running[i].prefilling())
            .count();
        let tokens: usize = step.batch.iter().map(|&(_, n)| n).sum();
        tracing::debug!(
            sequences = step.batch.len(),
            decodes,
            tokens,
            waiting = self.scheduler.waiting_len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "step"
        );
    }
}

/// The logprobs of the prompt tokens still to be reported that `entry`'s rows predict
/// (each row predicts the token after its position); moves the sequence's `score_from`
/// past them.
fn score_prompt(s: &mut Sequence<SequenceRun>, entry: &EntryLogits) -> Option<Vec<TokenLogprobs>> {
    let from = s.score_from?;
    let top = s.payload.processor.prompt_logprobs()?;
    let scored: Vec<TokenLogprobs> = entry
        .rows
        .iter()
        .enumerate()
        .map(|(j, row)| (entry.first + j + 1, row))
        .filter(|&(t, _)| t >= from && t < s.prompt_len)
        .map(|(t, row)| logprobs(row, s.tokens[t], top))
        .collect();
    let next = from + scored.len();
    debug_assert!(
        entry.first < from,
        "the scheduler computes every position to score"
    );
    s.score_from = (next < s.prompt_len).then_some(next);
    (!scored.is_empty()).then_some(scored)
}

/// Sends one step's output; false when the client has gone.
fn send(events: &UnboundedSender<Event>, out: Emitted) -> bool {
    if out.token.is_none() && out.text.is_empty() && out.reasoning.is_empty() {
        return !events.is_closed();
    }
    events
        .send(Event::Token {
            token: out.token,
            text: out.text,
            reasoning: out.reasoning,
            logprobs: out.logprobs,
        })
        .is_ok()
}
