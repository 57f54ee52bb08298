//! GGUF metadata, typed: the keys under the file's architecture prefix and the settings
//! every family reads the same way. The architecture files (`llama.rs`, ...) read their
//! own keys through it; [`crate::checkpoint`] picks the architecture.

use crate::config::{Arch, ModelConfig};
use crate::error::{ModelError, Result};
use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use std::path::Path;

/// Typed access to GGUF metadata under the file's architecture prefix.
pub struct GgufMeta<'a> {
    pub path: &'a Path,
    pub metadata: &'a HashMap<String, Value>,
    pub arch: String,
    /// Rows of `token_embd.weight`: the true vocabulary size of the weights.
    pub embedding_rows: Option<usize>,
}

impl<'a> GgufMeta<'a> {
    pub fn new(path: &'a Path, metadata: &'a HashMap<String, Value>) -> Result<Self> {
        let arch = metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or_else(|| ModelError::Gguf {
                path: path.to_path_buf(),
                message: "missing `general.architecture`".into(),
            })?;
        Ok(Self {
            path,
            metadata,
            arch,
            embedding_rows: None,
        })
    }

    fn err(&self, message: String) -> ModelError {
        ModelError::Gguf {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(&format!("{}.{key}", self.arch))
    }

    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                value_u64(v)
                    .ok_or_else(|| self.err(format!("`{}.{key}` is not an integer", self.arch)))
            })
            .transpose()
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_u64(key)?
            .map(|v| v as usize)
            .ok_or_else(|| self.err(format!("missing `{}.{key}`", self.arch)))
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        Ok(self.opt_u64(key)?.map(|v| v as usize))
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| match v {
                Value::F32(x) => Ok(*x as f64),
                Value::F64(x) => Ok(*x),
                other => value_u64(other)
                    .map(|x| x as f64)
                    .ok_or_else(|| self.err(format!("`{}.{key}` is not a number", self.arch))),
            })
            .transpose()
    }

    /// A per-layer bool array such as gemma3's `attention.sliding_window_pattern`.
    pub fn bool_array(&self, key: &str) -> Option<Vec<bool>> {
        match self.get(key)? {
            Value::Array(a) => a
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|v| v.to_string().ok())
            .map(|s| s.as_str())
    }

    /// A global (non-prefixed) key such as `tokenizer.ggml.eos_token_id`.
    pub fn global_u32(&self, key: &str) -> Option<u32> {
        self.metadata.get(key).and_then(value_u64).map(|v| v as u32)
    }

    /// `{arch}.attention.head_count_kv` may be a per-layer array; we need one value.
    pub fn head_count_kv(&self, default: usize) -> Result<usize> {
        match self.get("attention.head_count_kv") {
            None => Ok(default),
            Some(Value::Array(a)) => a
                .first()
                .and_then(value_u64)
                .map(|v| v as usize)
                .ok_or_else(|| self.err("empty attention.head_count_kv array".into())),
            Some(v) => value_u64(v)
                .map(|v| v as usize)
                .ok_or_else(|| self.err("attention.head_count_kv is not an integer".into())),
        }
    }

    /// Vocabulary size: the explicit key, else the length of the token list.
    pub fn vocab_size(&self) -> Option<usize> {
        self.opt_usize("vocab_size").ok().flatten().or_else(|| {
            self.metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok())
                .map(|v| v.len())
        })
    }

    /// Dispatches on `general.architecture`.
    /// Settings every family reads the same way from GGUF.
    pub fn base_config(&self, arch: Arch) -> Result<ModelConfig> {
        let hidden_size = self.usize("embedding_length")?;
        let num_heads = self.usize("attention.head_count")?;
        let num_kv_heads = self.head_count_kv(num_heads)?;
        let head_dim = self
            .opt_usize("attention.key_length")?
            .unwrap_or(hidden_size / num_heads.max(1));
        let vocab_size = self
            .embedding_rows
            .or_else(|| self.vocab_size())
            .ok_or_else(|| self.err("cannot tell the vocabulary size".into()))?;
        let eos = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
            .iter()
            .filter_map(|k| self.global_u32(k))
            .collect();
        Ok(ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: self.usize("feed_forward_length")?,
            num_layers: self.usize("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: self
                .opt_f64("attention.layer_norm_rms_epsilon")?
                .unwrap_or(1e-6),
            max_position_embeddings: self.opt_usize("context_length")?.unwrap_or(4096),
            rope: crate::config::RopeConfig {
                theta: self.opt_f64("rope.freq_base")?.unwrap_or(10_000.0),
                scaling: self.rope_scaling()?,
            },
            rope_local: None,
            rope_interleaved: false,
            tie_word_embeddings: false,
            attention_bias: false,
            qk_norm: false,
            norm_weight_offset: 0.0,
            sandwich_norms: false,
            activation: crate::config::Activation::Silu,
            embedding_scale: None,
            attention_scale: 1.0 / (head_dim as f64).sqrt(),
            attn_logit_softcapping: None,
            final_logit_softcapping: None,
            sliding_window: None,
            sliding_layers: Vec::new(),
            eos_token_ids: eos,
            bos_token_id: self.global_u32("tokenizer.ggml.bos_token_id"),
        })
    }

    fn rope_scaling(&self) -> Result<Option<crate::config::RopeScaling>> {
        use crate::config::RopeScaling;
        let kind = self.opt_str("rope.scaling.type").unwrap_or("none");
        let factor = self.opt_f64("rope.scaling.factor")?;
        match (kind, factor) {
            ("linear", Some(f)) if f != 1.0 => Ok(Some(RopeScaling::Linear { factor: f })),
            ("none", _) | ("linear", _) => Ok(None),
            (other, _) => Err(self.err(format!(
                "unsupported rope scaling `{other}` (supported: none, linear, and llama3 via rope_freqs)"
            ))),
        }
    }
}

fn value_u64(v: &Value) -> Option<u64> {
    Some(match v {
        Value::U8(x) => *x as u64,
        Value::I8(x) => *x as u64,
        Value::U16(x) => *x as u64,
        Value::I16(x) => *x as u64,
        Value::U32(x) => *x as u64,
        Value::I32(x) => *x as u64,
        Value::U64(x) => *x,
        Value::I64(x) => *x as u64,
        _ => return None,
    })
}
