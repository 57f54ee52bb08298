//! CPU work of a request (parsing and validating a large body, rendering a template,
//! tokenizing, decoding, serializing a large answer) runs on tokio's blocking threads,
//! never on the async executor, so that one heavy request cannot hold up /health or
//! the streams of others.

use crate::api::error::ApiError;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Runs `f` on a blocking thread.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a request's work failed: {e}")))?
}

/// `value` as a JSON response.
pub fn json(value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("the answer did not serialize: {e}")))?;
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Builds a JSON response with `f` on a blocking thread: an error answers as itself.
pub async fn respond<T: Serialize>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Response {
    match run(move || json(&f()?)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}
