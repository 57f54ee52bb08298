//! Building blocks shared by every architecture: RMS norm, rotary embeddings, the gated
//! MLP and scaled-dot-product attention with causal and sliding-window masks.

use crate::config::{Activation, RopeConfig, RopeScaling};
use crate::weights::{Linear, Projections};
use candle_core::{DType, Device, Result, Tensor};

/// RMS normalisation over the last dimension with a learned scale.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self {
            weight,
            eps: eps as f32,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if x.is_contiguous() {
            x.clone()
        } else {
            x.contiguous()?
        };
        candle_nn::ops::rms_norm(&x, &self.weight, self.eps)
    }
}

/// The SwiGLU / GeGLU feed-forward block: down(act(gate(x)) * up(x)).
pub struct Mlp {
    /// gate and up.
    pub gate_up: Projections,
    pub down: Linear,
    pub activation: Activation,
}

impl Mlp {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] = self
            .gate_up
            .forward(x)?
            .try_into()
            .expect("two projections");
        self.down
            .forward(&crate::gated::gated(self.activation, &gate, &up)?)
    }
}

/// Rotary position embedding: inverse frequencies, computed the way transformers does
/// (`modeling_rope_utils.py`), turned into cos/sin rows for arbitrary positions.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    /// `freq_factors`: llama.cpp's `rope_freqs` tensor (Llama 3 scaling stored as divisors).
    pub fn new(cfg: &RopeConfig, head_dim: usize, freq_factors: Option<&[f32]>) -> Self {
        let half = head_dim / 2;
        let base = cfg.theta as f32;
        let mut inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        match &cfg.scaling {
            None => {}
            Some(RopeScaling::Linear { factor }) => {
                for f in inv_freq.iter_mut() {
                    *f /= *factor as f32;
                }
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => {
                // transformers' _compute_llama3_parameters.
                let old_ctx = *original_max_position_embeddings as f32;
                let (factor, low, high) = (
                    *factor as f32,
                    *low_freq_factor as f32,
                    *high_freq_factor as f32,
                );
                let low_freq_wavelen = old_ctx / low;
                let high_freq_wavelen = old_ctx / high;
                for f in inv_freq.iter_mut() {
                    let wavelen = 2.0 * std::f32::consts::PI / *f;
                    let scaled = if wavelen > low_freq_wavelen {
                        *f / factor
                    } else {
                        *f
                    };
                    let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                    *f = if medium {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    };
                }
            }
        }
        if let Some(factors) = freq_factors {
            for (f, d) in inv_freq.iter_mut().zip(factors) {
                *f /= *d;
            }
        }
        Self { inv_freq }
    }

    /// cos and sin for each position: (t, 1, head_dim / 2) each.
    pub fn cos_sin(
        &self,
        positions: &[usize],
        device: &Device,
        dtype: DType,
    ) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let shape = (positions.len(), 1, half);
        let cos = Tensor::from_vec(cos, shape, device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, shape, device)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }

    /// Rotates x: (t, heads, head_dim), each token by its own row of cos/sin.
    pub fn apply(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        interleaved: bool,
    ) -> Result<Tensor> {
        let (t, h, d) = x.dims3()?;
        // candle's kernels take (b, h, seq, d) with per-batch cos/sin (b, seq, d/2): a token
        // is a batch entry of length one.
        let x4 = x.contiguous()?.reshape((t, h, 1, d))?;
        let y = if interleaved {
            candle_nn::rotary_emb::rope_i(&x4, cos, sin)?
        } else {
            candle_nn::rotary_emb::rope(&x4, cos, sin)?
        };
        y.reshape((t, h, d))
    }
}

/// Settings of one attention call.
pub struct AttentionParams {
    /// Multiplies q·k before the softmax.
    pub scale: f64,
    /// Gemma 2 style tanh soft-capping of the scores.
    pub softcap: Option<f64>,
    /// Sliding window: a query at position p sees keys at p - window + 1 ..= p.
    pub window: Option<usize>,
    /// Absolute position of the first query; keys start at position 0.
    pub start_pos: usize,
}

/// Causal attention of one sequence.
/// q: (heads, n, d); k, v: (kv_heads, len, d) with len = start_pos + n. Returns (n, heads * d).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, p: &AttentionParams) -> Result<Tensor> {
    let (nh, n, d) = q.dims3()?;
    let (nkv, len, _) = k.dims3()?;
    let rep = nh / nkv;
    let in_dtype = q.dtype();
    // Grouped-query attention without copying k/v: query heads that share a kv head are
    // stacked along the row axis. (nkv, rep * n, d)
    let q = q.reshape((nkv, rep * n, d))?;
    let mut scores = (q.matmul(&k.t()?)? * p.scale)?.to_dtype(DType::F32)?;
    if let Some(cap) = p.softcap {
        scores = ((scores / cap)?.tanh()? * cap)?;
    }
    if let Some(mask) = mask(n, len, p.start_pos, p.window, q.device())? {
        scores = scores
            .reshape((nkv, rep, n, len))?
            .broadcast_add(&mask)?
            .reshape((nkv, rep * n, len))?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(in_dtype)?;
    let out = probs.matmul(&v.contiguous()?)?; // (nkv, rep * n, d)
    out.reshape((nh, n, d))?
        .transpose(0, 1)?
        .reshape((n, nh * d))
}

/// Additive mask (n, len) with -inf where a query may not look; None when nothing is masked.
fn mask(
    n: usize,
    len: usize,
    start_pos: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    let window_bites = window.is_some_and(|w| len > w);
    if n == 1 && !window_bites {
        return Ok(None);
    }
    let mut m = vec![0f32; n * len];
    for i in 0..n {
        let qpos = start_pos + i;
        for (kpos, slot) in m[i * len..(i + 1) * len].iter_mut().enumerate() {
            let future = kpos > qpos;
            let outside = window.is_some_and(|w| qpos >= kpos + w);
            if future || outside {
                *slot = f32::NEG_INFINITY;
            }
        }
    }
    Tensor::from_vec(m, (n, len), device).map(Some)
}
