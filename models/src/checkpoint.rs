//! Finding out what a path on disk holds, before any weight is read.
//!
//! [`Checkpoint::open`] reads only headers: a GGUF file's metadata and tensor table, or a
//! folder's config.json and safetensors index. The caller can then build the tokenizer and
//! chat template from it and call [`Checkpoint::load`] for the weights.

use crate::config::{Arch, HfConfig, ModelConfig};
use crate::error::{candle_message, ModelError, Result};
use crate::transformer::Model;
use crate::weights::{ProgressFn, Weights};
use crate::{gemma3, llama, qwen2, qwen3};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::{DType, Device};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to load weights.
#[derive(Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// Compute dtype for safetensors checkpoints (GGUF always computes in F32); None = F32.
    pub dtype: Option<DType>,
    pub progress: Option<ProgressFn>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: None,
            progress: None,
        }
    }
}

/// The kind of file a checkpoint is.
pub enum Format {
    Gguf {
        content: Arc<gguf_file::Content>,
    },
    HfFolder {
        config_text: String,
        weight_files: Vec<PathBuf>,
    },
}

/// A model on disk whose headers have been read.
pub struct Checkpoint {
    /// The .gguf file or the folder.
    pub path: PathBuf,
    pub format: Format,
    pub config: ModelConfig,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Checkpoint {
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        if meta.is_dir() {
            Self::open_folder(path)
        } else {
            Self::open_gguf(path)
        }
    }

    fn open_gguf(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| ModelError::Gguf {
            path: path.to_path_buf(),
            message: candle_message(&e),
        })?;
        let mut meta = GgufMeta::new(path, &content.metadata)?;
        meta.embedding_rows = content
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0]);
        let mut config = meta.model_config()?;
        // llama.cpp drops output.weight when it equals the embeddings.
        config.tie_word_embeddings = !content.tensor_infos.contains_key("output.weight");
        config.validate()?;
        Ok(Self {
            path: path.to_path_buf(),
            format: Format::Gguf {
                content: Arc::new(content),
            },
            config,
        })
    }

    fn open_folder(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(ModelError::NotAModel {
                path: dir.to_path_buf(),
            });
        }
        let config_text = std::fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
        let config = config_from_hf_text(&config_text).map_err(|e| match e {
            ModelError::Config(message) => ModelError::ConfigFile {
                path: config_path.clone(),
                message,
            },
            other => other,
        })?;
        config.validate()?;
        let weight_files = safetensors_files(dir)?;
        Ok(Self {
            path: dir.to_path_buf(),
            format: Format::HfFolder {
                config_text,
                weight_files,
            },
            config,
        })
    }

    /// GGUF metadata, for building the tokenizer and template from the same file.
    pub fn gguf_content(&self) -> Option<&gguf_file::Content> {
        match &self.format {
            Format::Gguf { content } => Some(content),
            Format::HfFolder { .. } => None,
        }
    }

    /// Reads the weights and builds the model.
    pub fn load(&self, opts: &LoadOptions) -> Result<Model> {
        let weights = match &self.format {
            Format::Gguf { content } => {
                let file = File::open(&self.path).map_err(io_err(&self.path))?;
                Weights::gguf(&self.path, file, content.clone(), &opts.device)?
            }
            Format::HfFolder { weight_files, .. } => Weights::safetensors(
                &self.path,
                weight_files,
                &opts.device,
                opts.dtype.unwrap_or(DType::F32),
            )?,
        };
        let weights = weights.with_progress(opts.progress.clone());
        Model::new(self.config.clone(), &weights)
    }

    /// Number of parameters, read from the tensor headers.
    pub fn parameter_count(&self) -> Result<usize> {
        match &self.format {
            Format::Gguf { content } => Ok(content
                .tensor_infos
                .values()
                .map(|t| t.shape.elem_count())
                .sum()),
            Format::HfFolder { weight_files, .. } => {
                // SAFETY: read-only mapping, only the headers are read.
                let st =
                    unsafe { candle_core::safetensors::MmapedSafetensors::multi(weight_files) }
                        .map_err(|e| ModelError::Safetensors {
                            path: self.path.clone(),
                            message: e.to_string(),
                        })?;
                Ok(st
                    .tensors()
                    .iter()
                    .map(|(_, v)| v.shape().iter().product::<usize>())
                    .sum())
            }
        }
    }

    /// Bytes of weight data in the checkpoint.
    pub fn weight_bytes(&self) -> u64 {
        match &self.format {
            Format::Gguf { content } => content
                .tensor_infos
                .values()
                .map(|t| {
                    (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size())
                        as u64
                })
                .sum(),
            Format::HfFolder { weight_files, .. } => weight_files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
        }
    }
}

/// Parses config.json text and dispatches on the architecture.
pub fn config_from_hf_text(text: &str) -> Result<ModelConfig> {
    let raw: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ModelError::Config(e.to_string()))?;
    let arch_name = raw
        .get("model_type")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| {
            raw.get("architectures")
                .and_then(|a| a.get(0))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| ModelError::Config("neither model_type nor architectures is set".into()))?;
    let arch = Arch::from_name(&arch_name).ok_or_else(|| Arch::unsupported(&arch_name))?;
    // Multimodal Gemma 3 keeps the decoder's settings in text_config.
    let text = match (arch, raw.get("text_config")) {
        (Arch::Gemma3, Some(tc)) if tc.is_object() => {
            let mut tc = tc.clone();
            if tc.get("vocab_size").is_none() {
                tc["vocab_size"] = serde_json::json!(262208);
            }
            tc.to_string()
        }
        _ => text.to_string(),
    };
    let hf = HfConfig::parse(&text).map_err(|e| ModelError::Config(e.to_string()))?;
    match arch {
        Arch::Llama => llama::from_hf(&hf),
        Arch::Qwen2 => qwen2::from_hf(&hf),
        Arch::Qwen3 => qwen3::from_hf(&hf),
        Arch::Gemma3 => gemma3::from_hf(&hf),
    }
}

/// `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index_path = dir.join("model.safetensors.index.json");
    if index_path.exists() {
        let text = std::fs::read_to_string(&index_path).map_err(io_err(&index_path))?;
        let index: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Safetensors {
                path: index_path.clone(),
                message: e.to_string(),
            })?;
        let map = index
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Safetensors {
                path: index_path.clone(),
                message: "no `weight_map` object".into(),
            })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for v in map.values() {
            let name = v.as_str().ok_or_else(|| ModelError::Safetensors {
                path: index_path.clone(),
                message: "weight_map values must be file names".into(),
            })?;
            let p = dir.join(name);
            if !files.contains(&p) {
                files.push(p);
            }
        }
        for f in &files {
            if !f.exists() {
                return Err(ModelError::Safetensors {
                    path: f.clone(),
                    message: "shard listed in model.safetensors.index.json is missing".into(),
                });
            }
        }
        return Ok(files);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ModelError::Safetensors {
            path: dir.to_path_buf(),
            message: "no model.safetensors or model.safetensors.index.json in the folder".into(),
        });
    }
    Ok(files)
}

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
    pub fn model_config(&self) -> Result<ModelConfig> {
        let arch = Arch::from_name(&self.arch).ok_or_else(|| Arch::unsupported(&self.arch))?;
        match arch {
            Arch::Llama => llama::from_gguf(self),
            Arch::Qwen2 => qwen2::from_gguf(self),
            Arch::Qwen3 => qwen3::from_gguf(self),
            Arch::Gemma3 => gemma3::from_gguf(self),
        }
    }

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
