//! What hostile, slow, greedy and broken clients found (issue 11), reproduced against the
//! router in-process the way each was found. What needs real sockets and signals (slow
//! headers, the connection cap, SIGTERM with a half-sent request) is probed against the
//! binary by tests/e2e/hardening.py.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use candor::api::{router, AppState, ServerConfig};
use candor::engine::EngineConfig;
use common::{send, wait_until_idle};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const NAME: &str = "smollm2";

/// Two running and four waiting: six sequences at most.
fn config() -> ServerConfig {
    ServerConfig {
        served_model_name: NAME.into(),
        api_keys: Vec::new(),
        max_per_client: None,
        ctx_size: Some(512),
        engine: EngineConfig {
            max_queue: 4,
            max_running: 2,
            ..Default::default()
        },
        metrics: true,
        webui: true,
        cors_origins: Vec::new(),
        body_limit_bytes: 64 * 1024,
        body_timeout: None,
        request_timeout: None,
        reasoning: Default::default(),
    }
}

fn app(cfg: ServerConfig) -> (Router, Arc<AppState>) {
    let state = AppState::new(cfg);
    state.set_loaded(common::smollm2()).unwrap();
    (router(state.clone()), state)
}

/// A request with a JSON body and, when given, an API key.
fn post(path: &str, key: Option<&str>, body: &Value) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    req.body(Body::from(body.to_string())).unwrap()
}

async fn answer(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    common::openai_schema::check(&method, &path, status.as_u16(), &bytes);
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, v)
}

fn chat(max_tokens: usize) -> Value {
    json!({
        "model": NAME,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": max_tokens,
        "temperature": 0,
    })
}

/// Starts a stream that keeps a sequence busy and returns its body once it has begun.
async fn busy_stream(app: &Router, key: Option<&str>, n: usize) -> Body {
    let mut req = chat(400);
    req["stream"] = json!(true);
    req["ignore_eos"] = json!(true);
    req["n"] = json!(n);
    let resp = app
        .clone()
        .oneshot(post("/v1/chat/completions", key, &req))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    while !body.frame().await.unwrap().unwrap().is_data() {}
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_can_never_fit_is_a_400_and_does_not_starve_the_others() {
    let (app, state) = app(config());
    let too_many_prompts = json!({"model": NAME, "prompt": vec!["a"; 7], "max_tokens": 1});
    let (s, _, v) = answer(&app, post("/v1/completions", None, &too_many_prompts)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["param"], "prompt", "{v}");
    let too_many_choices = json!({"model": NAME, "prompt": ["a", "b"], "n": 4, "max_tokens": 1});
    let (s, _, v) = answer(&app, post("/v1/completions", None, &too_many_choices)).await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("prompt"))
    );
    let mut big_n = chat(1);
    big_n["n"] = json!(7);
    let (s, _, v) = answer(&app, post("/v1/chat/completions", None, &big_n)).await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("n"))
    );
    // Exactly what fits is served.
    let fits = json!({"model": NAME, "prompt": vec!["a"; 3], "n": 2, "max_tokens": 1});
    let (s, _, v) = answer(&app, post("/v1/completions", None, &fits)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"].as_array().unwrap().len(), 6);

    // One client loops on the request that can never run; another's chats are all served.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut refused = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, _, _) =
                    answer(&app, post("/v1/completions", None, &too_many_prompts)).await;
                assert_eq!(s, StatusCode::BAD_REQUEST);
                refused += 1;
            }
            refused
        })
    };
    for _ in 0..10 {
        let (s, _, v) = answer(&app, post("/v1/chat/completions", None, &chat(2))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(looping.await.unwrap() > 0);
    wait_until_idle(&state.loaded().unwrap().engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_the_whole_queue() {
    let (app, state) = app(ServerConfig {
        api_keys: vec!["k1".into(), "k2".into()],
        max_per_client: Some(2),
        ..config()
    });
    let held = busy_stream(&app, Some("k1"), 2).await;
    let (s, headers, v) = answer(&app, post("/v1/chat/completions", Some("k1"), &chat(2))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(headers.get(header::RETRY_AFTER).is_some());
    // The other key is another client: it is served while k1 holds its share.
    let (s, _, v) = answer(&app, post("/v1/chat/completions", Some("k2"), &chat(2))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // More than a client may ever hold is a 400 naming n.
    let mut big_n = chat(1);
    big_n["n"] = json!(3);
    let (s, _, v) = answer(&app, post("/v1/chat/completions", Some("k2"), &big_n)).await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("n"))
    );
    // The share comes back when the stream is dropped.
    drop(held);
    let (s, _, v) = answer(&app, post("/v1/chat/completions", Some("k1"), &chat(2))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(state.clients.clients(), 0);
    wait_until_idle(&state.loaded().unwrap().engine).await;
}

/// On a one-thread runtime, /health must answer while two large /tokenize calls are still
/// being worked on: they run on blocking threads, not on the executor.
#[tokio::test(flavor = "current_thread")]
async fn tokenize_does_not_block_the_executor() {
    let (app, _state) = app(ServerConfig {
        body_limit_bytes: 8 << 20,
        ..config()
    });
    let content = "The quick brown fox jumps over the lazy dog. ".repeat(50_000);
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let body = json!({"content": content, "with_pieces": true});
            let app = app.clone();
            tokio::spawn(async move { answer(&app, post("/tokenize", None, &body)).await })
        })
        .collect();
    // Let both calls start (on the executor they would run to the end here).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let health = Request::get("/health").body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(health).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        calls.iter().all(|c| !c.is_finished()),
        "/health waited for /tokenize"
    );
    for c in calls {
        let (s, _, v) = c.await.unwrap();
        // 2.2 MB is more tokens than /tokenize answers with pieces: a 400 naming content.
        assert_eq!(
            (s, v["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some("content"))
        );
    }
}

#[tokio::test]
async fn every_error_is_openai_shaped() {
    let (app, _state) = app(ServerConfig {
        body_timeout: Some(Duration::from_millis(200)),
        ..config()
    });
    // A body over --body-limit, announced by Content-Length or sent chunked.
    let big = "x".repeat(65 * 1024);
    let announced = post("/v1/chat/completions", None, &json!({"pad": big}));
    let (s, headers, v) = answer(&app, announced).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(headers[header::CONNECTION], "close");
    let chunks = (0..70).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let chunked = Request::post("/v1/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (s, _, v) = answer(&app, chunked).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    // A body that never finishes arriving: 408 once --body-timeout has passed.
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(b"{".to_vec())]);
    let stalled = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(
            first.chain(futures_util::stream::pending()),
        ))
        .unwrap();
    let (s, headers, v) = answer(&app, stalled).await;
    assert_eq!(s, StatusCode::REQUEST_TIMEOUT, "{v}");
    assert_eq!(headers[header::CONNECTION], "close");
    // Methods the endpoints do not take: 405 with Allow, and a body saying what to use.
    for path in ["/v1/chat/completions", "/v1/completions"] {
        for method in ["GET", "PUT", "DELETE", "PATCH"] {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let (s, headers, v) = answer(&app, req).await;
            assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(headers[header::ALLOW], "POST");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(method) && message.contains("POST"),
                "{message}"
            );
        }
    }
    // A path that is not UTF-8 once decoded.
    let (s, b) = send(app.clone(), "GET", "/v1/models/%ff%fe", None).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&b)
    );
}
