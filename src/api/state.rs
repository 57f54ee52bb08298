//! What every handler shares: the server's settings and, once loaded, the model and the
//! engine that runs it.

use crate::api::error::ApiError;
use crate::engine::EngineHandle;
use crate::loaded_model::LoadedModel;
use std::sync::{Arc, OnceLock};

/// Server settings from the command line.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub served_model_name: String,
    pub api_key: Option<String>,
    /// Longest prompt + completion, in tokens (at most the model's own context).
    pub ctx_size: Option<usize>,
    /// The batching engine's limits (queue, batch, KV cache).
    pub engine: crate::engine::EngineConfig,
    /// Serve GET /metrics.
    pub metrics: bool,
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    /// A request's deadline, from its arrival.
    pub request_timeout: Option<std::time::Duration>,
    pub reasoning: crate::reasoning::ReasoningConfig,
}

/// What every handler sees. The model arrives after the server starts listening, so
/// that /health can answer 503 while it loads.
pub struct AppState {
    pub config: ServerConfig,
    loaded: OnceLock<Loaded>,
    /// Unix time the server started, for `created` of /v1/models.
    pub started: u64,
}

pub struct Loaded {
    pub model: Arc<LoadedModel>,
    pub engine: EngineHandle,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            loaded: OnceLock::new(),
            started: crate::openai::unix_now(),
        })
    }

    /// Makes the model available to requests.
    pub fn set_loaded(&self, model: Arc<LoadedModel>) {
        let context = self.context_length(&model);
        let engine = EngineHandle::start(model.clone(), self.config.engine.clone(), context);
        let _ = self.loaded.set(Loaded { model, engine });
    }

    pub fn loaded(&self) -> Result<&Loaded, ApiError> {
        self.loaded.get().ok_or_else(ApiError::loading)
    }

    /// Tokens a prompt plus its completion may use.
    pub fn context_length(&self, lm: &LoadedModel) -> usize {
        let model_ctx = lm.context_length();
        self.config.ctx_size.map_or(model_ctx, |c| c.min(model_ctx))
    }
}
