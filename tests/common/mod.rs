//! What the integration tests share: the test assets (scripts/fetch-test-assets.sh), the
//! SmolLM2 runtime (loaded once per test binary), and requests to an in-process router.

#![allow(dead_code)] // each test binary uses its own part

pub mod openai_schema;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use candor::api::ServerConfig;
use candor::engine::EngineHandle;
use candor::loaded_model::{LoadConfig, LoadedModel};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

/// The server settings the HTTP tests run with: no keys, no per-client bound, a
/// 1,024-token context, metrics and the page on, no timeouts.
pub fn server_config(name: &str) -> ServerConfig {
    ServerConfig {
        served_model_name: name.into(),
        api_keys: Vec::new(),
        max_per_client: None,
        ctx_size: Some(1024),
        engine: Default::default(),
        metrics: true,
        webui: true,
        cors_origins: Vec::new(),
        body_limit_bytes: 1 << 20,
        body_timeout: None,
        request_timeout: None,
        reasoning: Default::default(),
    }
}

/// The model in the asset folder `dir`, loaded once per test binary.
pub fn load_asset_once(dir: &str) -> Arc<LoadedModel> {
    type Loaded = std::sync::Mutex<Vec<(String, Arc<LoadedModel>)>>;
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    let mut all = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, lm)) = all.iter().find(|(d, _)| d == dir) {
        return lm.clone();
    }
    let lm = load(asset(dir));
    all.push((dir.to_string(), lm.clone()));
    lm
}

/// $CANDOR_ASSETS, default ~/.cache/candor/assets.
pub fn assets() -> PathBuf {
    std::env::var_os("CANDOR_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/candor/assets")
        })
}

/// One asset, which must exist.
pub fn asset(name: &str) -> PathBuf {
    let p = assets().join(name);
    assert!(
        p.exists(),
        "{}: run `bash scripts/fetch-test-assets.sh` first",
        p.display()
    );
    p
}

/// Loads a model with the default settings.
pub fn load(model: PathBuf) -> Arc<LoadedModel> {
    Arc::new(
        LoadedModel::load(&LoadConfig {
            model,
            ..LoadConfig::default()
        })
        .unwrap(),
    )
}

/// SmolLM2-135M-Instruct Q4_1, shared by the tests of one binary.
pub fn smollm2() -> Arc<LoadedModel> {
    static RT: OnceLock<Arc<LoadedModel>> = OnceLock::new();
    RT.get_or_init(|| load(asset("SmolLM2-135M-Instruct.Q4_1.gguf")))
        .clone()
}

/// A request to the router, with a JSON body when there is one.
pub fn request(method: &str, path: &str, body: Option<&Value>) -> Request<Body> {
    let req = Request::builder().method(method).uri(path);
    match body {
        Some(v) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

/// Sends a request and reads the whole answer, which must match OpenAI's schema for the
/// endpoint where it has one ([`openai_schema::check`]).
pub async fn send(
    app: Router,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Vec<u8>) {
    let resp = app.oneshot(request(method, path, body)).await.unwrap();
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    openai_schema::check(method, path, status.as_u16(), &bytes);
    (status, bytes)
}

/// Waits (up to 5 s) until the engine has no sequence waiting or running.
pub async fn wait_until_idle(engine: &EngineHandle) {
    for _ in 0..500 {
        if engine.pending() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(engine.pending(), 0);
}
