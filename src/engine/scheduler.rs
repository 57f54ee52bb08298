//! Continuous batching: the engine thread's loop.
//!
//! Between two forward passes, finished and cancelled sequences leave the batch and waiting
//! ones join it (first come, first served, up to `max_running`). Each step runs every
//! running decode (one token each) plus prompt chunks of the sequences still prefilling,
//! under a per-step token budget (`max_batch_tokens`), so a long prompt arriving does not
//! freeze the other streams. Each sequence keeps its own [`Decoder`] (sampling, stop
//! strings, reasoning state and budget, logprobs).
//!
//! KV memory is a pool of fixed-size blocks ([`PagedKvStore`], read directly by the
//! attention kernel) with a block table per sequence ([`BlockManager`]); full blocks are
//! shared through the prefix cache. When the pool runs out, the newest running sequence is
//! preempted: its blocks are released and it waits again, to be recomputed (often straight
//! from the prefix cache) when there is room. A request that could never fit is refused
//! when submitted. On devices or dtypes the paged kernel does not cover, each sequence gets
//! a contiguous cache instead (batching without paging or prefix reuse).

use crate::engine::blocks::{block_hash, prefix_hashes, BlockManager, ROOT};
use crate::engine::decoder::{Decoder, Emitted};
use crate::engine::metrics::Metrics;
use crate::engine::params::{FinishReason, GenerateParams};
use crate::engine::{Event, Usage};
use crate::runtime::Runtime;
use candor_models::paged::{PagedKvStore, PagedSeqCache};
use candor_models::{ContiguousCache, DType, KvCache, LogitsFor, Sequence};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

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
    /// Bytes of KV cache; None: sized from the context and `max_running`, capped by a
    /// quarter of the available memory.
    pub kv_cache_bytes: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_queue: 64,
            max_running: 16,
            max_batch_tokens: 512,
            block_size: 16,
            kv_cache_bytes: None,
        }
    }
}

/// A request's sequence as submitted.
pub struct Job {
    pub prompt: Vec<u32>,
    pub params: GenerateParams,
    pub events: UnboundedSender<Event>,
    pub submitted: Instant,
    /// Choices of one request share an id: the later ones wait until the first has
    /// computed the prompt, then take its blocks from the prefix cache.
    pub request: u64,
}

struct Seq {
    job: Job,
    /// Arrival order: preemption picks the newest.
    order: u64,
    /// Prompt then generated tokens.
    tokens: Vec<u32>,
    /// Tokens whose keys and values are in the cache.
    computed: usize,
    blocks: Vec<u32>,
    /// Chained hashes of the full blocks registered so far.
    hashes: Vec<u64>,
    /// The contiguous cache, when the pool is not used.
    own_cache: Option<ContiguousCache>,
    decoder: Decoder,
    /// Prompt tokens found in the prefix cache at first admission.
    cached_tokens: Option<usize>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
}

impl Seq {
    fn prefilling(&self) -> bool {
        self.computed + 1 < self.tokens.len()
    }
}

/// The paged pool, when the model runs where the paged kernel does.
struct Pool {
    store: Arc<Mutex<PagedKvStore>>,
    blocks: BlockManager,
}

impl Pool {
    /// A new block holding a copy of `source` (a cached block, possibly unheld).
    fn copy_of(&mut self, source: u32) -> Option<u32> {
        // Held while the copy is allocated, so that the allocation cannot evict it.
        self.blocks.hold_one(source);
        let copy = self.blocks.allocate();
        if let Some(copy) = copy {
            let copied = self
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .copy_block(source, copy);
            if let Err(e) = copied {
                tracing::warn!("KV cache: {e}");
                self.blocks.release(&[copy]);
                self.blocks.release(&[source]);
                return None;
            }
        }
        self.blocks.release(&[source]);
        copy
    }

    /// Before a sequence lets go of its blocks: its last, partly filled block stays
    /// registered for a later prompt that continues the same prefix the same way.
    fn leave_partial(&mut self, seq: &Seq) {
        let bs = self.blocks.block_size();
        let full = seq.computed / bs;
        if seq.computed.is_multiple_of(bs) || seq.blocks.len() <= full || seq.hashes.len() < full {
            return;
        }
        let parent = if full == 0 {
            ROOT
        } else {
            seq.hashes[full - 1]
        };
        self.blocks.register_partial(
            seq.blocks[full],
            parent,
            &seq.tokens[full * bs..seq.computed],
        );
    }
}

pub struct Scheduler {
    rt: Arc<Runtime>,
    cfg: EngineConfig,
    pool: Option<Pool>,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    next_order: u64,
    pending: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    context: usize,
}

/// Bytes available to allocate: MemAvailable from /proc/meminfo where there is one.
pub fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Scheduler {
    pub fn new(
        rt: Arc<Runtime>,
        cfg: EngineConfig,
        context: usize,
        pending: Arc<AtomicUsize>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let c = rt.model.config();
        let paged = rt.model.device().is_cpu() && rt.model.dtype() == DType::F32;
        let pool = if paged {
            let per_block = PagedKvStore::bytes_per_block(
                c.num_layers,
                c.num_kv_heads,
                c.head_dim,
                cfg.block_size,
            );
            let wanted = cfg.kv_cache_bytes.unwrap_or_else(|| {
                let full = cfg.max_running * context.div_ceil(cfg.block_size) * per_block;
                let cap = available_memory().map_or(usize::MAX, |m| m / 4);
                full.min(cap)
            });
            let num_blocks = (wanted / per_block).max(1);
            match PagedKvStore::new(
                c.num_layers,
                c.num_kv_heads,
                c.head_dim,
                cfg.block_size,
                num_blocks,
            ) {
                Ok(store) => {
                    tracing::info!(
                        "KV cache: {num_blocks} blocks of {} tokens ({:.1} MiB, {} tokens)",
                        cfg.block_size,
                        (num_blocks * per_block) as f64 / (1 << 20) as f64,
                        num_blocks * cfg.block_size
                    );
                    metrics
                        .kv_blocks_total
                        .store(num_blocks as u64, Ordering::Relaxed);
                    Some(Pool {
                        store: Arc::new(Mutex::new(store)),
                        blocks: BlockManager::new(num_blocks, cfg.block_size),
                    })
                }
                Err(e) => {
                    tracing::warn!("KV cache: cannot make the paged pool ({e})");
                    None
                }
            }
        } else {
            None
        };
        if pool.is_none() {
            tracing::info!(
                "KV cache: one contiguous cache per sequence (the paged cache covers CPU f32)"
            );
        }
        Self {
            rt,
            cfg,
            pool,
            waiting: VecDeque::new(),
            running: Vec::new(),
            next_order: 0,
            pending,
            metrics,
            context,
        }
    }

    /// Most tokens one sequence may hold: the context, and for the paged pool, the pool.
    pub fn capacity_tokens(&self) -> usize {
        match &self.pool {
            Some(p) => self
                .context
                .min(p.blocks.num_blocks() * p.blocks.block_size()),
            None => self.context,
        }
    }

    /// The engine thread: runs until every handle is dropped and the work is done.
    pub fn run(mut self, jobs: mpsc::Receiver<Job>) {
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                self.publish_gauges();
                match jobs.recv() {
                    Ok(job) => self.enqueue(job),
                    Err(_) => return,
                }
            }
            while let Ok(job) = jobs.try_recv() {
                self.enqueue(job);
            }
            self.drop_cancelled();
            self.admit();
            self.publish_gauges();
            if self.running.is_empty() {
                // Nothing fits yet (cannot happen with an empty batch unless the pool is
                // smaller than one prompt, refused at submission); avoid spinning.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            self.step();
            self.publish_gauges();
        }
    }

    fn enqueue(&mut self, job: Job) {
        let order = self.next_order;
        self.next_order += 1;
        let decoder = Decoder::new(&self.rt, &job.prompt, job.params.clone());
        self.waiting.push_back(Seq {
            tokens: job.prompt.clone(),
            job,
            order,
            computed: 0,
            blocks: Vec::new(),
            hashes: Vec::new(),
            own_cache: None,
            decoder,
            cached_tokens: None,
            first_token: None,
            last_token: None,
        });
    }

    fn finish_seq(&mut self, mut seq: Seq, finish: FinishReason) {
        if let Some(pool) = &mut self.pool {
            pool.leave_partial(&seq);
            pool.blocks.release(&seq.blocks);
        }
        seq.blocks.clear();
        // Before Done reaches the client, so that /metrics and the queue bound seen after
        // it are current.
        self.publish_gauges();
        self.metrics.add_reasoning(seq.decoder.reasoning_tokens());
        self.metrics
            .requests_finished
            .fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_sub(1, Ordering::AcqRel);
        if finish != FinishReason::Cancelled || !seq.job.events.is_closed() {
            let d = &seq.decoder;
            let generated = d.tokens().len();
            let decode_time = match (seq.first_token, seq.last_token) {
                (Some(a), Some(b)) => b - a,
                _ => Duration::ZERO,
            };
            let usage = Usage {
                finish,
                prompt_tokens: seq.job.prompt.len(),
                cached_tokens: seq.cached_tokens.unwrap_or(0),
                completion_tokens: generated,
                reasoning_tokens: d.reasoning_tokens(),
                time_to_first_token: seq.first_token.unwrap_or_else(Instant::now)
                    - seq.job.submitted,
                decode_tokens_per_s: generated.saturating_sub(1) as f64
                    / decode_time.as_secs_f64().max(1e-9),
            };
            let _ = seq.job.events.send(Event::Done(usage));
        }
    }

    fn fail_seq(&mut self, seq: Seq, message: &str) {
        if let Some(pool) = &mut self.pool {
            pool.blocks.release(&seq.blocks);
        }
        self.pending.fetch_sub(1, Ordering::AcqRel);
        let _ = seq.job.events.send(Event::Error(message.to_string()));
    }

    /// Sequences whose client went away leave at once, freeing their blocks.
    fn drop_cancelled(&mut self) {
        let now = Instant::now();
        let expired = |s: &Seq| s.job.params.deadline.is_some_and(|d| now >= d);
        let mut i = 0;
        while i < self.waiting.len() {
            let s = &self.waiting[i];
            if s.job.events.is_closed() {
                let s = self.waiting.remove(i).expect("index in range");
                self.finish_seq(s, FinishReason::Cancelled);
            } else if expired(s) {
                let s = self.waiting.remove(i).expect("index in range");
                self.expire(s);
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.running.len() {
            let s = &self.running[i];
            if s.job.events.is_closed() {
                let mut s = self.running.remove(i);
                s.decoder.cancel();
                self.finish_seq(s, FinishReason::Cancelled);
            } else if expired(s) {
                let s = self.running.remove(i);
                self.expire(s);
            } else {
                i += 1;
            }
        }
    }

    /// Ends a sequence whose request ran past its deadline (waiting, or between tokens),
    /// releasing the text it holds back.
    fn expire(&mut self, mut s: Seq) {
        match s.decoder.expire() {
            Ok(out) => {
                send(&s.job.events, out);
                self.finish_seq(s, FinishReason::Timeout);
            }
            Err(e) => self.fail_seq(s, &e.to_string()),
        }
    }

    /// First come, first served: admits waiting sequences while there is room. A later
    /// choice of a request waits (without holding up others) until the first has computed
    /// the prompt, then takes the prompt's blocks from the prefix cache.
    fn admit(&mut self) {
        let mut i = 0;
        while self.running.len() < self.cfg.max_running && i < self.waiting.len() {
            let Some(pool) = &mut self.pool else {
                let mut s = self.waiting.remove(i).expect("index in range");
                s.own_cache = Some(ContiguousCache::new(self.rt.model.config().num_layers));
                s.cached_tokens.get_or_insert(0);
                self.metrics.add_prompt(s.job.prompt.len());
                self.running.push(s);
                continue;
            };
            let cand = &self.waiting[i];
            let sibling_prefilling = self
                .running
                .iter()
                .any(|r| r.job.request == cand.job.request && r.prefilling());
            if sibling_prefilling {
                i += 1;
                continue;
            }
            let bs = pool.blocks.block_size();
            // Reuse full cached blocks, then a copy of the cached block that continues them
            // the longest way, leaving at least one token to compute for logits.
            let known = &cand.tokens[..cand.tokens.len() - 1];
            let hashes = prefix_hashes(known, bs);
            let (hit, unheld) = pool.blocks.cached_prefix(&hashes, known);
            // A prompt whose next block a running prompt is about to compute waits a step
            // for it, then takes it from the cache instead of computing it again (prompts
            // arriving together usually share a chat template's system prompt).
            let next_end = (hit + 1) * bs;
            let budget = self.cfg.max_batch_tokens;
            let computed_soon = next_end <= known.len()
                && self.running.iter().any(|r| {
                    r.prefilling()
                        && r.computed < next_end
                        && r.computed + budget >= next_end
                        && r.tokens.len() > next_end
                        && r.tokens[..next_end] == known[..next_end]
                });
            if computed_soon {
                i += 1;
                continue;
            }
            let parent = if hit == 0 { ROOT } else { hashes[hit - 1] };
            let partial = pool.blocks.best_child(parent, &known[hit * bs..]);
            let start = hit * bs + partial.map_or(0, |(_, n)| n);
            let first_chunk = (cand.tokens.len() - start).min(self.cfg.max_batch_tokens);
            let need = pool.blocks.blocks_for(start + first_chunk) - hit;
            // Taking the unheld cached blocks (and holding the copy's source while its
            // copy is allocated) makes them unavailable to the new ones.
            let source_unheld = partial.is_some_and(|(b, _)| pool.blocks.is_unheld(b));
            if pool.blocks.available() < need + unheld + usize::from(source_unheld) {
                break;
            }
            let mut s = self.waiting.remove(i).expect("index in range");
            let known = &s.tokens[..s.tokens.len() - 1];
            let blocks = pool.blocks.take_prefix(&hashes[..hit], known);
            s.computed = blocks.len() * bs;
            s.hashes = hashes[..blocks.len()].to_vec();
            s.blocks = blocks;
            if let Some((source, n)) = partial {
                if let Some(copy) = pool.copy_of(source) {
                    s.blocks.push(copy);
                    s.computed += n;
                }
            }
            if s.cached_tokens.is_none() {
                s.cached_tokens = Some(s.computed);
                self.metrics.add_prompt(s.job.prompt.len());
                self.metrics
                    .add_prefix_lookup(s.job.prompt.len(), s.computed);
            }
            self.running.push(s);
        }
    }

    fn publish_gauges(&self) {
        let m = &self.metrics;
        m.running
            .store(self.running.len() as u64, Ordering::Relaxed);
        m.waiting
            .store(self.waiting.len() as u64, Ordering::Relaxed);
        if let Some(pool) = &self.pool {
            let st = pool.blocks.stats();
            m.kv_blocks_used.store(st.used as u64, Ordering::Relaxed);
            m.kv_blocks_cached
                .store(st.cached as u64, Ordering::Relaxed);
            m.kv_blocks_free.store(st.free as u64, Ordering::Relaxed);
        }
    }

    /// Moves the newest running sequence back to the waiting queue, releasing its blocks.
    fn preempt_newest(&mut self) -> Option<u64> {
        let i = (0..self.running.len()).max_by_key(|&i| self.running[i].order)?;
        let mut s = self.running.remove(i);
        if let Some(pool) = &mut self.pool {
            pool.leave_partial(&s);
            pool.blocks.release(&s.blocks);
        }
        s.blocks.clear();
        s.hashes.clear();
        s.computed = 0;
        self.metrics.preemptions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            order = s.order,
            "KV pool full: preempted the newest sequence"
        );
        let order = s.order;
        // Back in arrival order among the waiting.
        let at = self
            .waiting
            .iter()
            .position(|w| w.order > s.order)
            .unwrap_or(self.waiting.len());
        self.waiting.insert(at, s);
        Some(order)
    }

    /// Chooses this step's work: (index in `running`, tokens to feed).
    fn plan(&mut self) -> Vec<(usize, usize)> {
        loop {
            let mut budget = self.cfg.max_batch_tokens;
            let mut plan = Vec::new();
            // Decodes first (one token each), then prompt chunks in arrival order.
            let mut order: Vec<usize> = (0..self.running.len()).collect();
            order.sort_by_key(|&i| (self.running[i].prefilling(), self.running[i].order));
            for i in order {
                let s = &self.running[i];
                let remaining = s.tokens.len() - s.computed;
                let n = remaining.min(budget);
                if n == 0 {
                    continue;
                }
                budget -= n;
                plan.push((i, n));
            }
            // Blocks for the new tokens; when the pool is short, preempt and plan again.
            let Some(pool) = &mut self.pool else {
                return plan;
            };
            let mut short = false;
            for &(i, n) in &plan {
                let s = &mut self.running[i];
                let need = pool.blocks.blocks_for(s.computed + n);
                while s.blocks.len() < need {
                    match pool.blocks.allocate() {
                        Some(b) => s.blocks.push(b),
                        None => {
                            short = true;
                            break;
                        }
                    }
                }
                if short {
                    break;
                }
            }
            if !short {
                return plan;
            }
            if self.preempt_newest().is_none() {
                return Vec::new();
            }
        }
    }

    fn step(&mut self) {
        let plan = self.plan();
        if plan.is_empty() {
            return;
        }
        self.metrics.steps.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.forward(&plan);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let decodes = plan
                .iter()
                .filter(|&&(i, _)| !self.running[i].prefilling())
                .count();
            let tokens: usize = plan.iter().map(|&(_, n)| n).sum();
            tracing::debug!(
                sequences = plan.len(),
                decodes,
                tokens,
                waiting = self.waiting.len(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "step"
            );
        }
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("forward pass failed: {e}");
                // Fail the sequences of this step; their caches may be half written.
                let mut idx: Vec<usize> = plan.iter().map(|&(i, _)| i).collect();
                idx.sort_unstable_by_key(|&i| std::cmp::Reverse(i));
                for i in idx {
                    let s = self.running.remove(i);
                    self.fail_seq(s, &e);
                }
                return;
            }
        };
        // Advance, register newly full blocks, and step the decoders with logits.
        let mut finished = Vec::new();
        let mut row_iter = rows.into_iter();
        for &(i, n) in &plan {
            let s = &mut self.running[i];
            s.computed += n;
            if let Some(pool) = &mut self.pool {
                let bs = pool.blocks.block_size();
                while s.hashes.len() < s.computed / bs {
                    let k = s.hashes.len();
                    let parent = s.hashes.last().copied().unwrap_or(ROOT);
                    let tokens = &s.tokens[k * bs..(k + 1) * bs];
                    let h = block_hash(parent, tokens);
                    pool.blocks.register(s.blocks[k], parent, h, tokens);
                    s.hashes.push(h);
                }
            }
            if s.computed < s.tokens.len() {
                continue;
            }
            let logits = row_iter
                .next()
                .expect("one logits row per completed sequence");
            let out = match s
                .decoder
                .step(&self.rt, &logits, s.computed + 1, self.context)
            {
                Ok(out) => out,
                Err(e) => {
                    finished.push((i, Err(e.to_string())));
                    continue;
                }
            };
            let now = Instant::now();
            if let Some(token) = out.token {
                s.tokens.push(token);
                self.metrics.add_generated(1);
                match s.last_token {
                    None => self
                        .metrics
                        .time_to_first_token
                        .observe(now - s.job.submitted),
                    Some(t) => self.metrics.inter_token_latency.observe(now - t),
                }
                s.first_token.get_or_insert(now);
                s.last_token = Some(now);
            }
            let finish = out.finish;
            if !send(&s.job.events, out) {
                s.decoder.cancel();
                finished.push((i, Ok(FinishReason::Cancelled)));
            } else if let Some(f) = finish {
                finished.push((i, Ok(f)));
            }
        }
        finished.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        for (i, how) in finished {
            let s = self.running.remove(i);
            match how {
                Ok(f) => self.finish_seq(s, f),
                Err(e) => self.fail_seq(s, &e),
            }
        }
    }

    /// One forward pass over the plan; returns the logits rows of the sequences whose
    /// chunk reaches their last token, in plan order.
    fn forward(&mut self, plan: &[(usize, usize)]) -> Result<Vec<Vec<f32>>, String> {
        let vocab = self.rt.vocab_size();
        // Contiguous caches are lent out of their sequences for the pass.
        let mut own: Vec<ContiguousCache> = Vec::new();
        if self.pool.is_none() {
            for &(i, _) in plan {
                own.push(
                    self.running[i]
                        .own_cache
                        .take()
                        .expect("a contiguous cache for every sequence without the pool"),
                );
            }
        }
        let result = {
            let running = &self.running;
            let mut paged: Vec<PagedSeqCache> = match &self.pool {
                Some(pool) => plan
                    .iter()
                    .map(|&(i, _)| {
                        let s = &running[i];
                        PagedSeqCache::new(pool.store.clone(), &s.blocks, s.computed)
                    })
                    .collect(),
                None => Vec::new(),
            };
            let caches: Vec<&mut dyn KvCache> = if paged.is_empty() {
                own.iter_mut().map(|c| c as &mut dyn KvCache).collect()
            } else {
                paged.iter_mut().map(|c| c as &mut dyn KvCache).collect()
            };
            let mut seqs: Vec<Sequence> = plan
                .iter()
                .zip(caches)
                .map(|(&(i, n), cache)| {
                    let s = &running[i];
                    let last = s.computed + n == s.tokens.len();
                    Sequence {
                        tokens: &s.tokens[s.computed..s.computed + n],
                        start_pos: s.computed,
                        cache,
                        logits: if last {
                            LogitsFor::Last
                        } else {
                            LogitsFor::None
                        },
                    }
                })
                .collect();
            self.rt.model.forward(&mut seqs).map_err(|e| e.to_string())
        };
        for (&(i, _), c) in plan.iter().zip(own) {
            self.running[i].own_cache = Some(c);
        }
        let out = result?;
        let rows = out.dim(0).map_err(|e| e.to_string())?;
        if rows == 0 {
            return Ok(Vec::new());
        }
        // One copy out of the tensor, without the padding rows past the tokenizer.
        let width = out.dim(1).map_err(|e| e.to_string())?;
        out.narrow(1, 0, vocab.min(width))
            .and_then(|t| t.to_vec2())
            .map_err(|e| e.to_string())
    }
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
