//! One configuration shape for every supported decoder family.
//!
//! Each architecture file (`llama.rs`, `qwen2.rs`, `qwen3.rs`, `gemma3.rs`) turns its own
//! `config.json` or GGUF metadata into a [`ModelConfig`]; the shared [`crate::transformer`]
//! reads only this struct, so one forward pass serves every family and both file formats.

use crate::error::{ModelError, Result};
use serde::Deserialize;

/// The decoder families candor implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Arch {
    /// Names as GGUF `general.architecture` spells them.
    pub const SUPPORTED: &'static str = "llama, qwen2, qwen3, gemma3";

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }

    /// Maps a GGUF `general.architecture` or a config.json `model_type` (or an
    /// `architectures` class name) to a family.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "llama" | "LlamaForCausalLM" | "mistral" | "MistralForCausalLM" => Arch::Llama,
            "qwen2" | "Qwen2ForCausalLM" => Arch::Qwen2,
            "qwen3" | "Qwen3ForCausalLM" => Arch::Qwen3,
            "gemma3" | "gemma3_text" | "Gemma3ForCausalLM" | "Gemma3ForConditionalGeneration" => {
                Arch::Gemma3
            }
            _ => return None,
        })
    }

    pub fn unsupported(name: &str) -> ModelError {
        ModelError::UnsupportedArchitecture {
            name: name.to_string(),
            supported: Self::SUPPORTED,
        }
    }
}

/// How positions are turned into rotation angles.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Llama 3.x frequency-dependent scaling (transformers' `_compute_llama3_parameters`).
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
    /// Positions divided by `factor` (Gemma 3's 4B+ global layers).
    Linear { factor: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    pub theta: f64,
    pub scaling: Option<RopeScaling>,
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    pub fn from_hf(name: &str) -> Result<Self> {
        match name {
            "silu" | "swish" => Ok(Activation::Silu),
            "gelu_pytorch_tanh" | "gelu_tanh" | "gelu" => Ok(Activation::GeluTanh),
            other => Err(ModelError::Config(format!(
                "unsupported activation `{other}`"
            ))),
        }
    }
}

/// Everything the shared decoder needs to know about a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    /// Longest context the model was trained for.
    pub max_position_embeddings: usize,
    pub rope: RopeConfig,
    /// Rope of sliding-window layers where it differs from `rope` (Gemma 3's local base).
    pub rope_local: Option<RopeConfig>,
    /// GGUF llama checkpoints have q/k rows permuted by llama.cpp's converter, so the
    /// rotation pairs adjacent elements (GPT-J style) instead of the two halves.
    pub rope_interleaved: bool,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    /// Qwen3 and Gemma 3 RMS-normalise q and k per head before the rotation.
    pub qk_norm: bool,
    /// Gemma's RMSNorm multiplies by (1 + w); GGUF files already store 1 + w.
    pub norm_weight_offset: f64,
    /// Gemma 3 adds a norm after attention and after the MLP (sandwich norms).
    pub sandwich_norms: bool,
    pub activation: Activation,
    /// Gemma multiplies embeddings by sqrt(hidden_size).
    pub embedding_scale: Option<f64>,
    /// Softmax scale is `attention_scale` (1/sqrt(head_dim) unless configured).
    pub attention_scale: f64,
    pub attn_logit_softcapping: Option<f64>,
    pub final_logit_softcapping: Option<f64>,
    pub sliding_window: Option<usize>,
    /// Per layer: does it attend only within `sliding_window`?
    pub sliding_layers: Vec<bool>,
    /// End-of-sequence ids declared by the model config (tokenizers add their own).
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
}

impl ModelConfig {
    pub fn layer_is_sliding(&self, layer: usize) -> bool {
        self.sliding_window.is_some() && self.sliding_layers.get(layer).copied().unwrap_or(false)
    }

    /// Sanity checks shared by every family, so that a bad config fails at load with a
    /// message instead of a shape error deep in the forward pass.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(ModelError::Config(msg));
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.head_dim == 0 {
            return bad("head counts and head_dim must be positive".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {} must be even for rope", self.head_dim));
        }
        if self.num_layers == 0 || self.vocab_size == 0 || self.hidden_size == 0 {
            return bad("num_hidden_layers, vocab_size and hidden_size must be positive".into());
        }
        Ok(())
    }
}

/// `eos_token_id` in config.json is a number or a list of numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// The raw `rope_scaling` / `rope_parameters` object of config.json.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct HfRopeScaling {
    #[serde(alias = "type")]
    pub rope_type: Option<String>,
    pub factor: Option<f64>,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_position_embeddings: Option<usize>,
    pub rope_theta: Option<f64>,
}

impl HfRopeScaling {
    pub fn to_scaling(&self) -> Result<Option<RopeScaling>> {
        let kind = self.rope_type.as_deref().unwrap_or("default");
        match kind {
            "default" => Ok(None),
            "linear" => Ok(Some(RopeScaling::Linear {
                factor: self.factor.unwrap_or(1.0),
            })),
            "llama3" => Ok(Some(RopeScaling::Llama3 {
                factor: self.factor.unwrap_or(8.0),
                low_freq_factor: self.low_freq_factor.unwrap_or(1.0),
                high_freq_factor: self.high_freq_factor.unwrap_or(4.0),
                original_max_position_embeddings: self
                    .original_max_position_embeddings
                    .unwrap_or(8192),
            })),
            other => Err(ModelError::Config(format!(
                "unsupported rope scaling type `{other}` (supported: default, linear, llama3)"
            ))),
        }
    }
}

/// Fields of config.json common to the families we support; each architecture file
/// reads what applies to it.
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    pub model_type: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<HfRopeScaling>,
    /// transformers >= 5 writes `rope_parameters` instead of rope_theta / rope_scaling;
    /// Gemma 3 keeps one entry per layer type (`full_attention`, `sliding_attention`).
    pub rope_parameters: Option<serde_json::Value>,
    pub max_position_embeddings: Option<usize>,
    pub tie_word_embeddings: Option<bool>,
    pub attention_bias: Option<bool>,
    pub hidden_act: Option<String>,
    pub hidden_activation: Option<String>,
    pub eos_token_id: Option<TokenIds>,
    pub bos_token_id: Option<u32>,
    // Gemma 3
    pub query_pre_attn_scalar: Option<f64>,
    pub rope_local_base_freq: Option<f64>,
    pub sliding_window: Option<usize>,
    pub sliding_window_pattern: Option<usize>,
    pub layer_types: Option<Vec<String>>,
    pub attn_logit_softcapping: Option<f64>,
    pub final_logit_softcapping: Option<f64>,
    /// Multimodal Gemma 3 nests the decoder config here.
    pub text_config: Option<Box<serde_json::Value>>,
}

fn default_eps() -> f64 {
    1e-6
}

impl HfConfig {
    pub fn parse(text: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The rope of a layer type (`full_attention` / `sliding_attention`), or of every
    /// layer when `layer_type` is None, from whichever of the config forms is present.
    /// Returns None when the config does not say.
    pub fn rope_for(&self, layer_type: Option<&str>) -> Result<Option<RopeConfig>> {
        let parse = |v: &serde_json::Value| -> Result<RopeConfig> {
            let p: HfRopeScaling = serde_json::from_value(v.clone())
                .map_err(|e| ModelError::Config(format!("rope_parameters: {e}")))?;
            Ok(RopeConfig {
                theta: p.rope_theta.or(self.rope_theta).unwrap_or(10_000.0),
                scaling: p.to_scaling()?,
            })
        };
        if let Some(params) = &self.rope_parameters {
            let per_type = layer_type.and_then(|t| params.get(t));
            if let Some(v) = per_type {
                return parse(v).map(Some);
            }
            if params.get("rope_type").is_some() || params.get("rope_theta").is_some() {
                return parse(params).map(Some);
            }
            if let Some(v) = params.get("full_attention") {
                return parse(v).map(Some);
            }
        }
        if layer_type == Some("sliding_attention") {
            return Ok(None);
        }
        if self.rope_theta.is_none() && self.rope_scaling.is_none() {
            return Ok(None);
        }
        Ok(Some(RopeConfig {
            theta: self.rope_theta.unwrap_or(10_000.0),
            scaling: match &self.rope_scaling {
                Some(s) => s.to_scaling()?,
                None => None,
            },
        }))
    }

    /// The settings every family reads the same way; family files adjust the rest.
    pub fn base(&self, arch: Arch) -> Result<ModelConfig> {
        let head_dim = self.head_dim();
        let rope = self.rope_for(None)?.unwrap_or(RopeConfig {
            theta: 10_000.0,
            scaling: None,
        });
        let act = self
            .hidden_activation
            .as_deref()
            .or(self.hidden_act.as_deref())
            .unwrap_or("silu");
        Ok(ModelConfig {
            arch,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads: self.num_attention_heads,
            num_kv_heads: self.num_kv_heads(),
            head_dim,
            rms_norm_eps: self.rms_norm_eps,
            max_position_embeddings: self.max_position_embeddings.unwrap_or(4096),
            rope,
            rope_local: None,
            rope_interleaved: false,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            attention_bias: self.attention_bias.unwrap_or(false),
            qk_norm: false,
            norm_weight_offset: 0.0,
            sandwich_norms: false,
            activation: Activation::from_hf(act)?,
            embedding_scale: None,
            attention_scale: 1.0 / (head_dim as f64).sqrt(),
            attn_logit_softcapping: None,
            final_logit_softcapping: None,
            sliding_window: None,
            sliding_layers: Vec::new(),
            eos_token_ids: self.eos_ids(),
            bos_token_id: self.bos_token_id,
        })
    }

    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default()
    }
}
