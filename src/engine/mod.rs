//! The engine thread: the only place that touches the model and its KV cache.
//!
//! Requests reach it through [`EngineHandle::submit`], wait in a bounded first-come,
//! first-served queue and run one at a time; each gets a channel of [`Event`]s. When the
//! receiver is dropped (a client disconnected, or a stop string was handled upstream) the
//! sequence stops within one token. The cache of the last sequence is kept, so a request
//! that repeats its predecessor's prefix (the earlier turns of a chat) skips recomputing it.

pub mod decoder;
pub mod generate;
pub mod sampler;

use crate::runtime::Runtime;
use generate::{generate, FinishReason, GenerateParams, Session};
use sampler::TokenLogprobs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

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
    #[error("the engine has stopped")]
    Stopped,
}

struct Job {
    prompt: Vec<u32>,
    params: GenerateParams,
    events: UnboundedSender<Event>,
    submitted: Instant,
}

/// A cheap, cloneable way to reach the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
    /// Sequences submitted and not finished (running included).
    pending: Arc<AtomicUsize>,
    max_pending: usize,
}

impl EngineHandle {
    /// Starts the engine thread. `max_queue` bounds how many sequences may wait.
    pub fn start(runtime: Arc<Runtime>, max_queue: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = pending.clone();
        std::thread::Builder::new()
            .name("candor-engine".into())
            .spawn(move || run(runtime, rx, counter))
            .expect("spawning the engine thread");
        Self {
            jobs: tx,
            pending,
            // One may run while max_queue wait.
            max_pending: max_queue + 1,
        }
    }

    /// Sequences waiting or running.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues `count` sequences at once (the `n` choices of one request), or none.
    pub fn submit(
        &self,
        prompt: Vec<u32>,
        params: Vec<GenerateParams>,
    ) -> Result<Vec<UnboundedReceiver<Event>>, EngineError> {
        let count = params.len();
        let reserved = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p + count <= self.max_pending).then_some(p + count)
            });
        if let Err(p) = reserved {
            return Err(EngineError::QueueFull {
                waiting: p.saturating_sub(1),
                limit: self.max_pending - 1,
            });
        }
        let mut receivers = Vec::with_capacity(count);
        for params in params {
            let (events, rx) = unbounded_channel();
            let job = Job {
                prompt: prompt.clone(),
                params,
                events,
                submitted: Instant::now(),
            };
            if self.jobs.send(job).is_err() {
                return Err(EngineError::Stopped);
            }
            receivers.push(rx);
        }
        Ok(receivers)
    }
}

fn run(rt: Arc<Runtime>, jobs: mpsc::Receiver<Job>, pending: Arc<AtomicUsize>) {
    let mut session = Session::new(&rt);
    while let Ok(job) = jobs.recv() {
        if !job.events.is_closed() {
            run_job(&rt, &mut session, &job);
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

fn run_job(rt: &Runtime, session: &mut Session, job: &Job) {
    let mut first_token: Option<Instant> = None;
    let result = generate(rt, session, &job.prompt, &job.params, |step| {
        first_token.get_or_insert_with(Instant::now);
        job.events
            .send(Event::Token {
                token: step.token,
                text: step.text.to_string(),
                reasoning: step.reasoning.to_string(),
                logprobs: step.logprobs,
            })
            .is_ok()
    });
    let event = match result {
        Ok(g) => Event::Done(Usage {
            finish: g.finish,
            prompt_tokens: g.prompt_tokens,
            cached_tokens: g.cached_tokens,
            completion_tokens: g.tokens.len(),
            reasoning_tokens: g.reasoning_tokens,
            time_to_first_token: first_token.unwrap_or_else(Instant::now) - job.submitted,
            decode_tokens_per_s: g.decode_tokens_per_s(),
        }),
        Err(e) => {
            tracing::error!("generation failed: {e}");
            // The cache may hold a half-written step: start the next request afresh.
            *session = Session::new(rt);
            Event::Error(e.to_string())
        }
    };
    let _ = job.events.send(event);
}
