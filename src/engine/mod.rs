//! The engine thread: the only place that touches the model and its KV cache.
//!
//! Requests reach it through [`EngineHandle::submit`] and wait in a bounded first-come,
//! first-served queue; the [`scheduler`] runs them in one continuously batched forward
//! pass per step over a paged KV cache with prefix reuse. Each sequence gets a channel of
//! [`Event`]s; when the receiver is dropped (a client disconnected) the sequence leaves the
//! batch before the next step and its blocks are freed.

pub mod blocks;
pub mod decoder;
pub mod metrics;
pub mod params;
pub mod sampler;
pub mod scheduler;

use crate::runtime::Runtime;
use metrics::Metrics;
use params::{FinishReason, GenerateParams};
use sampler::TokenLogprobs;
pub use scheduler::EngineConfig;
use scheduler::{Job, Scheduler};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("the server is busy: {waiting} requests are waiting (limit {limit}); retry shortly")]
    QueueFull { waiting: usize, limit: usize },
    #[error(
        "the request needs up to {needed} tokens of KV cache (prompt and max_tokens) but the \
         cache holds {capacity}; lower max_tokens or start the server with a larger --kv-cache-memory"
    )]
    TooLarge { needed: usize, capacity: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("{asked} choices can never run at once here (at most {limit}); lower n")]
    TooManyChoices { asked: usize, limit: usize },
    #[error("the engine has stopped")]
    Stopped,
}

/// A cheap, cloneable way to reach the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
    /// Sequences submitted and not finished (running included).
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    max_running: usize,
    /// Most tokens (prompt + completion) one sequence can hold in the KV cache.
    capacity: usize,
    next_request: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl EngineHandle {
    /// Starts the engine thread; `context` is the most tokens a sequence may use.
    pub fn start(runtime: Arc<Runtime>, cfg: EngineConfig, context: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(Metrics::default());
        let (max_queue, max_running) = (cfg.max_queue, cfg.max_running);
        let scheduler = Scheduler::new(runtime, cfg, context, pending.clone(), metrics.clone());
        let capacity = scheduler.capacity_tokens();
        std::thread::Builder::new()
            .name("candor-engine".into())
            .spawn(move || scheduler.run(rx))
            .expect("spawning the engine thread");
        Self {
            jobs: tx,
            pending,
            max_pending: max_queue + max_running,
            max_running,
            capacity,
            next_request: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    /// Sequences waiting or running.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Queues the `n` choices of one request at once, or none.
    /// `explicit_max`: the caller set max_tokens (else it is capped to what fits).
    pub fn submit(
        &self,
        prompt: Vec<u32>,
        params: Vec<GenerateParams>,
        explicit_max: bool,
    ) -> Result<Vec<UnboundedReceiver<Event>>, EngineError> {
        let count = params.len();
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if count > self.max_pending {
            return Err(EngineError::TooManyChoices {
                asked: count,
                limit: self.max_pending,
            });
        }
        if let Some(p) = params.first() {
            let needed = prompt.len() + p.max_tokens;
            if prompt.len() + 1 > self.capacity || (needed > self.capacity && explicit_max) {
                return Err(EngineError::TooLarge {
                    needed,
                    capacity: self.capacity,
                });
            }
        }
        let reserved = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p + count <= self.max_pending).then_some(p + count)
            });
        if let Err(p) = reserved {
            return Err(EngineError::QueueFull {
                waiting: p.saturating_sub(self.max_running),
                limit: self.max_pending - self.max_running,
            });
        }
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let mut receivers = Vec::with_capacity(count);
        for mut params in params {
            let (events, rx) = unbounded_channel();
            params.max_tokens = params.max_tokens.min(self.capacity - prompt.len());
            let job = Job {
                prompt: prompt.clone(),
                params,
                events,
                submitted: Instant::now(),
                request,
            };
            if self.jobs.send(job).is_err() {
                let unsent = count - receivers.len();
                self.pending.fetch_sub(unsent, Ordering::AcqRel);
                return Err(EngineError::Stopped);
            }
            receivers.push(rx);
        }
        Ok(receivers)
    }
}
