//! Checks response bodies against OpenAI's own schemas: an extract of its OpenAPI
//! specification (tests/fixtures/openai/, made by scripts/extract-openai-schemas.py).
//! [`super::send`] runs every answer of the HTTP tests through [`check`].

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

fn bundle() -> &'static Value {
    static BUNDLE: OnceLock<Value> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/openai/schemas.json"
        );
        let text = std::fs::read_to_string(path).expect("tests/fixtures/openai/schemas.json");
        let mut bundle: Value = serde_json::from_str(&text).expect("the schema bundle is JSON");
        // The spec has no schema for a streamed text completion: OpenAI streams
        // CreateCompletionResponse objects whose finish_reason is null until a choice ends
        // and whose usage is null until the last chunk (with include_usage). Derived here,
        // with exactly those two fields relaxed.
        let defs = bundle["$defs"].as_object_mut().expect("$defs");
        let mut chunk = defs["CreateCompletionResponse"].clone();
        let finish = &mut chunk["properties"]["choices"]["items"]["properties"]["finish_reason"];
        finish["type"] = json!(["string", "null"]);
        finish["enum"]
            .as_array_mut()
            .expect("an enum")
            .push(Value::Null);
        let usage = chunk["properties"]["usage"].take();
        chunk["properties"]["usage"] = json!({"anyOf": [usage, {"type": "null"}]});
        defs.insert("CompletionStreamChunk".into(), chunk);
        // An echoed prompt's first token has no logprob: OpenAI's API (and vLLM) answer
        // null there, though the spec's lists say number and object.
        for name in ["CreateCompletionResponse", "CompletionStreamChunk"] {
            let lp = &mut defs.get_mut(name).expect("defined")["properties"]["choices"]["items"]
                ["properties"]["logprobs"]["anyOf"][0]["properties"];
            for field in ["token_logprobs", "top_logprobs"] {
                let item = lp[field]["items"].take();
                lp[field]["items"] = json!({"anyOf": [item, {"type": "null"}]});
            }
        }
        bundle
    })
}

/// Panics, naming what is wrong, unless `instance` matches the schema `name`.
pub fn assert_matches(name: &str, instance: &Value) {
    static VALIDATORS: OnceLock<std::sync::Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let validator = {
        let mut map = VALIDATORS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *map.entry(name.to_string()).or_insert_with(|| {
            let mut schema = bundle().clone();
            assert!(schema["$defs"].get(name).is_some(), "no schema {name}");
            schema["$ref"] = json!(format!("#/$defs/{name}"));
            let v = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
            Box::leak(Box::new(v))
        })
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "does not match OpenAI's {name}:\n  {}\n{instance:#}",
        errors.join("\n  ")
    );
}

/// Checks an answer of the router against OpenAI's schema for its endpoint: errors,
/// chat and text completions (streamed or not), the model list and one model, responses
/// (streamed or not, retrieved) and their input items. Other
/// endpoints (llama-server's /tokenize, /health, /metrics) have no OpenAI schema.
pub fn check(method: &str, path: &str, status: u16, body: &[u8]) {
    let sse = body.starts_with(b"data:") || body.starts_with(b"event:");
    let path = path.split('?').next().unwrap_or(path);
    let json_body = || serde_json::from_slice::<Value>(body).ok();
    if status >= 400 {
        let v = json_body().unwrap_or_else(|| {
            panic!(
                "every error carries OpenAI's error body; {method} {path} got {status} with {:?}",
                String::from_utf8_lossy(body)
            )
        });
        assert_matches("ErrorResponse", &v);
        return;
    }
    let (plain, streamed) = match (method, path) {
        ("POST", "/v1/chat/completions") => (
            "CreateChatCompletionResponse",
            "CreateChatCompletionStreamResponse",
        ),
        ("POST", "/v1/completions") => ("CreateCompletionResponse", "CompletionStreamChunk"),
        ("POST", "/v1/responses") => ("Response", "ResponseStreamEvent"),
        ("GET", p) if p.starts_with("/v1/responses/") && p.ends_with("/input_items") => {
            ("ResponseItemList", "")
        }
        ("GET", p) if p.starts_with("/v1/responses/") => ("Response", ""),
        ("GET", "/v1/models") => ("ListModelsResponse", ""),
        ("GET", p) if p.starts_with("/v1/models/") => ("Model", ""),
        _ => return,
    };
    if !sse {
        assert_matches(plain, &json_body().expect("a JSON body"));
        return;
    }
    let text = std::str::from_utf8(body).expect("SSE is text");
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let line = |prefix: &str| event.lines().find_map(|l| l.strip_prefix(prefix));
        let Some(data) = line("data: ").filter(|d| *d != "[DONE]") else {
            continue;
        };
        let chunk: Value = serde_json::from_str(data).expect("each chunk is JSON");
        // A typed event (the Responses API) is named by its `event:` line.
        if let Some(name) = line("event: ") {
            assert_eq!(
                Some(name),
                chunk["type"].as_str(),
                "event: line and type differ"
            );
        }
        let name = if chunk.get("error").is_some() {
            "ErrorResponse"
        } else {
            streamed
        };
        assert_matches(name, &chunk);
    }
}
