//! Runs what the scheduler decided on the model: copies KV blocks, flattens a step into
//! one batch (each sequence's new tokens, positions and cache view) and returns the logits
//! of the sequences whose chunk reaches their last token, and of every position of a
//! chunk whose prompt is being scored.
//!
//! It owns the KV memory: one paged pool ([`PagedKvStore`]) on the model's device and in
//! its dtype, read in place by the CPU kernel on the CPU in f32 and through candle ops
//! elsewhere ([`PagedAttention`]). Sizing the pool from `--kv-cache-memory` (or the
//! context and the free memory) is here too.

use crate::device::free_memory;
use crate::engine::blocks::BlockManager;
use crate::engine::scheduler::Step;
use crate::engine::sequence::Sequence;
use crate::engine::{EngineConfig, KvCacheSize};
use crate::loaded_model::LoadedModel;
use candor_models::paged::{PagedAttention, PagedKvStore, PagedSeqCache};
use candor_models::{KvCache, LogitsFor};
use std::sync::{Arc, Mutex, PoisonError};

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
    /// The paged pool every sequence's keys and values live in.
    store: Arc<Mutex<PagedKvStore>>,
}

impl Runner {
    /// Makes the KV pool for `lm`, and the scheduler's bookkeeping of its blocks.
    pub fn new(
        lm: Arc<LoadedModel>,
        cfg: &EngineConfig,
        context: usize,
    ) -> Result<(Self, BlockManager), String> {
        let store = paged_pool(&lm, cfg, context)?;
        let blocks = BlockManager::new(store.num_blocks(), cfg.block_size);
        let runner = Self {
            lm,
            store: Arc::new(Mutex::new(store)),
        };
        Ok((runner, blocks))
    }

    /// One step: the block copies, then one forward pass over the batch. Returns each
    /// batch entry's logits, in batch order.
    pub fn run<P>(
        &mut self,
        step: &Step,
        running: &[Sequence<P>],
    ) -> Result<Vec<EntryLogits>, String> {
        {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            for &(src, dst) in &step.copies {
                store.copy_block(src, dst).map_err(|e| e.to_string())?;
            }
        }
        if step.batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut caches: Vec<PagedSeqCache> = step
            .batch
            .iter()
            .map(|&(i, _)| {
                let s = &running[i];
                PagedSeqCache::new(self.store.clone(), &s.blocks, s.computed)
            })
            .collect();
        let mut inputs: Vec<candor_models::SequenceInput> = step
            .batch
            .iter()
            .zip(caches.iter_mut())
            .map(|(&(i, n), cache)| candor_models::SequenceInput {
                tokens: &running[i].tokens[running[i].computed..running[i].computed + n],
                start_pos: running[i].computed,
                cache: cache as &mut dyn KvCache,
                logits: logits_for(&running[i], n),
            })
            .collect();
        let out = self
            .lm
            .model
            .forward(&mut inputs)
            .map_err(|e| e.to_string())?;
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

/// The paged pool in the model's dtype on its device, sized by `--kv-cache-memory`, else
/// enough for `max_running` full contexts capped at a share of the free memory: a quarter
/// of the system's available memory, or 80% of a GPU's free memory (the weights are
/// already loaded; the rest is for activations).
fn paged_pool(
    lm: &LoadedModel,
    cfg: &EngineConfig,
    context: usize,
) -> Result<PagedKvStore, String> {
    let (device, dtype) = (lm.model.device(), lm.model.dtype());
    let attention = cfg
        .attention
        .unwrap_or_else(|| PagedAttention::for_model(device, dtype));
    let c = lm.model.config();
    let per_block = PagedKvStore::bytes_per_block(
        c.num_layers,
        c.num_kv_heads,
        c.head_dim,
        cfg.block_size,
        dtype,
    );
    let free = free_memory(device);
    let wanted = match cfg.kv_cache {
        Some(KvCacheSize::Bytes(b)) => b,
        Some(KvCacheSize::Fraction(f)) => (free.unwrap_or(0) as f64 * f) as usize,
        None => {
            let full = cfg.max_running * context.div_ceil(cfg.block_size) * per_block;
            let share = if device.is_cuda() { 0.8 } else { 0.25 };
            let cap = free.map_or(usize::MAX, |m| (m as f64 * share) as usize);
            full.min(cap)
        }
    };
    let num_blocks = (wanted / per_block).max(1);
    let store = PagedKvStore::with(
        attention,
        [
            c.num_layers,
            c.num_kv_heads,
            c.head_dim,
            cfg.block_size,
            num_blocks,
        ],
        dtype,
        device,
    )
    .map_err(|e| {
        format!(
            "cannot allocate the KV cache ({num_blocks} blocks of {} tokens, {:.1} MiB of \
             {dtype:?} on {}): {e}; start the server with a smaller --kv-cache-memory",
            cfg.block_size,
            (num_blocks * per_block) as f64 / (1 << 20) as f64,
            crate::device::describe(device),
        )
    })?;
    tracing::info!(
        "KV cache: {num_blocks} blocks of {} tokens ({:.1} MiB of {dtype:?} on {}, {} tokens), \
         attention: {}",
        cfg.block_size,
        (num_blocks * per_block) as f64 / (1 << 20) as f64,
        crate::device::describe(device),
        num_blocks * cfg.block_size,
        match store.attention() {
            PagedAttention::CpuKernel => "CPU kernel",
            PagedAttention::Reference => "candle ops",
        },
    );
    Ok(store)
}
