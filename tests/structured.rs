//! Structured output (issue 12): `response_format` and vLLM's `guided_*` fields, over
//! HTTP in process. Models that know nothing (the tiny random-weight ones) must still
//! answer inside the grammar; a reasoning model's thinking stays free and the grammar
//! starts where its answer does; streamed deltas join to the same answer; a constrained
//! greedy request gives the same tokens alone and in a batch.

mod common;

use axum::http::StatusCode;
use axum::Router;
use candor::api::{router, AppState};
use candor::loaded_model::LoadedModel;
use common::{asset, send};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};

const R1: &str = "tiny-qwen2-r1";
const Q3: &str = "tiny-qwen3-think";
const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The models loaded so far, by asset name.
type Loaded = Mutex<Vec<(String, Arc<LoadedModel>)>>;

fn model(name: &str) -> Arc<LoadedModel> {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    let mut all = LOADED.get_or_init(Default::default).lock().unwrap();
    if let Some((_, lm)) = all.iter().find(|(d, _)| d == name) {
        return lm.clone();
    }
    let lm = common::load(asset(name));
    all.push((name.to_string(), lm.clone()));
    lm
}

fn app(name: &str) -> Router {
    let state = AppState::new(common::server_config(name));
    state.set_loaded(model(name)).unwrap();
    router(state)
}

async fn post(app: &Router, path: &str, body: &Value) -> (StatusCode, Value) {
    let (s, b) = send(app.clone(), "POST", path, Some(body)).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// A schema with nested objects, arrays, enums, bounded numbers, required fields and no
/// additional properties.
fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "score": {"type": "number", "minimum": -1, "maximum": 1},
            "role": {"enum": ["admin", "user", "guest"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
            "address": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 10},
                    "zip": {"type": "integer", "minimum": 1000, "maximum": 99999}
                },
                "required": ["city", "zip"],
                "additionalProperties": false
            }
        },
        "required": ["name", "age", "role", "address", "tags"],
        "additionalProperties": false
    })
}

fn json_schema_format(schema: &Value) -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}})
}

fn chat(name: &str, extra: Value) -> Value {
    let mut v = json!({
        "model": name,
        "messages": [{"role": "user", "content": "Describe a person as JSON."}],
        "max_tokens": 400,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn assert_valid(schema: &Value, text: &str) {
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {text:?}"));
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{text}: {errors:?}");
}

/// Random-weight models, sampled at temperature 1 with several seeds: every answer that
/// ends (rather than running out of tokens) matches the schema, and most do end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_that_know_nothing_still_answer_inside_the_schema() {
    let schema = person_schema();
    for name in [Q3, SMOL] {
        let app = app(name);
        let mut ended = 0;
        for seed in 0..4 {
            let body = chat(
                name,
                json!({"response_format": json_schema_format(&schema), "temperature": 1.0,
                       "seed": seed, "chat_template_kwargs": {"enable_thinking": false}}),
            );
            let (s, v) = post(&app, "/v1/chat/completions", &body).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let choice = &v["choices"][0];
            let text = choice["message"]["content"].as_str().unwrap();
            if choice["finish_reason"] == "stop" {
                assert_valid(&schema, text);
                ended += 1;
            }
        }
        assert!(ended >= 2, "{name}: only {ended} of 4 answers ended");
    }
}

#[tokio::test]
async fn json_object_regex_choice_and_lark() {
    let app = app(Q3);
    let no_think = json!({"enable_thinking": false});
    let (s, v) = post(
        &app,
        "/v1/chat/completions",
        &chat(
            Q3,
            json!({"response_format": {"type": "json_object"}, "temperature": 0,
                         "chat_template_kwargs": no_think}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    if v["choices"][0]["finish_reason"] == "stop" {
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(
            serde_json::from_str::<Value>(text).unwrap().is_object(),
            "{text}"
        );
    }
    for (field, value, check) in [
        ("guided_regex", json!("[0-9]{3}-[a-z]{2}"), "regex"),
        ("guided_choice", json!(["red", "green", "blue"]), "choice"),
        (
            "guided_grammar",
            json!("start: \"yes\" | \"no\" | \"maybe\""),
            "lark",
        ),
    ] {
        let body = json!({"model": Q3, "prompt": "Answer:", "max_tokens": 20,
                          "temperature": 1.0, "seed": 3, field: value});
        let (s, v) = post(&app, "/v1/completions", &body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let text = v["choices"][0]["text"].as_str().unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{check}: {v}");
        let ok = match check {
            "regex" => {
                let b = text.as_bytes();
                text.len() == 6
                    && b[..3].iter().all(u8::is_ascii_digit)
                    && b[3] == b'-'
                    && b[4..].iter().all(u8::is_ascii_lowercase)
            }
            "choice" => ["red", "green", "blue"].contains(&text),
            _ => ["yes", "no", "maybe"].contains(&text),
        };
        assert!(ok, "{check}: {text:?}");
    }
}

/// DeepSeek-R1's template opens the thinking; a budget of 6 closes it (the inserted end
/// marker must leave the grammar where the answer starts). The thinking is free text,
/// counted in usage; the answer matches the schema.
#[tokio::test]
async fn the_thinking_stays_free_and_the_answer_obeys() {
    let schema = json!({
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["ok", "n"],
        "additionalProperties": false
    });
    let app = app(R1);
    for seed in 0..3 {
        let body = chat(
            R1,
            json!({"response_format": json_schema_format(&schema), "temperature": 1.0,
                   "seed": seed, "thinking_token_budget": 6}),
        );
        let (s, v) = post(&app, "/v1/chat/completions", &body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let message = &v["choices"][0]["message"];
        let thought = message["reasoning_content"].as_str().unwrap_or("");
        assert!(!thought.is_empty(), "{v}");
        assert!(v["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64() >= Some(6));
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        assert_valid(&schema, message["content"].as_str().unwrap().trim_start());
    }
}

/// The streamed deltas join to the non-streamed answer, and a constrained greedy
/// request gives the same answer alone and among unconstrained ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_and_batched_answers_equal_the_answer_alone() {
    let schema = person_schema();
    let app = app(SMOL);
    let body = chat(
        SMOL,
        json!({"response_format": json_schema_format(&schema), "temperature": 0}),
    );
    let (_, alone) = post(&app, "/v1/chat/completions", &body).await;
    let alone = alone["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_valid(&schema, &alone);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (s, b) = send(app.clone(), "POST", "/v1/chat/completions", Some(&streamed)).await;
    assert_eq!(s, StatusCode::OK);
    let text: String = String::from_utf8(b)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| {
            let c: Value = serde_json::from_str(d).unwrap();
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, alone);

    let mut calls = Vec::new();
    for i in 0..6 {
        let app = app.clone();
        let body = if i % 2 == 0 {
            body.clone()
        } else {
            chat(
                SMOL,
                json!({"temperature": 0.8, "seed": i, "max_tokens": 40}),
            )
        };
        calls.push(tokio::spawn(async move {
            post(&app, "/v1/chat/completions", &body).await
        }));
    }
    for (i, c) in calls.into_iter().enumerate() {
        let (s, v) = c.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        if i % 2 == 0 {
            assert_eq!(v["choices"][0]["message"]["content"], alone.as_str());
        }
    }
}

#[tokio::test]
async fn grammars_that_cannot_be_used_are_a_400_naming_the_field() {
    let app = app(Q3);
    for (extra, param) in [
        (json!({"guided_regex": "(unclosed"}), "guided_regex"),
        (
            json!({"guided_grammar": "start: undefined_rule"}),
            "guided_grammar",
        ),
        (
            json!({"response_format": json_schema_format(&json!({"type": "no-such-type"}))}),
            "response_format",
        ),
        (
            json!({"response_format": {"type": "xml"}}),
            "response_format",
        ),
        (
            json!({"structured_outputs": {"regex": "a", "choice": ["b"]}}),
            "structured_outputs.choice",
        ),
    ] {
        let (s, v) = post(&app, "/v1/chat/completions", &chat(Q3, extra.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {v}");
        assert_eq!(v["error"]["param"], param, "{v}");
    }
}
