//! The routes and the middleware around them: authentication, CORS, body limits, the
//! 404 fallback, and the two endpoints small enough to live here (/health, /metrics).
//! Endpoints live in a file each; graceful shutdown is the binary's (`main.rs`).

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::api::{chat, completions, models};
use crate::openai;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.loaded() {
        Ok(_) => Json(openai::Health { status: "ok" }).into_response(),
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
