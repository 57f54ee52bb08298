//! Runs what the scheduler decided on the model: copies KV blocks, flattens a step into
//! one batch (each sequence's new tokens, positions and cache view) and returns the logits
//! of the sequences whose chunk reaches their last token, and of every position of a
//! chunk whose prompt is being scored.
//!
//! It owns the KV memory: the paged pool ([`PagedKvStore`], read in place by the paged
//! attention kernel) on CPU f32, else one contiguous cache per sequence. Sizing the pool
//! from `--kv-cache-memory` (or the context and the available memory) is here too.

use crate::engine::blocks::BlockManager;
use crate::engine::scheduler::Step;
use crate::engine::sequence::Sequence;
use crate::engine::EngineConfig;
use crate::loaded_model::LoadedModel;
use candor_models::paged::{PagedKvStore, PagedSeqCache};
use candor_models::{ContiguousCache, DType, KvCache, LogitsFor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Bytes available to allocate: MemAvailable from /proc/meminfo where there is one.
pub fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The logits one batch entry of a step produced.
#[derive(Debug, Default)]
pub struct EntryLogits {
    /// The position the first row follows (each row predicts the token after it).
    pub first: usize,
    /// One row per position from `first`: none for a prefill chunk short of the prompt's
    /// end, one (the last position) for generation, the whole chunk when scoring.
    pub rows: Vec<Vec<f32>>,
}

pub struct Runner {
    lm: Arc<LoadedModel>,
    /// The paged pool, where the paged kernel runs (CPU, f32).
    store: Option<Arc<Mutex<PagedKvStore>>>,
    /// Without the pool: each running sequence's own cache, by sequence id.
    contiguous: HashMap<u64, ContiguousCache>,
}

impl Runner {
    /// Makes the KV memory for `lm`; with a paged pool, also the scheduler's bookkeeping
    /// of its blocks.
    pub fn new(
        lm: Arc<LoadedModel>,
        cfg: &EngineConfig,
        context: usize,
    ) -> (Self, Option<BlockManager>) {
        let store = paged_pool(&lm, cfg, context);
        let blocks = store
            .as_ref()
            .map(|s| BlockManager::new(s.num_blocks(), cfg.block_size));
        if store.is_none() {
            tracing::info!(
                "KV cache: one contiguous cache per sequence (the paged cache covers CPU f32)"
            );
        }
        let runner = Self {
            lm,
            store: store.map(|s| Arc::new(Mutex::new(s))),
            contiguous: HashMap::new(),
        };
        (runner, blocks)
    }

    /// Forgets a sequence that left the batch (its contiguous cache, if any).
    pub fn forget(&mut self, id: u64) {
        self.contiguous.remove(&id);
    }

    /// One step: the block copies, then one forward pass over the batch. Returns each
    /// batch entry's logits, in batch order.
    pub fn run<P>(
        &mut self,
        step: &Step,
        running: &[Sequence<P>],
    ) -> Result<Vec<EntryLogits>, String> {
        if let Some(store) = &self.store {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            for &(src, dst) in &step.copies {
                store.copy_block(src, dst).map_err(|e| e.to_string())?;
            }
        }
        if step.batch.is_empty() {
            return Ok(Vec::new());
        }
        let num_layers = self.lm.model.config().num_layers;
        // Contiguous caches are lent out of the map for the pass.
        let mut own: Vec<ContiguousCache> = Vec::new();
        if self.store.is_none() {
            for &(i, _) in &step.batch {
                let id = running[i].id;
                own.push(
                    self.contiguous
                        .remove(&id)
                        .unwrap_or_else(|| ContiguousCache::new(num_layers)),
                );
            }
        }
        let result = {
            let mut paged: Vec<PagedSeqCache> = match &self.store {
                Some(store) => step
                    .batch
                    .iter()
                    .map(|&(i, _)| {
                        let s = &running[i];
                        PagedSeqCache::new(store.clone(), &s.blocks, s.computed)
                    })
                    .collect(),
                None => Vec::new(),
            };
            let caches: Vec<&mut dyn KvCache> = if paged.is_empty() {
                own.iter_mut().map(|c| c as &mut dyn KvCache).collect()
            } else {
                paged.iter_mut().map(|c| c as &mut dyn KvCache).collect()
            };
            let mut inputs: Vec<candor_models::SequenceInput> = step
                .batch
                .iter()
                .zip(caches)
                .map(|(&(i, n), cache)| candor_models::SequenceInput {
                    tokens: &running[i].tokens[running[i].computed..running[i].computed + n],
                    start_pos: running[i].computed,
                    cache,
                    logits: logits_for(&running[i], n),
                })
                .collect();
            self.lm
                .model
                .forward(&mut inputs)
                .map_err(|e| e.to_string())
        };
        for (&(i, _), c) in step.batch.iter().zip(own) {
            self.contiguous.insert(running[i].id, c);
        }
        let out = result?;
        let mut rows = Vec::new();
        if out.dim(0).map_err(|e| e.to_string())? > 0 {
            // One copy out of the tensor, without the padding rows past the tokenizer.
            let width = out.dim(1).map_err(|e| e.to_string())?;
            rows = out
                .narrow(1, 0, self.lm.vocab_size().min(width))
                .and_then(|t| t.to_vec2())
                .map_err(|e| e.to_string())?;
        }
        let mut rows = rows.into_iter();
        Ok(step
            .batch
            .iter()
            .map(|&(i, n)| {
                let s = &running[i];
                let (first, count) = match logits_for(s, n) {
                    LogitsFor::All => (s.computed, n),
                    LogitsFor::Last => (s.computed + n - 1, 1),
                    LogitsFor::None => (s.computed, 0),
                };
                EntryLogits {
                    first,
                    rows: rows.by_ref().take(count).collect(),
                }
            })
            .collect())
    }
}

/// Which logits a sequence's chunk of `n` tokens needs: every position when one of them
/// predicts a prompt token still to be scored, else the last when the chunk ends the
/// sequence's tokens, else none.
fn logits_for<P>(s: &Sequence<P>, n: usize) -> LogitsFor {
    if s.score_from.is_some_and(|f| s.computed + n >= f) {
        LogitsFor::All
    } else if s.computed + n == s.tokens.len() {
        LogitsFor::Last
    } else {
        LogitsFor::None
    }
}

/// The paged pool where the paged kernel runs (CPU, f32), sized by `--kv-cache-memory`,
/// else enough for `max_running` full contexts capped at a quarter of the free memory.
fn paged_pool(lm: &LoadedModel, cfg: &EngineConfig, context: usize) -> Option<PagedKvStore> {
    if !(lm.model.device().is_cpu() && lm.model.dtype() == DType::F32) {
        return None;
    }
    let c = lm.model.config();
    let per_block =
        PagedKvStore::bytes_per_block(c.num_layers, c.num_kv_heads, c.head_dim, cfg.block_size);
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
            Some(store)
        }
        Err(e) => {
            tracing::warn!("KV cache: cannot make the paged pool ({e})");
            None
        }
    }
}
