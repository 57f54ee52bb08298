//! What every handler shares: the server's settings and, once loaded, the model and the
//! engine that runs it.

use crate::api::admission::ClientSlots;
use crate::api::error::ApiError;
use crate::api::response_store::{self, ResponseStore};
use crate::engine::{EngineError, EngineHandle};
use crate::loaded_model::LoadedModel;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Server settings from the command line.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub served_model_name: String,
    /// Keys a request may present (`Authorization: Bearer`); none: no authentication.
    /// With keys, each key is one client for `max_per_client`; without, each address.
    pub api_keys: Vec<String>,
    /// Sequences (running or waiting) one client may hold; None: no bound.
    pub max_per_client: Option<usize>,
    /// Longest prompt + completion, in tokens (at most the model's own context).
    pub ctx_size: Option<usize>,
    /// The batching engine's limits (queue, batch, KV cache).
    pub engine: crate::engine::EngineConfig,
    /// Serve GET /metrics.
    pub metrics: bool,
    /// Serve the chat page at `/` and its files at `/web/` (`--no-webui` turns it off).
    pub webui: bool,
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    /// Time a client has to send a request's body once its headers are in (408 after).
    pub body_timeout: Option<Duration>,
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
    /// What each client holds of the queue.
    pub clients: Arc<ClientSlots>,
    /// Requests whose response is not yet fully written (streams included).
    in_flight: Arc<AtomicUsize>,
    /// Responses kept for `previous_response_id` (`--responses-store`).
    pub responses: ResponseStore,
}

/// One request in flight; dropping it (the response is written, or abandoned) ends it.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Loaded {
    pub model: Arc<LoadedModel>,
    pub engine: EngineHandle,
}

impl AppState {
    /// The state of a server keeping the default number of responses
    /// ([`response_store::DEFAULT_CAPACITY`]).
    pub fn new(config: ServerConfig) -> Arc<Self> {
        Self::with_responses_store(config, response_store::DEFAULT_CAPACITY)
    }

    /// The state of a server keeping at most `responses` responses (0: none).
    pub fn with_responses_store(config: ServerConfig, responses: usize) -> Arc<Self> {
        Arc::new(Self {
            clients: ClientSlots::new(config.max_per_client),
            config,
            loaded: OnceLock::new(),
            started: crate::openai::unix_now(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            responses: ResponseStore::new(responses),
        })
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn begin_request(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Starts the engine on the model and makes it available to requests; fails when
    /// the engine cannot start (its KV cache does not fit).
    pub fn set_loaded(&self, model: Arc<LoadedModel>) -> Result<(), EngineError> {
        let context = self.context_length(&model);
        let engine = EngineHandle::start(model.clone(), self.config.engine.clone(), context)?;
        let _ = self.loaded.set(Loaded { model, engine });
        Ok(())
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
