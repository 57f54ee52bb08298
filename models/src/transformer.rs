//! The decoder shared by every family: embeddings, a stack of attention + MLP blocks,
//! the final norm and the output head. Family differences are switches in
//! [`ModelConfig`]; the layers themselves live in [`crate::layers`].
//!
//! The forward pass takes a batch of sequences, each with its own tokens, first position
//! and KV cache owned by the caller ([`SequenceInput`]). Matrix products run once over every
//! token of the batch; attention runs per sequence inside that sequence's cache
//! ([`KvCache::attend`]).

use crate::config::{Activation, ModelConfig};
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::layers::{self, Mlp, RmsNorm, Rope};
use crate::weights::{Linear, Matrix, Name, Projections, Weights};
use candle_core::{DType, Device, Tensor};

/// Which positions of a sequence need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor {
    /// Only the last token: what generation needs.
    Last,
    /// Every token (scoring, tests).
    All,
    /// None: a prefill chunk that is not the prompt's last.
    None,
}

/// One sequence's share of a forward pass.
pub struct SequenceInput<'a> {
    /// New tokens to process.
    pub tokens: &'a [u32],
    /// Position of `tokens[0]`; equals the number of tokens already in `cache`.
    pub start_pos: usize,
    pub cache: &'a mut dyn KvCache,
    pub logits: LogitsFor,
}

struct Attention {
    /// q, k and v.
    qkv: Projections,
    o: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
}

struct Block {
    attn_norm: RmsNorm,
    attn: Attention,
    post_attn_norm: Option<RmsNorm>,
    ffn_norm: RmsNorm,
    mlp: Mlp,
    post_ffn_norm: Option<RmsNorm>,
    sliding: bool,
}

/// A loaded decoder-only language model.
pub struct Model {
    cfg: ModelConfig,
    embed: Matrix,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Matrix,
    rope: Rope,
    rope_local: Rope,
    device: Device,
    dtype: DType,
}

fn layer_name(i: usize, hf: &str, gguf: &str) -> Name {
    Name::new(
        format!("model.layers.{i}.{hf}.weight"),
        format!("blk.{i}.{gguf}.weight"),
    )
}

impl Model {
    pub fn new(mut cfg: ModelConfig, w: &Weights) -> Result<Self> {
        let (h, d) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let dtype = w.dtype();
        let norm = |name: &Name, len: usize| -> Result<RmsNorm> {
            // GGUF files from llama.cpp store Gemma's (1 + w) already.
            let offset = if w.is_gguf() {
                0.0
            } else {
                cfg.norm_weight_offset
            };
            let weight = (w.vector_f32(name, len)? + offset)?.to_dtype(dtype)?;
            Ok(RmsNorm::new(weight, cfg.rms_norm_eps))
        };

        let embed_name = Name::new("model.embed_tokens.weight", "token_embd.weight");
        let embed = w.matrix(&embed_name, cfg.vocab_size, h)?;
        let head_name = Name::new("lm_head.weight", "output.weight");
        // A GGUF without output.weight ties it to the embeddings, whatever the metadata says.
        let tied = cfg.tie_word_embeddings || (w.is_gguf() && !w.contains(&head_name));
        cfg.tie_word_embeddings = tied;

        let mut blocks = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let n = |hf: &str, gguf: &str| layer_name(i, hf, gguf);
            let bias = cfg.attention_bias;
            let attn = Attention {
                qkv: Projections::new(vec![
                    w.linear(&n("self_attn.q_proj", "attn_q"), nh * d, h, bias)?,
                    w.linear(&n("self_attn.k_proj", "attn_k"), nkv * d, h, bias)?,
                    w.linear(&n("self_attn.v_proj", "attn_v"), nkv * d, h, bias)?,
                ])?,
                o: w.linear(&n("self_attn.o_proj", "attn_output"), h, nh * d, false)?,
                q_norm: if cfg.qk_norm {
                    Some(norm(&n("self_attn.q_norm", "attn_q_norm"), d)?)
                } else {
                    None
                },
                k_norm: if cfg.qk_norm {
                    Some(norm(&n("self_attn.k_norm", "attn_k_norm"), d)?)
                } else {
                    None
                },
            };
            let (ffn_norm_hf, sandwich) = if cfg.sandwich_norms {
                ("pre_feedforward_layernorm", true)
            } else {
                ("post_attention_layernorm", false)
            };
            let inter = cfg.intermediate_size;
            blocks.push(Block {
                attn_norm: norm(&n("input_layernorm", "attn_norm"), h)?,
                attn,
                post_attn_norm: if sandwich {
                    Some(norm(
                        &n("post_attention_layernorm", "post_attention_norm"),
                        h,
                    )?)
                } else {
                    None
                },
                ffn_norm: norm(&n(ffn_norm_hf, "ffn_norm"), h)?,
                mlp: Mlp {
                    gate_up: Projections::new(vec![
                        w.linear(&n("mlp.gate_proj", "ffn_gate"), inter, h, false)?,
                        w.linear(&n("mlp.up_proj", "ffn_up"), inter, h, false)?,
                    ])?,
                    down: w.linear(&n("mlp.down_proj", "ffn_down"), h, inter, false)?,
                    activation: cfg.activation,
                },
                post_ffn_norm: if sandwich {
                    Some(norm(&n("post_feedforward_layernorm", "post_ffw_norm"), h)?)
                } else {
                    None
                },
                sliding: cfg.layer_is_sliding(i),
            });
        }
        let final_norm = norm(&Name::new("model.norm.weight", "output_norm.weight"), h)?;
        let lm_head = if tied {
            embed.clone()
        } else {
            w.matrix(&head_name, cfg.vocab_size, h)?
        };
        // Llama 3.x GGUFs carry the rope scaling as per-frequency divisors.
        let freq_name = Name::new("rope_freqs.weight", "rope_freqs.weight");
        let freq_factors = if w.is_gguf() && w.contains(&freq_name) {
            Some(w.vector_f32(&freq_name, d / 2)?.to_vec1::<f32>()?)
        } else {
            None
        };
        let rope = Rope::new(&cfg.rope, d, freq_factors.as_deref());
        let rope_local = match &cfg.rope_local {
            Some(r) => Rope::new(r, d, None),
            None => rope.clone(),
        };
        Ok(Self {
            embed,
            blocks,
            norm: final_norm,
            lm_head,
            rope,
            rope_local,
            device: w.device().clone(),
            dtype,
            cfg,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs the batch and returns the requested logits in f32, rows in batch order:
    /// (rows, vocab_size).
    pub fn forward(&self, seqs: &mut [SequenceInput<'_>]) -> Result<Tensor> {
        let cfg = &self.cfg;

        // 1. Flatten the batch: token ids, absolute positions, which rows want logits.
        let Flat {
            ids,
            positions,
            logit_rows,
        } = flatten(seqs, cfg.vocab_size, &self.device)?;
        let total = ids.dim(0)?;

        // 2. Embeddings: (t, hidden).
        let mut x = self.embed.embedding(&ids)?.to_dtype(self.dtype)?;
        if let Some(scale) = cfg.embedding_scale {
            // transformers scales in the model dtype.
            let s = Tensor::new(scale as f32, &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&s)?;
        }

        // 3. Rotation tables for this batch's positions: (t, 1, d/2).
        let (cos, sin) = self.rope.cos_sin(&positions, &self.device, self.dtype)?;
        let (cos_l, sin_l) = if cfg.rope_local.is_some() {
            self.rope_local
                .cos_sin(&positions, &self.device, self.dtype)?
        } else {
            (cos.clone(), sin.clone())
        };

        // 4. The blocks.
        for (li, block) in self.blocks.iter().enumerate() {
            let residual = x.clone();
            let hs = block.attn_norm.forward(&x)?;
            let a = &block.attn;
            let rope = if block.sliding {
                (&cos_l, &sin_l)
            } else {
                (&cos, &sin)
            };
            let attn = self.attention(li, block, &hs, rope, seqs)?;
            let mut o = a.o.forward(&attn)?;
            if let Some(n) = &block.post_attn_norm {
                o = n.forward(&o)?;
            }
            x = (residual + o)?;

            let residual = x.clone();
            let hs = block.ffn_norm.forward(&x)?;
            let mut m = block.mlp.forward(&hs)?;
            if let Some(n) = &block.post_ffn_norm {
                m = n.forward(&m)?;
            }
            x = (residual + m)?;
        }

        // 5. Logits for the rows that need them.
        if logit_rows.is_empty() {
            return Ok(Tensor::zeros(
                (0, cfg.vocab_size),
                DType::F32,
                &self.device,
            )?);
        }
        let rows = logit_rows.len();
        let x = if rows == total {
            x
        } else {
            x.index_select(&Tensor::from_vec(logit_rows, rows, &self.device)?, 0)?
        };
        let x = self.norm.forward(&x)?;
        let mut logits = self.lm_head.forward(&x)?.to_dtype(DType::F32)?;
        if let Some(cap) = cfg.final_logit_softcapping {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// Layer `li`'s attention over the batch: projections, norms and rotation of the
    /// flattened rows, then each sequence against its own cache. (t, hidden) ->
    /// (t, heads * head_dim).
    fn attention(
        &self,
        li: usize,
        block: &Block,
        hs: &Tensor,
        rope: (&Tensor, &Tensor),
        seqs: &mut [SequenceInput<'_>],
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (nh, nkv, d) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let total = hs.dim(0)?;
        let a = &block.attn;
        let [q, k, v]: [Tensor; 3] = a.qkv.forward(hs)?.try_into().expect("three projections");
        let q = q.reshape((total, nh, d))?;
        let k = k.reshape((total, nkv, d))?;
        let v = v.reshape((total, nkv, d))?;
        let q = match &a.q_norm {
            Some(n) => n.forward(&q)?,
            None => q,
        };
        let k = match &a.k_norm {
            Some(n) => n.forward(&k)?,
            None => k,
        };
        let (c, s) = rope;
        let q = self.rope.apply(&q, c, s, cfg.rope_interleaved)?;
        let k = self.rope.apply(&k, c, s, cfg.rope_interleaved)?;

        let mut outs = Vec::with_capacity(seqs.len());
        let mut offset = 0;
        for seq in seqs.iter_mut() {
            let n = seq.tokens.len();
            // (n, heads, d) -> (heads, n, d)
            let qs = q.narrow(0, offset, n)?.transpose(0, 1)?.contiguous()?;
            let ks = k.narrow(0, offset, n)?.transpose(0, 1)?.contiguous()?;
            let vs = v.narrow(0, offset, n)?.transpose(0, 1)?.contiguous()?;
            let window = if block.sliding {
                cfg.sliding_window
            } else {
                None
            };
            let params = layers::AttentionParams {
                scale: cfg.attention_scale,
                softcap: cfg.attn_logit_softcapping,
                window,
                start_pos: seq.start_pos,
            };
            outs.push(seq.cache.attend(li, &qs, &ks, &vs, &params)?);
            offset += n;
        }
        let attn = if outs.len() == 1 {
            outs.pop().expect("one output")
        } else {
            Tensor::cat(&outs, 0)?
        };
        Ok(attn)
    }
}

impl Activation {
    pub(crate) fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Silu => candle_nn::ops::silu(x),
            Activation::GeluTanh => x.gelu(),
        }
    }
}

/// Splits a (rows, vocab) logits tensor in f32 to host vectors.
pub fn logits_to_vecs(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// A batch flattened into one row per token.
struct Flat {
    ids: Tensor,
    /// Each row's absolute position in its sequence.
    positions: Vec<usize>,
    /// The rows whose logits were asked for, in batch order.
    logit_rows: Vec<u32>,
}

/// Checks and flattens a batch: every sequence has tokens inside the vocabulary and
/// starts where its cache ends.
fn flatten(seqs: &[SequenceInput<'_>], vocab_size: usize, device: &Device) -> Result<Flat> {
    let total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
    if total == 0 {
        return Err(ModelError::Batch(
            "a forward pass needs at least one token".into(),
        ));
    }
    let mut ids = Vec::with_capacity(total);
    let mut positions = Vec::with_capacity(total);
    let mut logit_rows = Vec::new();
    for s in seqs.iter() {
        if s.tokens.is_empty() {
            return Err(ModelError::Batch(
                "a sequence in the batch has no tokens".into(),
            ));
        }
        if s.start_pos != s.cache.len() {
            return Err(ModelError::Batch(format!(
                "sequence starts at position {} but its cache holds {} tokens",
                s.start_pos,
                s.cache.len()
            )));
        }
        if let Some(&bad) = s.tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::Batch(format!(
                "token id {bad} is outside the vocabulary (size {})",
                vocab_size
            )));
        }
        let base = ids.len();
        ids.extend_from_slice(s.tokens);
        positions.extend(s.start_pos..s.start_pos + s.tokens.len());
        match s.logits {
            LogitsFor::Last => logit_rows.push((base + s.tokens.len() - 1) as u32),
            LogitsFor::All => logit_rows.extend((base..base + s.tokens.len()).map(|r| r as u32)),
            LogitsFor::None => {}
        }
    }
    let ids = Tensor::from_vec(ids, total, device)?;
    Ok(Flat {
        ids,
        positions,
        logit_rows,
    })
}
