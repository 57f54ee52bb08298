//! Finding out what a path on disk holds, before any weight is read.
//!
//! [`Checkpoint::open`] reads only headers: a GGUF file's metadata and tensor table, or a
//! folder's config.json and safetensors index. The caller can then build the tokenizer and
//! chat template from it and call [`Checkpoint::load`] for the weights.

use crate::config::{Arch, HfConfig, ModelConfig};
use crate::error::{candle_message, ModelError, Result};
use crate::gguf::GgufMeta;
use crate::transformer::Model;
use crate::weights::{ProgressFn, Weights};
use crate::{gemma3, llama, qwen2, qwen3};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device};
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
        let file = File::open(path).map_err(io_err(path))?;
        // Buffered: the metadata is hundreds of thousands of small reads (a 262k-token
        // vocabulary), each a system call on a bare File (0.9 s of Gemma 3's 3 s load).
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| ModelError::Gguf {
            path: path.to_path_buf(),
            message: candle_message(&e),
        })?;
        let mut meta = GgufMeta::new(path, &content.metadata)?;
        meta.embedding_rows = content
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0]);
        let mut config = gguf_config(&meta)?;
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

/// The model config of a GGUF file, read by its architecture's file.
fn gguf_config(meta: &GgufMeta) -> Result<ModelConfig> {
    let arch = Arch::from_name(&meta.arch).ok_or_else(|| Arch::unsupported(&meta.arch))?;
    match arch {
        Arch::Llama => llama::from_gguf(meta),
        Arch::Qwen2 => qwen2::from_gguf(meta),
        Arch::Qwen3 => qwen3::from_gguf(meta),
        Arch::Gemma3 => gemma3::from_gguf(meta),
    }
}
