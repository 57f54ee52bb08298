//! A model ready to generate: weights, tokenizer, chat template and end-of-turn tokens,
//! all found from one path on disk.

use crate::constraint::Grammars;
use crate::prompt::template::{self, ChatTemplate, TemplateError, TemplateSource};
use crate::prompt::tokenizer::{Tokenizer, TokenizerError};
use crate::prompt::PromptTools;
use crate::reasoning::Markers;
use crate::tools::ToolFormat;
use candor_models::checkpoint::{Checkpoint, Format, LoadOptions};
use candor_models::weights::ProgressFn;
use candor_models::{DType, Device, Model, ModelError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("{path}: {source}")]
    Template {
        path: PathBuf,
        #[source]
        source: TemplateError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: the folder has no tokenizer.json; candor needs it next to config.json")]
    NoTokenizer(PathBuf),
}

/// What to load and where.
#[derive(Clone, Default)]
pub struct LoadConfig {
    pub model: PathBuf,
    pub device: Option<Device>,
    pub dtype: Option<DType>,
    /// Replaces the model's own chat template.
    pub chat_template: Option<PathBuf>,
    /// The thinking markers (`--reasoning-markers`); default: `<think>` / `</think>` where
    /// the tokenizer has them as tokens.
    pub reasoning_markers: Option<(String, String)>,
    pub progress: Option<ProgressFn>,
}

pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Arc<Tokenizer>,
    /// None when neither the file nor a known family provides one.
    pub template: Option<ChatTemplate>,
    /// Where the template came from, for logs.
    pub template_source: Option<TemplateSource>,
    /// Every token id that ends a turn.
    pub eos_ids: Vec<u32>,
    /// The markers around the model's thinking; None for models that do not think.
    pub reasoning_markers: Option<Arc<Markers>>,
    /// A short name for logs and the API: the file or folder name.
    pub name: String,
    pub load_time: Duration,
    /// How the model writes tool calls: read from its chat template (`--tool-call-format`
    /// overrides it); None: the template knows no tools.
    pub tool_format: Option<ToolFormat>,
    /// The vocabulary as constrained decoding needs it, built on first use.
    grammars: OnceLock<Result<Arc<Grammars>, String>>,
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl LoadedModel {
    /// What [`crate::prompt::build`] needs of this model.
    pub fn prompt_tools(&self) -> PromptTools<'_> {
        PromptTools {
            tokenizer: &self.tokenizer,
            template: self.template.as_ref(),
            markers: self.reasoning_markers.as_ref(),
        }
    }

    pub fn load(cfg: &LoadConfig) -> Result<Self, LoadError> {
        let start = Instant::now();
        let ckpt = Checkpoint::open(&cfg.model)?;
        if let Format::HfFolder { .. } = ckpt.format {
            if !ckpt.path.join("tokenizer.json").exists() {
                return Err(LoadError::NoTokenizer(ckpt.path.clone()));
            }
        }
        let opts = LoadOptions {
            device: cfg.device.clone().unwrap_or(Device::Cpu),
            dtype: cfg.dtype,
            progress: cfg.progress.clone(),
        };
        // The tokenizer is built while the weights load: for a large vocabulary (Gemma 3's
        // 262k tokens, its merges derived from the scores) it takes as long as they do.
        let (tokenizer, model) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| match &ckpt.format {
                Format::Gguf { content } => Tokenizer::from_gguf(content),
                Format::HfFolder { .. } => Tokenizer::from_file(&ckpt.path.join("tokenizer.json")),
            });
            let model = ckpt.load(&opts);
            (tokenizer.join(), model)
        });
        let tokenizer = match tokenizer {
            Ok(t) => t?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let model = model?;
        let (template, template_source) =
            load_template(&ckpt, &tokenizer, cfg.chat_template.as_deref())?;
        let mut eos_ids = tokenizer.eos_token_ids();
        eos_ids.extend(ckpt.config.eos_token_ids.iter().copied());
        if let Format::HfFolder { .. } = ckpt.format {
            eos_ids.extend(generation_config_eos(&ckpt.path));
        }
        eos_ids.sort_unstable();
        eos_ids.dedup();
        let reasoning_markers = match &cfg.reasoning_markers {
            Some((start, end)) => Markers::find(start, end, |t| tokenizer.token_to_id(t), true),
            None => {
                let (start, end) = Markers::DEFAULT;
                Markers::find(start, end, |t| tokenizer.token_to_id(t), false)
            }
        }
        .map(Arc::new);
        let tool_format = template
            .as_ref()
            .and_then(|t| ToolFormat::detect(t.source()));
        let name = cfg
            .model
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_string())
            .unwrap_or_else(|| "model".into());
        Ok(Self {
            model,
            tokenizer: Arc::new(tokenizer),
            template,
            template_source,
            eos_ids,
            reasoning_markers,
            name,
            load_time: start.elapsed(),
            tool_format,
            grammars: OnceLock::new(),
        })
    }

    /// The model's vocabulary for constrained decoding (a token trie: built once, on the
    /// first request that asks for structured output).
    pub fn grammars(&self) -> Result<Arc<Grammars>, String> {
        self.grammars
            .get_or_init(|| {
                let n_vocab = self.model.config().vocab_size;
                Grammars::new(self.tokenizer.clone(), n_vocab, &self.eos_ids).map(Arc::new)
            })
            .clone()
    }

    /// Token ids the model may produce: the model's output rows that the tokenizer can
    /// decode (checkpoints often pad the embedding past the tokenizer, e.g. Qwen's 151936
    /// rows for 151669 tokens).
    pub fn vocab_size(&self) -> usize {
        self.model
            .config()
            .vocab_size
            .min(self.tokenizer.vocab_size())
    }

    pub fn context_length(&self) -> usize {
        self.model.config().max_position_embeddings
    }
}

/// `eos_token_id` of generation_config.json (a number or a list), if the file exists.
fn generation_config_eos(dir: &Path) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(dir.join("generation_config.json")) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        tracing::warn!(
            "{}: generation_config.json is not valid JSON; ignored",
            dir.display()
        );
        return Vec::new();
    };
    match v.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().map(|n| vec![n as u32]).unwrap_or_default()
        }
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// The override file, else the checkpoint's own template, else the family's known one.
fn load_template(
    ckpt: &Checkpoint,
    tok: &Tokenizer,
    override_path: Option<&Path>,
) -> Result<(Option<ChatTemplate>, Option<TemplateSource>), LoadError> {
    let bos = tok.bos_token().map(|(_, s)| s);
    let eos = tok.eos_token().map(|(_, s)| s);
    let build = |source: &str, path: &Path, origin: TemplateSource| {
        ChatTemplate::new(source, bos.as_deref(), eos.as_deref())
            .map(|t| (Some(t), Some(origin)))
            .map_err(|source| LoadError::Template {
                path: path.to_path_buf(),
                source,
            })
    };
    if let Some(path) = override_path {
        let text = read(path)?;
        let origin = TemplateSource::Provided {
            origin: format!("--chat-template {}", path.display()),
        };
        return build(&text, path, origin);
    }
    match &ckpt.format {
        Format::Gguf { content } => {
            if let Some(text) = content
                .metadata
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
            {
                let origin = TemplateSource::Provided {
                    origin: "the GGUF metadata (tokenizer.chat_template)".into(),
                };
                return build(text, &ckpt.path, origin);
            }
        }
        Format::HfFolder { .. } => {
            let jinja = ckpt.path.join("chat_template.jinja");
            if jinja.exists() {
                let origin = TemplateSource::Provided {
                    origin: "chat_template.jinja".into(),
                };
                return build(&read(&jinja)?, &jinja, origin);
            }
            let cfg_path = ckpt.path.join("tokenizer_config.json");
            if cfg_path.exists() {
                let cfg: serde_json::Value =
                    serde_json::from_str(&read(&cfg_path)?).map_err(|e| LoadError::Template {
                        path: cfg_path.clone(),
                        source: TemplateError::InvalidConfig(e.to_string()),
                    })?;
                if let Some(t) = cfg.get("chat_template") {
                    let text = template::template_from_config(t).map_err(|source| {
                        LoadError::Template {
                            path: cfg_path.clone(),
                            source,
                        }
                    })?;
                    let origin = TemplateSource::Provided {
                        origin: "tokenizer_config.json".into(),
                    };
                    return build(text, &cfg_path, origin);
                }
            }
        }
    }
    let arch = ckpt.config.arch.name();
    match template::builtin_for_model(arch, |t| tok.token_to_id(t).is_some()) {
        Some(source) => {
            let TemplateSource::Builtin { family, .. } = &source else {
                unreachable!("builtin_for_model returns built-in sources");
            };
            let t = ChatTemplate::builtin(*family, bos.as_deref(), eos.as_deref()).map_err(
                |source| LoadError::Template {
                    path: ckpt.path.clone(),
                    source,
                },
            )?;
            Ok((Some(t), Some(source)))
        }
        None => Ok((None, None)),
    }
}
