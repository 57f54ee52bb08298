//! The routes and the middleware around them, outermost first: requests in flight are
//! counted (for graceful shutdown), CORS, every error made OpenAI-shaped, the API keys
//! and who the client is, the body read whole within its size and time limits. Also the
//! 404 fallback and the two endpoints small enough to live here (/health, /metrics).
//! Endpoints live in a file each; connections and shutdown are [`super::serve`]'s.

use crate::api::admission::ClientId;
use crate::api::error::ApiError;
use crate::api::state::{AppState, InFlight};
use crate::api::{chat, completions, models, responses, web};
use crate::openai;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
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

/// Bearer authentication with a constant-time comparison (/health, the chat page and CORS
/// preflights stay public), and who the client is: the key it presented, else its address.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let keys = &state.config.api_keys;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let by_address = peer.map_or(ClientId::Local, ClientId::Addr);
    let path = req.uri().path();
    let public = path == "/health"
        || req.method() == Method::OPTIONS
        || (state.config.webui && web::is_page(path));
    let client = if keys.is_empty() || public {
        by_address
    } else {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        use subtle::ConstantTimeEq;
        // Every key is compared, so the time taken does not say which one nearly matched.
        let mut found = None;
        for (i, key) in keys.iter().enumerate() {
            if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => ClientId::Key(i),
            None => return ApiError::unauthorized().into_response(),
        }
    };
    req.extensions_mut().insert(client);
    next.run(req).await
}

/// Reads a request's body whole before the handler runs: at most `--body-limit` bytes
/// (413, whether announced by Content-Length or sent chunked) within `--body-timeout`
/// of its headers (408, then the connection closes).
async fn read_body(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.config.body_limit_bytes;
    let (parts, body) = req.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return closing(ApiError::payload_too_large(limit));
    }
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = Limited::new(body, limit).collect();
    let read = match state.config.body_timeout {
        Some(t) => match tokio::time::timeout(t, read).await {
            Ok(r) => r,
            Err(_) => return closing(ApiError::body_timeout(t)),
        },
        None => read.await,
    };
    match read {
        Ok(collected) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            closing(ApiError::payload_too_large(limit))
        }
        Err(e) => closing(ApiError::bad_request(
            format!("The request body could not be read: {e}."),
            None,
        )),
    }
}

/// An error after which the connection is closed (what is left of the body is unread).
fn closing(e: ApiError) -> Response {
    let mut response = e.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A route's one method; any other gets 405 with `Allow` and a body saying what to use
/// (axum's own 405 has an empty body).
fn only(allowed: &'static str, route: MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>> {
    route.fallback(move |req: Request| async move {
        let message = format!(
            "Method {} is not allowed on {}; use {allowed}.",
            req.method(),
            req.uri().path()
        );
        let mut response = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message).into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        response
    })
}

/// Every error the server sends carries OpenAI's error body, whichever layer produced
/// it: extractors' plain-text rejections (a path that is not UTF-8) are rewritten.
async fn openai_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = ApiError::new(status, message).into_response();
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::CONNECTION,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// Counts each request as in flight until its response body is written out or dropped,
/// for graceful shutdown.
async fn track_in_flight(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let guard = state.begin_request();
    next.run(req).await.map(|body| {
        Body::new(Tracked {
            body,
            _guard: guard,
        })
    })
}

/// A response body that holds its request's [`InFlight`] guard.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

async fn not_found(req: Request<Body>) -> Response {
    ApiError::not_found_route(req.uri().path()).into_response()
}

/// The router the binary serves (tests build it too).
pub fn router(state: Arc<AppState>) -> Router {
    let mut app = Router::new()
        .route("/health", only("GET", get(health)))
        .route("/v1/models", only("GET", get(models::list)))
        .route("/v1/models/{*id}", only("GET", get(models::get_one)))
        .route("/v1/chat/completions", only("POST", post(chat::handle)))
        .route("/v1/completions", only("POST", post(completions::handle)))
        .route("/v1/responses", only("POST", post(responses::create)))
        .route(
            "/v1/responses/{id}",
            only(
                "GET, DELETE",
                get(responses::retrieve).delete(responses::delete),
            ),
        )
        .route(
            "/v1/responses/{id}/input_items",
            only("GET", get(responses::input_items)),
        )
        .route("/tokenize", only("POST", post(models::tokenize)))
        .route("/detokenize", only("POST", post(models::detokenize)))
        .route("/apply-template", only("POST", post(chat::apply_template)))
        .route("/metrics", only("GET", get(metrics)));
    if state.config.webui {
        app = app
            .route("/", only("GET", get(web::index)))
            .route("/web/{*path}", only("GET", get(web::asset)));
    }
    let mut app = app
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(middleware::from_fn(openai_errors))
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
                .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }
    app.layer(middleware::from_fn_with_state(state, track_in_flight))
}
