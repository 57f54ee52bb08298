//! The KV cache interface the models attend through, and a contiguous implementation.
//!
//! The cache is owned by the caller, one per sequence, so that a scheduler can batch any
//! set of sequences. The engine uses the paged cache ([`crate::paged`]);
//! [`ContiguousCache`] is the unpaged one, for running a model directly and as the
//! reference the paged cache is tested against. The cache computes attention
//! itself, so that each one reads keys and values from its own storage without first
//! gathering them into one tensor.

use crate::error::Result;
use crate::layers::{self, AttentionParams};
use candle_core::Tensor;

/// Keys and values of one sequence across all layers.
pub trait KvCache {
    /// Tokens stored so far (after the last layer of the last forward pass).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores this step's keys and values, (kv_heads, n, head_dim), already rotated and
    /// normed, at positions `params.start_pos..+n` of `layer`, and returns the causal
    /// attention of the queries q, (heads, n, head_dim), over every key of the sequence at
    /// that layer: (n, heads * head_dim), as [`layers::attention`] computes it.
    fn attend(
        &mut self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        params: &AttentionParams,
    ) -> Result<Tensor>;
}

struct LayerKv {
    /// (kv_heads, capacity, head_dim); the first `len` positions are filled.
    k: Tensor,
    v: Tensor,
    len: usize,
}

/// A growable buffer per layer: appends write in place, capacity doubles when full, so a
/// decode step copies only its own keys and values.
pub struct ContiguousCache {
    layers: Vec<Option<LayerKv>>,
    /// Initial capacity in tokens of a layer's buffer.
    min_capacity: usize,
}

impl ContiguousCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| None).collect(),
            min_capacity: 256,
        }
    }

    /// Drops everything after the first `len` tokens (for prompt-prefix reuse).
    pub fn truncate(&mut self, len: usize) {
        for l in self.layers.iter_mut().flatten() {
            l.len = l.len.min(len);
        }
    }

    pub fn clear(&mut self) {
        for l in self.layers.iter_mut() {
            *l = None;
        }
    }

    /// Appends this step's keys and values, (kv_heads, n, head_dim), to `layer`, and
    /// returns every key and value of the sequence at that layer: (kv_heads, len, head_dim).
    fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (kv_heads, n, head_dim) = k.dims3()?;
        let slot = &mut self.layers[layer];
        let needed = slot.as_ref().map_or(0, |l| l.len) + n;
        let grow = match slot {
            Some(l) => needed > l.k.dim(1)?,
            None => true,
        };
        if grow {
            let cap = needed.next_power_of_two().max(self.min_capacity);
            let shape = (kv_heads, cap, head_dim);
            let nk = Tensor::zeros(shape, k.dtype(), k.device())?;
            let nv = Tensor::zeros(shape, v.dtype(), v.device())?;
            let len = match slot.take() {
                Some(old) => {
                    if old.len > 0 {
                        nk.slice_set(&old.k.narrow(1, 0, old.len)?.contiguous()?, 1, 0)?;
                        nv.slice_set(&old.v.narrow(1, 0, old.len)?.contiguous()?, 1, 0)?;
                    }
                    old.len
                }
                None => 0,
            };
            *slot = Some(LayerKv { k: nk, v: nv, len });
        }
        let l = slot.as_mut().expect("layer buffer allocated above");
        l.k.slice_set(k, 1, l.len)?;
        l.v.slice_set(v, 1, l.len)?;
        l.len += n;
        Ok((l.k.narrow(1, 0, l.len)?, l.v.narrow(1, 0, l.len)?))
    }
}

impl KvCache for ContiguousCache {
    fn len(&self) -> usize {
        // Every layer holds the same number of tokens between forward passes; the last
        // layer is the last to be written.
        match self.layers.last() {
            Some(Some(l)) => l.len,
            _ => 0,
        }
    }

    fn attend(
        &mut self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        params: &AttentionParams,
    ) -> Result<Tensor> {
        let (k_all, v_all) = self.append(layer, k, v)?;
        Ok(layers::attention(q, &k_all, &v_all, params)?)
    }
}
