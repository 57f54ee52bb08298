//! The engine: one thread, the only place that touches the model and its KV cache.
//!
//! Requests reach it through [`EngineHandle::submit`] (here: the queue bound and the
//! checks a request can fail at once) and wait in a bounded first-come, first-served
//! queue. On the thread, [`worker`] loops: the [`scheduler`] (pure bookkeeping, unit
//! tested) decides each continuously batched step over the KV blocks and prefix cache of
//! [`blocks`]; the [`runner`] executes it on the model; each sequence's
//! [`output_processor`] samples ([`sampler`]) and turns tokens into text. A
//! [`sequence`] reports through a channel of [`Event`]s; when the receiver is dropped (a
//! client disconnected) it leaves the batch before the next step and its blocks are
//! freed. [`params`] says what a sequence is asked to do, [`metrics`] what /metrics shows.

pub mod blocks;
pub mod metrics;
pub mod output_processor;
pub mod params;
pub mod runner;
pub mod sampler;
pub mod scheduler;
pub mod sequence;
pub mod worker;

use crate::loaded_model::LoadedModel;
use candor_models::PagedAttention;
use metrics::Metrics;
use params::GenerateParams;
use runner::Runner;
use scheduler::Scheduler;
use sequence::SequenceRequest;
pub use sequence::{Event, Usage};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use worker::Worker;

/// Engine limits (server flags).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sequences waiting beyond the running ones; more get 503.
    pub max_queue: usize,
    /// Sequences in the running batch.
    pub max_running: usize,
    /// Tokens one forward pass may process (decodes count one each).
    pub max_batch_tokens: usize,
    /// Tokens per KV block.
    pub block_size: usize,
    /// Size of the KV pool; None: enough for `max_running` full contexts, capped by a
    /// share of the free memory (see [`runner`]).
    pub kv_cache: Option<KvCacheSize>,
    /// How attention reads the pool; None: the model's own path
    /// ([`PagedAttention::for_model`]). Tests force the reference path on the CPU.
    pub attention: Option<PagedAttention>,
}

/// A size of the KV pool (`--kv-cache-memory`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KvCacheSize {
    Bytes(usize),
    /// Of the memory free when the engine starts: the GPU's on a GPU, else the system's.
    Fraction(f64),
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_queue: 64,
            max_running: 16,
            max_batch_tokens: 512,
            block_size: 16,
            kv_cache: None,
            attention: None,
        }
    }
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
    #[error(
        "the request asks for {asked} sequences (its prompts times n) but this server holds \
         at most {limit} at once (--max-running plus --max-queue); send fewer prompts or a \
         lower n per request"
    )]
    TooManyChoices { asked: usize, limit: usize },
    #[error("the engine has stopped")]
    Stopped,
    #[error("{0}")]
    KvCache(String),
}

/// A cheap, cloneable way to reach the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    requests: mpsc::Sender<SequenceRequest>,
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
    /// Starts the engine thread; `context` is the most tokens a sequence may use. Fails
    /// when the KV pool cannot be allocated.
    pub fn start(
        model: Arc<LoadedModel>,
        cfg: EngineConfig,
        context: usize,
    ) -> Result<Self, EngineError> {
        let (tx, rx) = mpsc::channel::<SequenceRequest>();
        let pending = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(Metrics::default());
        let (max_queue, max_running) = (cfg.max_queue, cfg.max_running);
        let (runner, blocks) =
            Runner::new(model.clone(), &cfg, context).map_err(EngineError::KvCache)?;
        metrics
            .kv_blocks_total
            .store(blocks.num_blocks() as u64, Ordering::Relaxed);
        let limits = scheduler::Limits {
            max_running: cfg.max_running,
            max_batch_tokens: cfg.max_batch_tokens,
        };
        let scheduler = Scheduler::new(limits, blocks);
        let capacity = scheduler.capacity_tokens(context);
        let worker = Worker {
            lm: model,
            scheduler,
            runner,
            pending: pending.clone(),
            metrics: metrics.clone(),
            context,
        };
        std::thread::Builder::new()
            .name("candor-engine".into())
            .spawn(move || worker.run(rx))
            .expect("spawning the engine thread");
        Ok(Self {
            requests: tx,
            pending,
            max_pending: max_queue + max_running,
            max_running,
            capacity,
            next_request: Arc::new(AtomicU64::new(0)),
            metrics,
        })
    }

    /// Sequences waiting or running.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Queues the `n` choices of one prompt at once, or none.
    /// `explicit_max`: the caller set max_tokens (else it is capped to what fits).
    pub fn submit(
        &self,
        prompt: Vec<u32>,
        params: Vec<GenerateParams>,
        explicit_max: bool,
    ) -> Result<Vec<UnboundedReceiver<Event>>, EngineError> {
        let mut all = self.submit_all(vec![PromptChoices { prompt, params }], explicit_max)?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Queues every choice of every prompt of one request at once, or none: a request
    /// that can never be held is refused before it takes a place in the queue, and one
    /// that only has to wait is refused whole (503), never half queued.
    pub fn submit_all(
        &self,
        prompts: Vec<PromptChoices>,
        explicit_max: bool,
    ) -> Result<Vec<Vec<UnboundedReceiver<Event>>>, EngineError> {
        let count: usize = prompts.iter().map(|p| p.params.len()).sum();
        for p in &prompts {
            self.check(p, explicit_max)?;
        }
        if count > self.max_pending {
            return Err(EngineError::TooManyChoices {
                asked: count,
                limit: self.max_pending,
            });
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
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let mut sent = 0;
        let mut out = Vec::with_capacity(prompts.len());
        for PromptChoices { prompt, params } in prompts {
            let mut receivers = Vec::with_capacity(params.len());
            for mut params in params {
                let (events, rx) = unbounded_channel();
                params.max_tokens = params.max_tokens.min(self.capacity - prompt.len());
                let request = SequenceRequest {
                    prompt: prompt.clone(),
                    params,
                    events,
                    submitted: Instant::now(),
                    request: request_id,
                };
                if self.requests.send(request).is_err() {
                    self.pending.fetch_sub(count - sent, Ordering::AcqRel);
                    return Err(EngineError::Stopped);
                }
                sent += 1;
                receivers.push(rx);
            }
            out.push(receivers);
        }
        Ok(out)
    }

    /// What one prompt can fail at whatever the queue holds.
    fn check(&self, p: &PromptChoices, explicit_max: bool) -> Result<(), EngineError> {
        if p.prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if let Some(first) = p.params.first() {
            let needed = p.prompt.len() + first.max_tokens;
            if p.prompt.len() + 1 > self.capacity || (needed > self.capacity && explicit_max) {
                return Err(EngineError::TooLarge {
                    needed,
                    capacity: self.capacity,
                });
            }
        }
        Ok(())
    }
}

/// One prompt of a request and the parameters of each of its choices.
pub struct PromptChoices {
    pub prompt: Vec<u32>,
    pub params: Vec<GenerateParams>,
}
