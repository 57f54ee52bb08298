//! Paged attention with candle ops, for every device and dtype the CPU kernel does not
//! cover (a GPU, or f16/bf16 anywhere). A layer's keys and values are tensors of one row
//! per token slot, (num_blocks * block_size, kv_heads * head_dim). One attention call:
//! 1. scatters the step's keys and values into the rows of their slots;
//! 2. gathers the sequence's blocks in table order (one `index_select` of whole blocks)
//!    and keeps its first `start + n` positions: (kv_heads, len, head_dim);
//! 3. runs [`layers::attention`] over them, the function the contiguous cache uses, so
//!    masking, grouped-query heads, the sliding window and soft-capping are the same code.
//!
//! The gather copies the sequence's cache once per layer and step; a fused kernel that
//! reads the blocks in place is what a device gets next (the CPU f32 one is
//! [`super::kernel`]).

use crate::error::Result;
use crate::layers::{self, AttentionParams};
use candle_core::{Device, Tensor};

/// Where one forward pass of one sequence writes and reads: the same for every layer, so
/// it is made once per pass (and uploaded once to a GPU).
pub(super) struct PassIndex {
    start: usize,
    n: usize,
    block_size: usize,
    /// (n, kv_heads * head_dim): each new token's slot row, repeated across the row (a
    /// scatter takes an index per element).
    slots: Tensor,
    /// The blocks holding positions 0..start + n, in position order.
    blocks: Tensor,
}

impl PassIndex {
    /// The index of n tokens at positions `start..start + n` through `table` (which
    /// covers them), for rows of `width` = kv_heads * head_dim elements.
    pub(super) fn new(
        table: &[u32],
        block_size: usize,
        start: usize,
        n: usize,
        width: usize,
        device: &Device,
    ) -> Result<Self> {
        let slot =
            |pos: usize| table[pos / block_size] * block_size as u32 + (pos % block_size) as u32;
        let slots: Vec<u32> = (start..start + n)
            .flat_map(|pos| std::iter::repeat_n(slot(pos), width))
            .collect();
        let used = (start + n).div_ceil(block_size);
        Ok(Self {
            start,
            n,
            block_size,
            slots: Tensor::from_vec(slots, (n, width), device)?,
            blocks: Tensor::from_slice(&table[..used], used, device)?,
        })
    }

    /// Whether this is the index of n tokens from `start`.
    pub(super) fn is_for(&self, start: usize, n: usize) -> bool {
        (self.start, self.n) == (start, n)
    }
}

/// Stores k and v, (kv_heads, n, head_dim), in the layer's `k_store` and `v_store` at the
/// slots of `pass`, and returns the causal attention of q, (heads, n, head_dim), over the
/// sequence's positions `0..start + n`: (n, heads * head_dim). The caller has checked the
/// shapes, dtypes, devices and the block table.
pub(super) fn attend(
    k_store: &Tensor,
    v_store: &Tensor,
    pass: &PassIndex,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    params: &AttentionParams,
) -> Result<Tensor> {
    let (kvh, n, d) = k.dims3()?;
    let bs = pass.block_size;
    let rows = |t: &Tensor| t.transpose(0, 1)?.contiguous()?.reshape((n, kvh * d));
    k_store.scatter_set(&pass.slots, &rows(k)?, 0)?;
    v_store.scatter_set(&pass.slots, &rows(v)?, 0)?;
    let len = pass.start + n;
    let used = pass.blocks.dim(0)?;
    let gather = |store: &Tensor| -> candle_core::Result<Tensor> {
        let num_blocks = store.dim(0)? / bs;
        store
            .reshape((num_blocks, bs * kvh * d))?
            .index_select(&pass.blocks, 0)?
            .reshape((used * bs, kvh, d))?
            .narrow(0, 0, len)?
            .transpose(0, 1)?
            .contiguous()
    };
    Ok(layers::attention(
        q,
        &gather(k_store)?,
        &gather(v_store)?,
        params,
    )?)
}
