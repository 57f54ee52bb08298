//! A block-paged KV cache and the attention that reads it, after vLLM's PagedAttention
//! (Kwon et al., "Efficient Memory Management for Large Language Model Serving with
//! PagedAttention", SOSP 2023).
//!
//! [`PagedKvStore`] holds the keys and values of every layer for a pool of fixed-size
//! blocks, on the model's device and in its dtype. [`PagedSeqCache`] is one sequence's
//! view of the store through its block table (position p lives in block
//! `block_table[p / block_size]`, slot `p % block_size`) and implements [`KvCache`]: it
//! writes a step's keys and values into their slots and attends over the sequence's
//! blocks with one of two [`PagedAttention`] paths:
//! - on the CPU in f32, [`kernel`] reads the blocks in place (AVX2 and FMA where the CPU
//!   has them), so no step gathers a sequence's whole cache;
//! - on any device and dtype, [`reference`] does it with candle ops: a scatter of the new
//!   keys and values into their slots, a gather of the sequence's blocks, then
//!   [`crate::layers::attention`] (masked softmax, grouped-query heads, sliding window,
//!   soft-capping) as the contiguous cache computes it.
//!
//! Which blocks a sequence gets, prefix sharing (and the copy-on-write of a shared partial
//! block, [`PagedKvStore::copy_block`]) and preemption are the engine's business; this
//! module stores, copies and reads blocks as it is told.

mod kernel;
mod reference;

#[cfg(test)]
use kernel::attention_with;
pub use kernel::{paged_attention, LayerBlocks};

use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::layers::AttentionParams;
use candle_core::{DType, Device, Tensor};
use std::sync::{Arc, Mutex, PoisonError};

/// How a [`PagedKvStore`] is laid out and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagedAttention {
    /// CPU, f32: host buffers read in place by [`paged_attention`].
    CpuKernel,
    /// Any device and dtype: candle tensors, gathered per sequence and attended with
    /// candle ops.
    Reference,
}

impl PagedAttention {
    /// The path for a model computing in `dtype` on `device`: the kernel where it runs.
    pub fn for_model(device: &Device, dtype: DType) -> Self {
        if device.is_cpu() && dtype == DType::F32 {
            Self::CpuKernel
        } else {
            Self::Reference
        }
    }
}

/// Keys and values of every layer in `num_blocks` blocks of `block_size` token slots.
pub struct PagedKvStore {
    storage: Storage,
    num_layers: usize,
    kv_heads: usize,
    head_dim: usize,
    block_size: usize,
    num_blocks: usize,
    dtype: DType,
    device: Device,
}

enum Storage {
    /// Per layer, (num_blocks, kv_heads, block_size, head_dim) f32: the keys of one kv
    /// head in one block are contiguous, so the kernel reads them as one slice.
    Host { k: Vec<Vec<f32>>, v: Vec<Vec<f32>> },
    /// Per layer, (num_blocks * block_size, kv_heads * head_dim): one row per token slot,
    /// so that a step's keys land with one scatter and a block is a run of rows.
    Tensors { k: Vec<Tensor>, v: Vec<Tensor> },
}

impl PagedKvStore {
    /// A CPU f32 store read by the kernel, allocated whole and zeroed:
    /// `num_blocks * bytes_per_block(..)` bytes.
    pub fn new(
        num_layers: usize,
        kv_heads: usize,
        head_dim: usize,
        block_size: usize,
        num_blocks: usize,
    ) -> Result<Self> {
        Self::with(
            PagedAttention::CpuKernel,
            [num_layers, kv_heads, head_dim, block_size, num_blocks],
            DType::F32,
            &Device::Cpu,
        )
    }

    /// A store read by `attention`; `dims`: layers, kv heads, head dimension, block size,
    /// blocks. [`PagedAttention::Reference`] takes any dtype and device (on the CPU in
    /// f32 too, where it checks the kernel).
    pub fn with(
        attention: PagedAttention,
        dims: [usize; 5],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let [num_layers, kv_heads, head_dim, block_size, num_blocks] = dims;
        if [num_layers, kv_heads, head_dim, block_size].contains(&0) {
            return Err(ModelError::KvCache(format!(
                "a store needs at least one layer, kv head, head dimension and slot per block \
                 (got {num_layers} layers, {kv_heads} kv heads, head_dim {head_dim}, \
                 block_size {block_size})"
            )));
        }
        let slots = block_size
            .checked_mul(num_blocks)
            .filter(|s| s.checked_mul(kv_heads * head_dim).is_some())
            .ok_or_else(|| ModelError::KvCache(format!("{num_blocks} blocks overflow usize")))?;
        let storage = match attention {
            PagedAttention::CpuKernel => {
                if !device.is_cpu() || dtype != DType::F32 {
                    return Err(ModelError::KvCache(format!(
                        "the CPU kernel's store holds f32 on the CPU, not {dtype:?} on {:?}",
                        device.location()
                    )));
                }
                let per_layer = slots * kv_heads * head_dim;
                let buffers = || (0..num_layers).map(|_| vec![0f32; per_layer]).collect();
                Storage::Host {
                    k: buffers(),
                    v: buffers(),
                }
            }
            PagedAttention::Reference => {
                let shape = (slots, kv_heads * head_dim);
                let buffers = || {
                    (0..num_layers)
                        .map(|_| Tensor::zeros(shape, dtype, device))
                        .collect::<candle_core::Result<Vec<_>>>()
                };
                Storage::Tensors {
                    k: buffers()?,
                    v: buffers()?,
                }
            }
        };
        Ok(Self {
            storage,
            num_layers,
            kv_heads,
            head_dim,
            block_size,
            num_blocks,
            dtype,
            device: device.clone(),
        })
    }

    /// Bytes one block takes across all layers, keys and values, in `dtype`: what the
    /// engine divides a memory budget by to size the pool.
    pub fn bytes_per_block(
        num_layers: usize,
        kv_heads: usize,
        head_dim: usize,
        block_size: usize,
        dtype: DType,
    ) -> usize {
        2 * num_layers * kv_heads * head_dim * block_size * dtype.size_in_bytes()
    }

    /// The attention path that reads this store.
    pub fn attention(&self) -> PagedAttention {
        match self.storage {
            Storage::Host { .. } => PagedAttention::CpuKernel,
            Storage::Tensors { .. } => PagedAttention::Reference,
        }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn num_layers(&self) -> usize {
        self.num_layers
    }

    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Token slots per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Copies block `src` over block `dst` in every layer, keys and values: copy-on-write
    /// of a partial block shared by several sequences, before one of them appends to it.
    pub fn copy_block(&mut self, src: u32, dst: u32) -> Result<()> {
        let (src, dst) = (src as usize, dst as usize);
        if src >= self.num_blocks || dst >= self.num_blocks {
            return Err(ModelError::KvCache(format!(
                "copy_block({src}, {dst}): the store has {} blocks",
                self.num_blocks
            )));
        }
        let bs = self.block_size;
        match &mut self.storage {
            Storage::Host { k, v } => {
                let len = self.kv_heads * bs * self.head_dim;
                for buf in k.iter_mut().chain(v.iter_mut()) {
                    buf.copy_within(src * len..(src + 1) * len, dst * len);
                }
            }
            Storage::Tensors { k, v } => {
                for t in k.iter().chain(v.iter()) {
                    // A copy first: slice_set cannot read the storage it writes.
                    let block = t.narrow(0, src * bs, bs)?.copy()?;
                    t.slice_set(&block, 0, dst * bs)?;
                }
            }
        }
        Ok(())
    }

    /// The kernel's view of one layer; None for a store of tensors.
    pub fn layer(&self, layer: usize) -> Option<LayerBlocks<'_>> {
        match &self.storage {
            Storage::Host { k, v } => Some(LayerBlocks {
                k: &k[layer],
                v: &v[layer],
                kv_heads: self.kv_heads,
                head_dim: self.head_dim,
                block_size: self.block_size,
            }),
            Storage::Tensors { .. } => None,
        }
    }

    /// One layer's keys and values, (num_blocks * block_size, kv_heads * head_dim) each;
    /// None for the kernel's host store.
    pub fn layer_tensors(&self, layer: usize) -> Option<(&Tensor, &Tensor)> {
        match &self.storage {
            Storage::Tensors { k, v } => Some((&k[layer], &v[layer])),
            Storage::Host { .. } => None,
        }
    }

    /// Writes n tokens' keys and values, (kv_heads, n, head_dim) each, at positions
    /// `start..start + n` of `layer` of the host store. The caller has checked the table
    /// and the shapes.
    fn write_host(&mut self, layer: usize, table: &[u32], start: usize, k: &[f32], v: &[f32]) {
        let (d, bs, kvh) = (self.head_dim, self.block_size, self.kv_heads);
        let Storage::Host { k: ks, v: vs } = &mut self.storage else {
            unreachable!("write_host on a store of tensors");
        };
        let n = k.len() / (kvh * d);
        for (buf, src) in [(&mut ks[layer], k), (&mut vs[layer], v)] {
            for g in 0..kvh {
                for t in 0..n {
                    let pos = start + t;
                    let block = table[pos / bs] as usize;
                    let at = ((block * kvh + g) * bs + pos % bs) * d;
                    buf[at..at + d].copy_from_slice(&src[(g * n + t) * d..][..d]);
                }
            }
        }
    }
}

/// One sequence's view of a shared [`PagedKvStore`]: its block table and how many tokens
/// it holds. The engine builds one per sequence for each forward pass, all sharing the
/// store, and lends them to [`crate::SequenceInput`] as `&mut dyn KvCache`.
pub struct PagedSeqCache<'t> {
    store: Arc<Mutex<PagedKvStore>>,
    /// Position p lives in block `block_table[p / block_size]`.
    block_table: &'t [u32],
    /// Tokens stored per layer. A forward pass writes the layers one after another, so
    /// they differ only in the middle of one; between passes they are all equal.
    lens: Vec<usize>,
    /// The reference path's slot and block indices of the current pass, made at its
    /// first layer and used by every other.
    pass: Option<reference::PassIndex>,
}

impl<'t> PagedSeqCache<'t> {
    /// A view of a sequence whose first `len` tokens are already in the blocks of
    /// `block_table` (a shared prefix, or this sequence's own earlier steps). The table
    /// must cover every position the coming forward passes write; it is borrowed, so the
    /// engine lends each sequence's table for a pass without copying it.
    pub fn new(store: Arc<Mutex<PagedKvStore>>, block_table: &'t [u32], len: usize) -> Self {
        // The layer count never changes after construction, so a poisoned lock cannot
        // have left it half-written.
        let layers = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .num_layers();
        Self {
            store,
            block_table,
            lens: vec![len; layers],
            pass: None,
        }
    }
}

/// The contents of a CPU f32 tensor, row-major.
fn cpu_f32(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    if !t.device().is_cpu() || t.dtype() != DType::F32 {
        return Err(ModelError::KvCache(format!(
            "the CPU kernel's store takes f32 tensors on the CPU; {what} is {:?} on {:?}",
            t.dtype(),
            t.device().location()
        )));
    }
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl KvCache for PagedSeqCache<'_> {
    fn len(&self) -> usize {
        *self.lens.last().expect("a store has at least one layer")
    }

    fn attend(
        &mut self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        params: &AttentionParams,
    ) -> Result<Tensor> {
        let err = |m: String| Err(ModelError::KvCache(m));
        let (heads, n, d) = q.dims3()?;
        let k_dims = k.dims3()?;
        if v.dims3()? != k_dims {
            return err(format!(
                "keys {:?} and values {:?} differ in shape",
                k.dims(),
                v.dims()
            ));
        }
        let mut store = match self.store.lock() {
            Ok(s) => s,
            Err(_) => {
                return err(
                    "the store's lock is poisoned: a thread panicked while holding it".into(),
                )
            }
        };
        let (kvh, bs) = (store.kv_heads, store.block_size);
        if layer >= store.num_layers() {
            return err(format!(
                "layer {layer} of a {}-layer store",
                store.num_layers()
            ));
        }
        if k_dims != (kvh, n, store.head_dim) || d != store.head_dim {
            return err(format!(
                "q {:?} and k {:?} do not fit a store of {kvh} kv heads of dimension {}",
                q.dims(),
                k.dims(),
                store.head_dim
            ));
        }
        if heads == 0 || !heads.is_multiple_of(kvh) {
            return err(format!(
                "{heads} query heads do not share {kvh} kv heads evenly"
            ));
        }
        let start = self.lens[layer];
        if params.start_pos != start {
            return err(format!(
                "attention starts at position {} but layer {layer} holds {start} tokens",
                params.start_pos
            ));
        }
        if params.window == Some(0) {
            return err("a sliding window of 0 sees no key".into());
        }
        let end = start + n;
        let blocks = end.div_ceil(bs);
        if self.block_table.len() < blocks {
            return err(format!(
                "{end} tokens need {blocks} blocks of {bs}; the block table has {}",
                self.block_table.len()
            ));
        }
        let table = &self.block_table[..blocks];
        if let Some(&bad) = table.iter().find(|&&b| b as usize >= store.num_blocks) {
            return err(format!(
                "block {bad} in the block table; the store has {}",
                store.num_blocks
            ));
        }

        let out = match store.attention() {
            PagedAttention::CpuKernel => {
                let (q_all, k_new, v_new) = (cpu_f32(q, "q")?, cpu_f32(k, "k")?, cpu_f32(v, "v")?);
                store.write_host(layer, table, start, &k_new, &v_new);
                let blocks = store.layer(layer).expect("a host store");
                let out = paged_attention(&q_all, heads, blocks, table, params);
                Tensor::from_vec(out, (n, heads * d), &Device::Cpu)?
            }
            PagedAttention::Reference => {
                for (t, what) in [(q, "q"), (k, "k"), (v, "v")] {
                    if t.dtype() != store.dtype || !t.device().same_device(&store.device) {
                        return err(format!(
                            "the store holds {:?} on {:?}; {what} is {:?} on {:?}",
                            store.dtype,
                            store.device.location(),
                            t.dtype(),
                            t.device().location()
                        ));
                    }
                }
                if !self.pass.as_ref().is_some_and(|p| p.is_for(start, n)) {
                    self.pass = Some(reference::PassIndex::new(
                        table,
                        bs,
                        start,
                        n,
                        kvh * d,
                        &store.device,
                    )?);
                }
                let pass = self.pass.as_ref().expect("made above");
                let (ks, vs) = store.layer_tensors(layer).expect("a store of tensors");
                reference::attend(ks, vs, pass, q, k, v, params)?
            }
        };
        self.lens[layer] = end;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
