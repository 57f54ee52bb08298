//! The Responses API over HTTP in process (issue 15), with the tiny random-weight
//! reasoning models: the thinking as a `reasoning` item before the message, counted in
//! `reasoning_tokens`; a cut answer `incomplete`; streamed events that add up to the
//! non-streamed items field by field; function tools and their outputs; `text.format`;
//! `previous_response_id` over the store (with the prefix cache's tokens), GET, DELETE
//! and input_items, each key seeing only its own; every refusal OpenAI-shaped. Every
//! answer is checked against OpenAI's own schemas by `common::send`.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use candor::api::{router, AppState, ServerConfig};
use candor::loaded_model::LoadedModel;
use common::send;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const R1: &str = "tiny-qwen2-r1";
const Q3: &str = "tiny-qwen3-think";

fn runtime(dir: &str) -> Arc<LoadedModel> {
    common::load_asset_once(dir)
}

fn config(name: &str, keys: &[&str]) -> ServerConfig {
    ServerConfig {
        api_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..common::server_config(name)
    }
}

fn app_with(name: &str, keys: &[&str], store: usize) -> Router {
    let state = AppState::with_responses_store(config(name, keys), store);
    state.set_loaded(runtime(name)).unwrap();
    router(state)
}

fn app(name: &str) -> Router {
    app_with(name, &[], 100)
}

async fn post(app: &Router, body: &Value) -> (StatusCode, Value) {
    let (s, b) = send(app.clone(), "POST", "/v1/responses", Some(body)).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn create(app: &Router, body: &Value) -> Value {
    let (s, v) = post(app, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn get(app: &Router, method: &str, path: &str) -> (StatusCode, Value) {
    let (s, b) = send(app.clone(), method, path, None).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// Streams the request; returns the events' payloads after checking the framing: each
/// `event:` line names its payload's type, sequence numbers count from 0.
async fn stream_events(app: &Router, body: &Value) -> Vec<Value> {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let (s, b) = send(app.clone(), "POST", "/v1/responses", Some(&body)).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let text = String::from_utf8(b).unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let mut lines = block.lines();
        let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
        let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], name);
        assert_eq!(v["sequence_number"], events.len(), "{v}");
        events.push(v);
    }
    assert!(!text.contains("[DONE]"), "no [DONE] on the Responses API");
    events
}

/// The output items the events build, as a client folds them: items added, then their
/// parts, deltas appended, and what each `.done` event says must equal what was folded.
fn fold(events: &[Value]) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    for e in events {
        let out = e["output_index"].as_u64().map(|i| i as usize);
        match e["type"].as_str().unwrap() {
            "response.output_item.added" => {
                assert_eq!(out, Some(items.len()));
                items.push(e["item"].clone());
            }
            "response.content_part.added" => {
                let item = &mut items[out.unwrap()];
                assert_eq!(e["item_id"], item["id"]);
                item["content"]
                    .as_array_mut()
                    .unwrap()
                    .push(e["part"].clone());
            }
            "response.output_text.delta" | "response.reasoning_text.delta" => {
                let item = &mut items[out.unwrap()];
                assert_eq!(e["item_id"], item["id"]);
                let part = &mut item["content"][e["content_index"].as_u64().unwrap() as usize];
                let text = part["text"].as_str().unwrap().to_string();
                part["text"] = json!(text + e["delta"].as_str().unwrap());
            }
            "response.function_call_arguments.delta" => {
                let item = &mut items[out.unwrap()];
                let args = item["arguments"].as_str().unwrap().to_string();
                item["arguments"] = json!(args + e["delta"].as_str().unwrap());
            }
            "response.output_text.done" | "response.reasoning_text.done" => {
                let item = &items[out.unwrap()];
                let part = &item["content"][e["content_index"].as_u64().unwrap() as usize];
                assert_eq!(part["text"], e["text"]);
            }
            "response.content_part.done" => {
                let item = &items[out.unwrap()];
                assert_eq!(
                    item["content"][e["content_index"].as_u64().unwrap() as usize],
                    e["part"]
                );
            }
            "response.function_call_arguments.done" => {
                let item = &items[out.unwrap()];
                assert_eq!(
                    (&item["arguments"], &item["name"]),
                    (&e["arguments"], &e["name"])
                );
            }
            "response.output_item.done" => {
                // Only the status changes when an item is done.
                let item = &mut items[out.unwrap()];
                item["status"] = e["item"]["status"].clone();
                assert_eq!(*item, e["item"]);
            }
            _ => {}
        }
    }
    items
}

/// A response with what differs between two runs of the same request (ids, times, the
/// prefix cache's count) taken out.
fn redacted(v: &Value) -> Value {
    let mut v = v.clone();
    for field in ["id", "created_at", "completed_at"] {
        v[field] = Value::Null;
    }
    v["usage"]["input_tokens_details"]["cached_tokens"] = Value::Null;
    for item in v["output"].as_array_mut().unwrap() {
        item["id"] = Value::Null;
        if item.get("call_id").is_some() {
            item["call_id"] = Value::Null;
        }
    }
    v
}

fn body(model: &str, extra: Value) -> Value {
    let mut v = json!({"model": model, "input": "What is 2+2?", "temperature": 0,
                       "max_output_tokens": 24, "ignore_eos": true});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// Streamed and not, the same greedy request gives the same response: the events fold
/// into the non-streamed items field by field, the last event carries the whole response.
async fn both_ways(app: &Router, body: &Value) -> Value {
    let whole = create(app, body).await;
    let events = stream_events(app, body).await;
    assert_eq!(events[0]["type"], "response.created");
    assert_eq!(events[1]["type"], "response.in_progress");
    assert_eq!(events[0]["response"]["status"], "in_progress");
    let last = events.last().unwrap();
    let folded = fold(&events);
    assert_eq!(
        folded,
        last["response"]["output"].as_array().unwrap().clone()
    );
    assert_eq!(redacted(&last["response"]), redacted(&whole), "{body}");
    let expected = match whole["status"].as_str().unwrap() {
        "completed" => "response.completed",
        _ => "response.incomplete",
    };
    assert_eq!(last["type"], expected);
    whole
}

fn reasoning_tokens(v: &Value) -> u64 {
    v["usage"]["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thinking_is_a_reasoning_item_before_the_message() {
    let app = app(R1);
    let v = both_ways(&app, &body(R1, json!({"thinking_token_budget": 5}))).await;
    assert_eq!(v["object"], "response");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 2, "{v}");
    assert_eq!(out[0]["type"], "reasoning");
    assert!(out[0]["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(out[0]["summary"], json!([]));
    assert_eq!(out[0]["content"][0]["type"], "reasoning_text");
    assert!(!out[0]["content"][0]["text"].as_str().unwrap().is_empty());
    assert_eq!(out[1]["type"], "message");
    assert_eq!(out[1]["role"], "assistant");
    assert_eq!(out[1]["content"][0]["type"], "output_text");
    assert_eq!(v["output_text"], out[1]["content"][0]["text"]);
    assert_eq!(reasoning_tokens(&v), 5);
    assert_eq!(v["usage"]["output_tokens"], 24);
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["input_tokens"].as_u64().unwrap() + 24)
    );
    // Cut by max_output_tokens: incomplete, the message too.
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(
        (&out[0]["status"], &out[1]["status"]),
        (&json!("completed"), &json!("incomplete"))
    );
    // `reasoning.effort` goes through the same table as chat's: none closes the block.
    let v = both_ways(
        &app,
        &body(
            R1,
            json!({"reasoning": {"effort": "none", "summary": "auto"}}),
        ),
    )
    .await;
    assert_eq!(reasoning_tokens(&v), 0);
    assert_eq!(v["output"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["reasoning"], json!({"effort": "none", "summary": "auto"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_inside_the_thinking_is_incomplete_and_all_reasoning() {
    let app = app(R1);
    let v = both_ways(&app, &body(R1, json!({"max_output_tokens": 6}))).await;
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        v["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert!(v["completed_at"].is_null());
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 1, "{v}");
    assert_eq!(
        (&out[0]["type"], &out[0]["status"]),
        (&json!("reasoning"), &json!("incomplete"))
    );
    assert_eq!(reasoning_tokens(&v), 6);
    assert_eq!(v["output_text"], "");
    // The model ending by itself: completed.
    let v = both_ways(
        &app,
        &json!({"model": R1, "input": "Hi", "temperature": 0,
                                    "max_output_tokens": 200, "thinking_token_budget": 2}),
    )
    .await;
    if v["usage"]["output_tokens"].as_u64() < Some(200) {
        assert_eq!(v["status"], "completed");
        assert!(v["completed_at"].as_u64().is_some());
        assert!(v["incomplete_details"].is_null());
    }
}

fn weather_tool(strict: Option<bool>) -> Value {
    let mut t = json!({"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                       "required": ["city"], "additionalProperties": false}});
    if let Some(s) = strict {
        t["strict"] = json!(s);
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_tools_and_their_outputs_loop() {
    let app = app(Q3);
    let first = body(
        Q3,
        json!({"input": "Weather in Paris?", "tools": [weather_tool(None)],
        "tool_choice": "required", "max_output_tokens": 120, "ignore_eos": false,
        "thinking_token_budget": 3}),
    );
    let v = both_ways(&app, &first).await;
    let calls: Vec<&Value> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert!(!calls.is_empty(), "{v}");
    let call = calls[0];
    assert_eq!(call["name"], "get_weather");
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(call["status"], "completed");
    // The tools are echoed in the flat shape, strict by default as OpenAI's.
    assert_eq!(v["tools"][0]["strict"], true);
    assert_eq!(v["tool_choice"], "required");

    // The tool's output goes back with the whole conversation...
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    input.extend(v["output"].as_array().unwrap().iter().cloned());
    input.push(
        json!({"type": "function_call_output", "call_id": call["call_id"],
                      "output": "{\"temperature\": 21}"}),
    );
    let second = body(
        Q3,
        json!({"input": input, "tools": [weather_tool(Some(false))],
        "tool_choice": "none", "max_output_tokens": 16, "thinking_token_budget": 3}),
    );
    let v2 = create(&app, &second).await;
    assert_eq!(
        v2["output"].as_array().unwrap().last().unwrap()["type"],
        "message"
    );
    // ...or after the stored response by its id, to the same prompt.
    let third = body(
        Q3,
        json!({"previous_response_id": v["id"], "tools": [weather_tool(Some(false))],
        "tool_choice": "none", "max_output_tokens": 16, "thinking_token_budget": 3,
        "input": [{"type": "function_call_output", "call_id": call["call_id"],
                   "output": "{\"temperature\": 21}"}]}),
    );
    let v3 = create(&app, &third).await;
    assert_eq!(v3["usage"]["input_tokens"], v2["usage"]["input_tokens"]);
    assert_eq!(v3["output_text"], v2["output_text"]);
    assert_eq!(v3["previous_response_id"], v["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_text_format_constrains_the_answer() {
    let app = app(Q3);
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["name", "age"], "additionalProperties": false});
    let req = body(
        Q3,
        json!({"max_output_tokens": 200, "ignore_eos": false, "thinking_token_budget": 4,
        "text": {"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": true}}}),
    );
    let v = both_ways(&app, &req).await;
    assert_eq!(v["status"], "completed", "{v}");
    let answer: Value = serde_json::from_str(v["output_text"].as_str().unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&answer), "{answer}");
    assert_eq!(v["text"]["format"]["name"], "person");
    // json_object: any object.
    let req = body(
        Q3,
        json!({"max_output_tokens": 200, "ignore_eos": false, "thinking_token_budget": 4,
        "text": {"format": {"type": "json_object"}}}),
    );
    let v = create(&app, &req).await;
    let answer: Value = serde_json::from_str(v["output_text"].as_str().unwrap()).unwrap();
    assert!(answer.is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_response_id_continues_from_the_prefix_cache() {
    let app = app(R1);
    // Instructions are not carried over: a client sends them again.
    let instructions = "You are a careful assistant. Answer every question about \
                        arithmetic with the number alone, and nothing else, ever.";
    let first = create(
        &app,
        &body(
            R1,
            json!({"instructions": instructions, "max_output_tokens": 8,
                   "thinking_token_budget": 3}),
        ),
    )
    .await;
    let next = |instructions: Option<&str>| {
        json!({"model": R1, "input": "And 3+3?", "temperature": 0, "max_output_tokens": 8,
               "ignore_eos": true, "previous_response_id": first["id"],
               "instructions": instructions})
    };
    let second = create(&app, &next(Some(instructions))).await;
    let third = create(&app, &next(None)).await;
    let (i1, i2) = (
        first["usage"]["input_tokens"].as_u64().unwrap(),
        second["usage"]["input_tokens"].as_u64().unwrap(),
    );
    assert!(i2 > i1, "the second turn renders the first: {i1} then {i2}");
    let cached = second["usage"]["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached >= 16,
        "the first turn's blocks are reused: {cached} of {i2}"
    );
    assert!(third["instructions"].is_null());
    assert!(
        third["usage"]["input_tokens"].as_u64() < Some(i2),
        "the first turn's instructions are not carried over"
    );
    let (s, list) = get(
        &app,
        "GET",
        &format!(
            "/v1/responses/{}/input_items?order=asc",
            second["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "only this request's input: {list}"
    );
    assert_eq!(
        list["data"][0]["content"][0],
        json!({"type": "input_text", "text": "And 3+3?"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_responses_are_retrieved_listed_and_deleted() {
    let app = app(R1);
    let v = create(
        &app,
        &body(
            R1,
            json!({"max_output_tokens": 4, "metadata": {"run": "1"},
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                  {"type": "message", "role": "assistant", "content": "Hello."},
                  {"role": "user", "content": "Bye"}]}),
        ),
    )
    .await;
    assert_eq!(v["store"], true);
    assert_eq!(v["metadata"], json!({"run": "1"}));
    let id = v["id"].as_str().unwrap();
    let (s, got) = get(&app, "GET", &format!("/v1/responses/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, v);
    let (s, list) = get(&app, "GET", &format!("/v1/responses/{id}/input_items")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    // Newest first by default.
    assert_eq!(data[0]["content"][0]["text"], "Bye");
    assert_eq!(data[1]["role"], "assistant");
    assert_eq!(data[1]["content"][0]["type"], "output_text");
    assert_eq!(
        (&list["first_id"], &list["last_id"]),
        (&data[0]["id"], &data[2]["id"])
    );
    let (s, page) = get(
        &app,
        "GET",
        &format!("/v1/responses/{id}/input_items?limit=2&order=asc"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["content"][0]["text"], "Hi");

    let (s, d) = get(&app, "DELETE", &format!("/v1/responses/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d, json!({"id": id, "object": "response", "deleted": true}));
    for (method, path) in [
        ("GET", format!("/v1/responses/{id}")),
        ("DELETE", format!("/v1/responses/{id}")),
        ("GET", format!("/v1/responses/{id}/input_items")),
    ] {
        let (s, e) = get(&app, method, &path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(id));
    }
    // store: false keeps nothing.
    let v = create(
        &app,
        &body(R1, json!({"max_output_tokens": 2, "store": false})),
    )
    .await;
    assert_eq!(v["store"], false);
    let (s, _) = get(
        &app,
        "GET",
        &format!("/v1/responses/{}", v["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A request with an API key.
async fn with_key(
    app: &Router,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    common::openai_schema::check(method, path, status.as_u16(), &bytes);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_response_is_visible_only_to_its_key() {
    let app = app_with(R1, &["alice", "bob"], 100);
    let (s, v) = with_key(
        &app,
        "alice",
        "POST",
        "/v1/responses",
        Some(&body(R1, json!({"max_output_tokens": 2}))),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let path = format!("/v1/responses/{}", v["id"].as_str().unwrap());
    let items = format!("{path}/input_items");
    let new = "/v1/responses".to_string();
    let follow = body(
        R1,
        json!({"max_output_tokens": 2, "previous_response_id": v["id"]}),
    );
    // Bob sees nothing of Alice's; then Alice uses, reads and deletes her own.
    for (key, method, path, body, status) in [
        ("bob", "GET", &path, None, 404),
        ("bob", "GET", &items, None, 404),
        ("bob", "DELETE", &path, None, 404),
        ("bob", "POST", &new, Some(&follow), 400),
        ("alice", "POST", &new, Some(&follow), 200),
        ("alice", "GET", &path, None, 200),
        ("alice", "GET", &items, None, 200),
        ("alice", "DELETE", &path, None, 200),
    ] {
        let (s, e) = with_key(&app, key, method, path, body).await;
        assert_eq!(s.as_u16(), status, "{key} {method} {path}: {e}");
        if status == 400 {
            assert_eq!(e["error"]["param"], "previous_response_id");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_openai_shaped_and_names_its_field() {
    let app = app(R1);
    let missing = "resp_doesnotexist";
    for (extra, status, param) in [
        (
            json!({"tools": [{"type": "web_search"}]}),
            400,
            "tools[0].type",
        ),
        (
            json!({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            400,
            "tools[0].type",
        ),
        (json!({"background": true}), 400, "background"),
        (
            json!({"include": ["reasoning.encrypted_content"]}),
            400,
            "include",
        ),
        (
            json!({"input": [{"type": "computer_call_output", "call_id": "c"}]}),
            400,
            "input[0].type",
        ),
        (
            json!({"input": [{"type": "function_call_output", "output": "x"}]}),
            400,
            "input[0].call_id",
        ),
        (
            json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            400,
            "input[0].call_id",
        ),
        (json!({"input": []}), 400, "input"),
        (json!({"input": 3}), 400, "input"),
        (
            json!({"previous_response_id": missing}),
            400,
            "previous_response_id",
        ),
        (json!({"model": "gpt-5"}), 404, "model"),
        (json!({"max_output_tokens": 0}), 400, "max_output_tokens"),
        (
            json!({"reasoning": {"effort": "huge"}}),
            400,
            "reasoning.effort",
        ),
        (json!({"temperature": "hot"}), 400, "temperature"),
        (
            json!({"tool_choice": {"type": "function", "name": "nope"}, "tools": [weather_tool(None)]}),
            400,
            "tool_choice.name",
        ),
        (
            json!({"tools": [{"type": "function", "name": "bad name"}]}),
            400,
            "tools[0].name",
        ),
        (
            json!({"text": {"format": {"type": "xml"}}}),
            400,
            "text.format.type",
        ),
        (json!({"max_output_tokens": 5000}), 400, "max_output_tokens"),
    ] {
        let mut req = json!({"model": R1, "input": "Hi"});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let (s, e) = post(&app, &req).await;
        assert_eq!(s.as_u16(), status, "{req}: {e}");
        assert_eq!(e["error"]["param"], param, "{req}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    let (s, e) = post(
        &app,
        &json!({"model": R1, "previous_response_id": missing, "input": "Hi"}),
    )
    .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("previous_response_not_found")
        )
    );
    let (s, _) = get(&app, "GET", &format!("/v1/responses/{missing}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let v = create(&app, &body(R1, json!({"max_output_tokens": 2}))).await;
    let id = v["id"].as_str().unwrap();
    for (query, param) in [
        ("stream=true", "stream"),
        ("include=reasoning.encrypted_content", "include"),
    ] {
        let (s, e) = get(&app, "GET", &format!("/v1/responses/{id}?{query}")).await;
        assert_eq!(
            (s, &e["error"]["param"]),
            (StatusCode::BAD_REQUEST, &json!(param))
        );
    }
    let (s, e) = get(&app, "PUT", "/v1/responses/x").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{e}");

    // Without a store, previous_response_id cannot be honoured.
    let app = app_with(R1, &[], 0);
    let v = create(&app, &body(R1, json!({"max_output_tokens": 2}))).await;
    assert_eq!(v["store"], false, "nothing is stored");
    let (s, e) = post(&app, &body(R1, json!({"previous_response_id": v["id"]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "previous_response_id");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--responses-store 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_arrives_as_argument_deltas() {
    let app = app(Q3);
    let req = body(
        Q3,
        json!({"input": "Weather in Paris?", "tools": [weather_tool(None)],
        "tool_choice": {"type": "function", "name": "get_weather"}, "max_output_tokens": 120,
        "ignore_eos": false, "thinking_token_budget": 3}),
    );
    let events = stream_events(&app, &req).await;
    let deltas = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .count();
    assert!(
        deltas >= 3,
        "a grammar writes the call, so it streams piece by piece: {deltas}"
    );
    let done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["name"], "get_weather");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    let items = fold(&events);
    assert_eq!(items.last().unwrap()["arguments"], done["arguments"]);
}

/// A failure mid-stream (an engine error, which the tests cannot provoke) is an `error`
/// event then `response.failed`: both as OpenAI's schemas say.
#[test]
fn failure_events_match_openai_schemas() {
    use candor::openai::responses::{
        Event, ReasoningSettings, Response, ResponseError, Status, StreamEvent, TextFormat,
        TextSettings, ToolChoice,
    };
    let error = StreamEvent {
        event: Event::Error {
            code: Some("server_error".into()),
            message: "the engine dropped the request".into(),
            param: None,
        },
        sequence_number: 7,
    };
    let failed = Response {
        id: "resp_1".into(),
        object: "response",
        created_at: 1,
        status: Status::Failed,
        completed_at: None,
        error: Some(ResponseError {
            code: "server_error",
            message: "the engine dropped the request".into(),
        }),
        incomplete_details: None,
        instructions: None,
        max_output_tokens: None,
        model: "m".into(),
        output: Vec::new(),
        output_text: String::new(),
        parallel_tool_calls: true,
        previous_response_id: None,
        reasoning: ReasoningSettings::default(),
        store: true,
        temperature: 1.0,
        text: TextSettings {
            format: TextFormat::Text,
        },
        tool_choice: ToolChoice::Mode("auto".into()),
        tools: Vec::new(),
        top_p: 1.0,
        truncation: "disabled",
        usage: None,
        user: None,
        safety_identifier: None,
        metadata: Default::default(),
        background: false,
    };
    let failed = StreamEvent {
        event: Event::Failed {
            response: Box::new(failed),
        },
        sequence_number: 8,
    };
    for event in [error, failed] {
        let v = serde_json::to_value(&event).unwrap();
        assert_eq!(v["type"], event.event.name());
        common::openai_schema::assert_matches("ResponseStreamEvent", &v);
    }
}
