//! The real router, in process, with SmolLM2-135M-Instruct (scripts/fetch-test-assets.sh):
//! every endpoint, the response shapes, streaming, and the errors.

mod common;

use common::{request, send, wait_until_idle};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use candor::api::{router, AppState, ServerConfig};
use candor::loaded_model::LoadedModel;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const NAME: &str = "smollm2";

fn config(api_key: Option<&str>) -> ServerConfig {
    ServerConfig {
        served_model_name: NAME.into(),
        api_keys: api_key.into_iter().map(str::to_string).collect(),
        max_per_client: None,
        ctx_size: Some(512),
        engine: Default::default(),
        metrics: true,
        webui: true,
        cors_origins: Vec::new(),
        body_limit_bytes: 64 * 1024,
        body_timeout: None,
        request_timeout: None,
        reasoning: Default::default(),
    }
}

fn runtime() -> Arc<LoadedModel> {
    common::smollm2()
}

fn app() -> Router {
    static STATE: OnceLock<Arc<AppState>> = OnceLock::new();
    let state = STATE
        .get_or_init(|| {
            let s = AppState::new(config(None));
            s.set_loaded(runtime()).unwrap();
            s
        })
        .clone();
    router(state)
}

async fn post(path: &str, body: Value) -> (StatusCode, Value) {
    let (s, b) = send(app(), "POST", path, Some(&body)).await;
    (
        s,
        serde_json::from_slice(&b).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&b)})),
    )
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, param: Option<&str>) {
    assert_eq!(status, want, "{body}");
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(e["type"].is_string(), "{body}");
    assert_eq!(e["param"].as_str(), param, "{body}");
    assert!(e.get("code").is_some(), "{body}");
}

fn chat(extra: Value) -> Value {
    let mut v = json!({
        "model": NAME,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "temperature": 0,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// Splits an SSE body into its data payloads, checking the framing byte for byte.
fn sse_data(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "{text:?}");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            assert!(e.starts_with("data: "), "event {e:?}");
            assert!(!e[6..].contains('\n'), "one line per event: {e:?}");
            e[6..].to_string()
        })
        .collect()
}

#[tokio::test]
async fn health_is_503_until_loaded_then_200() {
    let loading = router(AppState::new(config(None)));
    let (s, b) = send(loading, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        String::from_utf8_lossy(&b).contains("loading"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    let (s, _) = send(app(), "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn models_endpoints() {
    let (s, b) = send(app(), "GET", "/v1/models", None).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], NAME);
    assert_eq!(v["data"][0]["object"], "model");
    let (s, b) = send(app(), "GET", &format!("/v1/models/{NAME}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["id"], NAME);
    let (s, b) = send(app(), "GET", "/v1/models/nope", None).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_error(s, &v, StatusCode::NOT_FOUND, Some("model"));
    assert_eq!(v["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn chat_completion_shape_and_usage() {
    let (s, v) = post("/v1/chat/completions", chat(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], NAME);
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert!(v["system_fingerprint"].is_string());
    let c = &v["choices"][0];
    assert_eq!(c["index"], 0);
    assert_eq!(c["message"]["role"], "assistant");
    assert!(!c["message"]["content"].as_str().unwrap().is_empty());
    assert_eq!(c["finish_reason"], "length");
    assert!(c["logprobs"].is_null());
    let u = &v["usage"];
    assert_eq!(u["completion_tokens"], 8);
    assert!(u["prompt_tokens"].as_u64().unwrap() > 10);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + 8
    );
    // Without `model` (llama-server and vLLM accept that), the served model answers.
    let mut body = chat(json!({}));
    body.as_object_mut().unwrap().remove("model");
    let (s, v) = post("/v1/chat/completions", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["model"], NAME);
}

#[tokio::test]
async fn streamed_deltas_join_to_the_non_streamed_answer() {
    let (_, whole) = post("/v1/chat/completions", chat(json!({"max_tokens": 12}))).await;
    let expected = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let req =
        chat(json!({"max_tokens": 12, "stream": true, "stream_options": {"include_usage": true}}));
    let (s, body) = send(app(), "POST", "/v1/chat/completions", Some(&req)).await;
    assert_eq!(s, StatusCode::OK);
    let events = sse_data(&body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let mut text = String::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk");
        if let Some(choice) = c["choices"].get(0) {
            if i == 0 {
                assert_eq!(choice["delta"]["role"], "assistant", "{c}");
            }
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(text, expected);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 12);
}

#[tokio::test]
async fn n_choices_and_logprobs() {
    let req = chat(
        json!({"n": 2, "temperature": 0.9, "seed": 5, "logprobs": true, "top_logprobs": 2, "max_tokens": 4}),
    );
    let (s, v) = post("/v1/chat/completions", req).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[1]["index"], 1);
    for c in choices {
        let content = c["logprobs"]["content"].as_array().unwrap();
        assert_eq!(content.len(), 4);
        for t in content {
            assert!(t["logprob"].as_f64().unwrap() <= 0.0);
            assert_eq!(t["top_logprobs"].as_array().unwrap().len(), 2);
        }
    }
    assert_eq!(v["usage"]["completion_tokens"], 8);
}

#[tokio::test]
async fn stop_strings_end_the_answer_without_the_stop_text() {
    let (_, whole) = post("/v1/chat/completions", chat(json!({"max_tokens": 16}))).await;
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // Stop at the second word of the greedy answer.
    let stop: String = text.split_whitespace().nth(1).unwrap().to_string();
    let (s, v) = post(
        "/v1/chat/completions",
        chat(json!({"max_tokens": 16, "stop": [stop.clone()]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let got = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(got, &text[..text.find(&stop).unwrap()]);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn text_completions_with_echo_and_prompt_lists() {
    let req = json!({"model": NAME, "prompt": ["The capital of France is", "1, 2, 3,"], "max_tokens": 3,
                     "temperature": 0, "echo": true, "logprobs": 1});
    let (s, v) = post("/v1/completions", req).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert!(choices[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("The capital of France is"));
    assert!(choices[1]["text"].as_str().unwrap().starts_with("1, 2, 3,"));
    // The echoed prompt's tokens come first in the logprobs, then the 3 generated ones.
    let prompt_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    let lp = &choices[0]["logprobs"];
    let first_prompt = lp["tokens"].as_array().unwrap().len() - 3;
    assert!(first_prompt > 0 && first_prompt < prompt_tokens, "{lp}");
    assert_eq!(
        lp["token_logprobs"].as_array().unwrap().len(),
        first_prompt + 3
    );
    assert!(lp["token_logprobs"][0].is_null());
    assert_eq!(lp["text_offset"][0], 0);
    assert_eq!(
        lp["text_offset"][first_prompt],
        "The capital of France is".len()
    );
}

#[tokio::test]
async fn tokenize_and_detokenize_round_trip() {
    let (s, v) = post("/tokenize", json!({"content": "Hello world"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tokens = v["tokens"].clone();
    assert!(!tokens.as_array().unwrap().is_empty());
    let (s, v) = post("/detokenize", json!({"tokens": tokens})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["content"], "Hello world");
    let (s, v) = post("/detokenize", json!({"tokens": [99999999]})).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, Some("tokens"));
}

#[tokio::test]
async fn request_errors() {
    let (s, b) = send(app(), "POST", "/v1/chat/completions", None).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&b)
    );
    let cases = [
        (
            chat(json!({"temperature": "hot"})),
            StatusCode::BAD_REQUEST,
            Some("temperature"),
        ),
        (
            chat(json!({"temperature": 7})),
            StatusCode::BAD_REQUEST,
            Some("temperature"),
        ),
        (
            chat(json!({"model": "gpt-4"})),
            StatusCode::NOT_FOUND,
            Some("model"),
        ),
        (
            chat(json!({"tools": [{"type": "function", "function": {"name": "f"}}]})),
            StatusCode::BAD_REQUEST,
            Some("tools"),
        ),
        (chat(json!({"n": 0})), StatusCode::BAD_REQUEST, Some("n")),
        (
            chat(json!({"messages": []})),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            chat(json!({"max_tokens": 100000})),
            StatusCode::BAD_REQUEST,
            Some("max_tokens"),
        ),
        // Fits the context alone, not with the prompt (ctx 512).
        (
            chat(json!({"max_tokens": 500})),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
    ];
    for (req, status, param) in cases {
        let (s, v) = post("/v1/chat/completions", req.clone()).await;
        assert_error(s, &v, status, param);
    }
    let (s, v) = post("/v1/chat/completions", chat(json!({"max_tokens": 500}))).await;
    assert_eq!(v["error"]["code"], "context_length_exceeded", "{v} {s}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("512"),
        "{v}"
    );
    let (s, v) = post(
        "/v1/completions",
        json!({"model": NAME, "prompt": "x", "suffix": "y"}),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, Some("suffix"));
    let (s, b) = send(app(), "GET", "/v2/nothing", None).await;
    assert_error(
        s,
        &serde_json::from_slice(&b).unwrap(),
        StatusCode::NOT_FOUND,
        None,
    );
    let big = json!({"model": NAME, "prompt": "x".repeat(100 * 1024)});
    let (s, _) = send(app(), "POST", "/v1/completions", Some(&big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn api_key_is_required_except_for_health() {
    let state = AppState::new(config(Some("sekret")));
    state.set_loaded(runtime()).unwrap();
    let app = router(state);
    let (s, _) = send(app.clone(), "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = send(app.clone(), "GET", "/v1/models", None).await;
    assert_error(
        s,
        &serde_json::from_slice(&b).unwrap(),
        StatusCode::UNAUTHORIZED,
        None,
    );
    let req = Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer sekret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    let req = Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer wrong")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A router over its own state (its own engine and queue), for tests that occupy it.
fn own_app(cfg: ServerConfig) -> (Router, Arc<AppState>) {
    let state = AppState::new(cfg);
    state.set_loaded(runtime()).unwrap();
    (router(state.clone()), state)
}

/// Starts a streamed chat that keeps the engine busy and returns its body after the first
/// few chunks have arrived.
async fn busy_stream(app: Router, max_tokens: usize) -> Body {
    let req = chat(json!({"max_tokens": max_tokens, "stream": true, "ignore_eos": true}));
    let resp = app
        .oneshot(request("POST", "/v1/chat/completions", Some(&req)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut seen = 0;
    while seen < 3 {
        let frame = body.frame().await.unwrap().unwrap();
        if frame.is_data() {
            seen += 1;
        }
    }
    body
}

#[tokio::test]
async fn a_dropped_stream_frees_the_model_for_the_next_request() {
    let (app, state) = own_app(config(None));
    let body = busy_stream(app.clone(), 400).await;
    assert_eq!(state.loaded().unwrap().engine.pending(), 1);
    drop(body);
    // The next request does not wait for the dropped one's 400 tokens.
    let started = std::time::Instant::now();
    let (s, b) = send(app, "POST", "/v1/chat/completions", Some(&chat(json!({})))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 8);
    // The dropped sequence leaves the batch at the engine's next step.
    wait_until_idle(&state.loaded().unwrap().engine).await;
    // Generous bound: 400 tokens of SmolLM2 take far longer than this on any machine
    // where 8 do not.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let (app, state) = own_app(ServerConfig {
        engine: candor::engine::EngineConfig {
            max_queue: 0,
            max_running: 1,
            ..Default::default()
        },
        ..config(None)
    });
    let body = busy_stream(app.clone(), 400).await;
    let req = request("POST", "/v1/chat/completions", Some(&chat(json!({}))));
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get(header::RETRY_AFTER).is_some());
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &v,
        StatusCode::SERVICE_UNAVAILABLE,
        None,
    );
    // /health and /v1/models are served while the model is busy.
    assert_eq!(
        send(app.clone(), "GET", "/health", None).await.0,
        StatusCode::OK
    );
    assert_eq!(send(app, "GET", "/v1/models", None).await.0, StatusCode::OK);
    drop(body);
    let _ = state;
}

#[tokio::test]
async fn the_request_timeout_ends_a_generation() {
    let (app, _state) = own_app(ServerConfig {
        request_timeout: Some(std::time::Duration::from_millis(1)),
        ..config(None)
    });
    let req = chat(json!({"max_tokens": 50, "ignore_eos": true}));
    let (s, b) = send(app, "POST", "/v1/chat/completions", Some(&req)).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(
        v["usage"]["completion_tokens"].as_u64().unwrap() < 50,
        "{v}"
    );
}

#[tokio::test]
async fn content_parts_and_null_content_reach_a_string_template() {
    let parts = json!([{"type": "text", "text": "What is the capital"}, {"type": "text", "text": "of France?"}]);
    let with_parts = json!([
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": parts},
        {"role": "assistant", "content": null},
        {"role": "user", "content": "Answer."}
    ]);
    let plain = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital\nof France?"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Answer."}
    ]);
    let (s, a) = post("/apply-template", chat(json!({"messages": with_parts}))).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (_, b) = post("/apply-template", chat(json!({"messages": plain}))).await;
    assert_eq!(a["prompt"], b["prompt"]);
    assert!(a["prompt"]
        .as_str()
        .unwrap()
        .contains("capital\nof France?"));
    let (s, v) = post(
        "/v1/chat/completions",
        chat(json!({"messages": with_parts})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn include_usage_puts_usage_null_in_every_chunk_but_the_last() {
    for (path, body) in [
        ("/v1/chat/completions", chat(json!({"max_tokens": 4}))),
        (
            "/v1/completions",
            json!({"model": NAME, "prompt": "1, 2, 3,", "max_tokens": 4, "temperature": 0}),
        ),
    ] {
        let mut body = body;
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let (s, bytes) = send(app(), "POST", path, Some(&body)).await;
        assert_eq!(s, StatusCode::OK);
        let events = sse_data(&bytes);
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let (last, before) = chunks.split_last().unwrap();
        assert!(!before.is_empty());
        for c in before {
            assert_eq!(c.get("usage"), Some(&Value::Null), "{path}: {c}");
        }
        assert_eq!(last["usage"]["completion_tokens"], 4, "{path}: {last}");
        // Without include_usage the field is left out.
        body["stream_options"] = json!({"include_usage": false});
        let (_, bytes) = send(app(), "POST", path, Some(&body)).await;
        let first: Value = serde_json::from_str(&sse_data(&bytes)[0]).unwrap();
        assert!(first.get("usage").is_none(), "{path}: {first}");
    }
}

#[tokio::test]
async fn streamed_text_offsets_equal_the_non_streamed_ones() {
    let body = json!({"model": NAME, "prompt": "The capital of France is", "max_tokens": 5,
                      "temperature": 0, "echo": true, "logprobs": 1});
    let (_, whole) = post("/v1/completions", body.clone()).await;
    let want = whole["choices"][0]["logprobs"]["text_offset"].clone();
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let (_, bytes) = send(app(), "POST", "/v1/completions", Some(&streamed)).await;
    let mut offsets = Vec::new();
    for e in sse_data(&bytes).iter().filter(|e| *e != "[DONE]") {
        let c: Value = serde_json::from_str(e).unwrap();
        if let Some(lp) = c["choices"][0]["logprobs"].get("text_offset") {
            offsets.extend(lp.as_array().unwrap().iter().cloned());
        }
    }
    assert_eq!(Value::Array(offsets), want);
}

#[tokio::test]
async fn messages_carry_a_null_refusal_as_openai_sends() {
    let (_, v) = post("/v1/chat/completions", chat(json!({"logprobs": true}))).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["message"].get("refusal"), Some(&Value::Null), "{v}");
    assert_eq!(choice["logprobs"].get("refusal"), Some(&Value::Null), "{v}");
}

#[test]
fn the_schema_check_refuses_what_openai_would_not_send() {
    use common::openai_schema::assert_matches;
    let mut v = json!({"id": "chatcmpl-x", "object": "chat.completion", "created": 1,
        "model": NAME, "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "hi", "refusal": null}}]});
    assert_matches("CreateChatCompletionResponse", &v);
    v["choices"][0]["message"]
        .as_object_mut()
        .unwrap()
        .remove("refusal");
    let refused = std::panic::catch_unwind(|| assert_matches("CreateChatCompletionResponse", &v));
    assert!(refused.is_err(), "a message without refusal must not pass");
}

/// A prompt of token ids (one array, or an array of arrays) completes exactly as the
/// same prompt sent as text (its tokens as /tokenize gives them); `echo` returns the ids'
/// text; an id outside the vocabulary is a 400 naming its place.
#[tokio::test]
async fn prompts_of_token_ids_complete_as_their_text() {
    let text = "The capital of France is";
    // SmolLM2's tokenizer adds no BOS, so /tokenize's ids are the text prompt's.
    let (_, v) = post("/tokenize", json!({"content": text})).await;
    let ids = v["tokens"].clone();
    let completion =
        |prompt: Value| json!({"model": NAME, "prompt": prompt, "max_tokens": 8, "temperature": 0});
    let (s, want) = post("/v1/completions", completion(json!(text))).await;
    assert_eq!(s, StatusCode::OK, "{want}");
    let (s, got) = post("/v1/completions", completion(ids.clone())).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["choices"][0]["text"], want["choices"][0]["text"]);
    assert_eq!(
        got["usage"]["prompt_tokens"],
        want["usage"]["prompt_tokens"]
    );
    let (s, two) = post("/v1/completions", completion(json!([ids.clone(), text]))).await;
    assert_eq!(s, StatusCode::OK, "{two}");
    for c in two["choices"].as_array().unwrap() {
        assert_eq!(c["text"], want["choices"][0]["text"], "{two}");
    }
    let mut echoed = completion(ids.clone());
    echoed["echo"] = json!(true);
    let (_, v) = post("/v1/completions", echoed).await;
    let t = v["choices"][0]["text"].as_str().unwrap();
    assert!(t.starts_with(text), "{v}");
    let (s, v) = post(
        "/v1/completions",
        completion(json!([[1, 2], [3, 99999999]])),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, Some("prompt[1][1]"));
    let (s, v) = post("/v1/completions", completion(json!([5, -1]))).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, Some("prompt[1]"));
}

#[tokio::test]
async fn echo_with_logprobs_scores_the_prompt_as_the_model_predicts_it() {
    let text = "The capital of France is Paris. The capital of Italy is Rome.";
    let (_, v) = post("/tokenize", json!({"content": text})).await;
    let ids: Vec<u64> = serde_json::from_value(v["tokens"].clone()).unwrap();
    let scoring = json!({"model": NAME, "prompt": text, "echo": true, "logprobs": 5,
                         "max_tokens": 0, "temperature": 0});
    let (s, v) = post("/v1/completions", scoring.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let c = &v["choices"][0];
    assert_eq!(c["text"], text, "echo alone: nothing generated");
    assert_eq!(c["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 0);
    let lp = &c["logprobs"];
    assert_eq!(lp["tokens"].as_array().unwrap().len(), ids.len(), "{lp}");
    assert!(
        lp["token_logprobs"][0].is_null(),
        "nothing predicts the first token"
    );
    assert!(lp["top_logprobs"][0].is_null());
    let pieces: String = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(pieces, text);
    // Each prompt token's alternatives are what generation after the tokens before it sees.
    for t in [1, ids.len() / 2, ids.len() - 1] {
        let ask = json!({"model": NAME, "prompt": ids[..t], "max_tokens": 1, "logprobs": 5,
                         "temperature": 0});
        let (s, g) = post("/v1/completions", ask).await;
        assert_eq!(s, StatusCode::OK, "{g}");
        let want = g["choices"][0]["logprobs"]["top_logprobs"][0]
            .as_object()
            .unwrap()
            .clone();
        let got = lp["top_logprobs"][t].as_object().unwrap();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "token {t}"
        );
        for (k, w) in &want {
            let d = (got[k].as_f64().unwrap() - w.as_f64().unwrap()).abs();
            assert!(d < 1e-3, "token {t} {k:?}: {} vs {w}", got[k]);
        }
        let own = lp["token_logprobs"][t].as_f64().unwrap();
        let best = want
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert!(
            own <= best + 1e-6,
            "token {t}: {own} above the most likely {best}"
        );
        if let Some(x) = want.get(lp["tokens"][t].as_str().unwrap()) {
            assert!((own - x.as_f64().unwrap()).abs() < 1e-3, "token {t}");
        }
    }
    // Again (the prompt now cached, but scored positions are computed), and streamed.
    let (_, again) = post("/v1/completions", scoring.clone()).await;
    assert_eq!(again["choices"][0]["logprobs"], *lp);
    let mut streamed = scoring.clone();
    streamed["stream"] = json!(true);
    let (s, body) = send(app(), "POST", "/v1/completions", Some(&streamed)).await;
    assert_eq!(s, StatusCode::OK);
    let (mut joined, mut tokens, mut logprobs) = (String::new(), Vec::new(), Vec::new());
    for d in sse_data(&body).iter().filter(|d| *d != "[DONE]") {
        let chunk: Value = serde_json::from_str(d).unwrap();
        let c = &chunk["choices"][0];
        joined.push_str(c["text"].as_str().unwrap());
        if let Some(l) = c["logprobs"].as_object() {
            tokens.extend(l["tokens"].as_array().unwrap().clone());
            logprobs.extend(l["token_logprobs"].as_array().unwrap().clone());
        }
    }
    assert_eq!(joined, text);
    assert_eq!(json!(tokens), lp["tokens"]);
    assert_eq!(json!(logprobs), lp["token_logprobs"]);
    // Scored and continued: the prompt's entries, then the generated tokens'.
    let mut more = scoring;
    more["max_tokens"] = json!(4);
    let (_, v) = post("/v1/completions", more).await;
    let l = &v["choices"][0]["logprobs"];
    assert_eq!(l["tokens"].as_array().unwrap().len(), ids.len() + 4, "{v}");
    assert_eq!(
        l["token_logprobs"].as_array().unwrap()[..ids.len()],
        lp["token_logprobs"].as_array().unwrap()[..]
    );
    assert_eq!(l["text_offset"][ids.len()], text.len());
    // max_tokens 0 without echo has nothing to do.
    let (s, v) = post(
        "/v1/completions",
        json!({"model": NAME, "prompt": text, "max_tokens": 0}),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, Some("max_tokens"));
}
