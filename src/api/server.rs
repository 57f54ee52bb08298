//! The HTTP server: shared state, the router, authentication, CORS, body limits and
//! graceful shutdown. Handlers live in chat.rs, completions.rs and models.rs.

use crate::api::error::ApiError;
use crate::api::{chat, completions, models};
use crate::engine::EngineHandle;
use crate::runtime::Runtime;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tower_http::cors::{AllowOrigin, CorsLayer};

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
    pub runtime: Arc<Runtime>,
    pub engine: EngineHandle,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            loaded: OnceLock::new(),
            started: unix_now(),
        })
    }

    /// Makes the model available to requests.
    pub fn set_loaded(&self, runtime: Arc<Runtime>) {
        let context = self.context_length(&runtime);
        let engine = EngineHandle::start(runtime.clone(), self.config.engine.clone(), context);
        let _ = self.loaded.set(Loaded { runtime, engine });
    }

    pub fn loaded(&self) -> Result<&Loaded, ApiError> {
        self.loaded.get().ok_or_else(ApiError::loading)
    }

    /// Tokens a prompt plus its completion may use.
    pub fn context_length(&self, rt: &Runtime) -> usize {
        let model_ctx = rt.context_length();
        self.config.ctx_size.map_or(model_ctx, |c| c.min(model_ctx))
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.loaded() {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// GET /metrics: Prometheus text (404 with --no-metrics, 503 while loading).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if !state.config.metrics {
        return ApiError::not_found_route("/metrics").into_response();
    }
    match state.loaded() {
        Ok(l) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            l.engine.metrics().render(&state.config.served_model_name),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Bearer authentication with a constant-time comparison; /health stays public.
async fn authenticate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(key) = &state.config.api_key else {
        return next.run(req).await;
    };
    if req.uri().path() == "/health" || req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    use subtle::ConstantTimeEq;
    if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

async fn not_found(req: Request<Body>) -> Response {
    ApiError::not_found_route(req.uri().path()).into_response()
}

/// The router the binary serves (tests build it too).
pub fn router(state: Arc<AppState>) -> Router {
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::get_one))
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/completions", post(completions::handle))
        .route("/tokenize", post(models::tokenize))
        .route("/detokenize", post(models::detokenize))
        .route("/apply-template", post(chat::apply_template))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .with_state(state.clone());
    if !state.config.cors_origins.is_empty() {
        let origins = &state.config.cors_origins;
        let allow = if origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }
    app
}
