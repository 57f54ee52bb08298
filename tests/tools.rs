//! Tool calls over HTTP in process (issue 12), with the tiny random-weight models: a
//! forced call is valid against the tool's schema however little the model knows, the
//! thinking stays free beside it, streamed call deltas join to the non-streamed call,
//! a tool conversation renders through the model's own template, and what cannot work
//! is a 400 naming the field; a call written inside the thinking stays thinking.

mod common;

use axum::http::StatusCode;
use axum::Router;
use candor::api::{router, AppState};
use candor::constraint::Grammar;
use candor::loaded_model::{LoadConfig, LoadedModel};
use candor::tools::{ToolDef, ToolFormat};
use common::{asset, send};
use serde_json::{json, Value};
use std::sync::Arc;

const Q3: &str = "tiny-qwen3-think";
const R1: &str = "tiny-qwen2-r1";

fn app_with(lm: Arc<LoadedModel>, name: &str) -> Router {
    let state = AppState::new(common::server_config(name));
    state.set_loaded(lm).unwrap();
    router(state)
}

fn model_app(name: &str, format: Option<ToolFormat>) -> Router {
    let mut lm = LoadedModel::load(&LoadConfig {
        model: asset(name),
        device: None,
        dtype: None,
        chat_template: None,
        reasoning_markers: None,
        progress: None,
    })
    .unwrap();
    if format.is_some() {
        lm.tool_format = format;
    }
    app_with(Arc::new(lm), name)
}

fn weather_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "where": {
                "type": "object",
                "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90}},
                "required": ["lat"],
                "additionalProperties": false
            }
        },
        "required": ["city", "unit", "days", "where"],
        "additionalProperties": false
    })
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": weather_schema(), "strict": true}},
        {"type": "function", "function": {"name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}},
                           "required": ["tz"], "additionalProperties": false}}}
    ])
}

fn request(name: &str, extra: Value) -> Value {
    let mut v = json!({
        "model": name,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": tools(),
        "max_tokens": 300,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

async fn post(app: &Router, path: &str, body: &Value) -> (StatusCode, Value) {
    let (s, b) = send(app.clone(), "POST", path, Some(body)).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn assert_valid(schema: &Value, arguments: &str) {
    let value: Value = serde_json::from_str(arguments).unwrap();
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{arguments}: {errors:?}");
}

/// `tool_choice` naming a function, and `required`, force a valid call from models that
/// know nothing, in Hermes (Qwen3's template) and DeepSeek's format; the thinking (closed
/// by a budget) stays free text beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_calls_are_valid_calls() {
    for (name, format) in [(Q3, None), (R1, Some(ToolFormat::DeepSeek))] {
        let app = model_app(name, format);
        for (seed, choice) in [
            (
                0,
                json!({"type": "function", "function": {"name": "get_weather"}}),
            ),
            (1, json!("required")),
            (
                2,
                json!({"type": "function", "function": {"name": "get_weather"}}),
            ),
        ] {
            let body = request(
                name,
                json!({"tool_choice": choice, "temperature": 1.0, "seed": seed,
                       "thinking_token_budget": 4}),
            );
            let (s, v) = post(&app, "/v1/chat/completions", &body).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let choice0 = &v["choices"][0];
            assert_eq!(choice0["finish_reason"], "tool_calls", "{name}: {v}");
            let message = &choice0["message"];
            assert!(message["content"].is_null(), "{v}");
            let calls = message["tool_calls"].as_array().unwrap();
            // A named function is called once; `required` may call several tools.
            if seed != 1 {
                assert_eq!(calls.len(), 1, "{v}");
            }
            assert!(!calls.is_empty(), "{v}");
            for call in calls {
                assert!(call["id"].as_str().unwrap().starts_with("call_"));
                assert_eq!(call["type"], "function");
                let fname = call["function"]["name"].as_str().unwrap();
                let args = call["function"]["arguments"].as_str().unwrap();
                match fname {
                    "get_weather" => assert_valid(&weather_schema(), args),
                    "get_time" => assert_valid(&tools()[1]["function"]["parameters"], args),
                    other => panic!("unknown tool {other}"),
                }
                if seed != 1 {
                    assert_eq!(fname, "get_weather");
                }
            }
            // R1's template opens the thinking, so it always thinks first (Qwen3's leaves
            // the choice to the model, which may open the block despite the grammar).
            if name == R1 {
                let thought = message["reasoning_content"].as_str().unwrap_or("");
                assert!(!thought.is_empty(), "the thinking is kept: {v}");
                let reasoning = &v["usage"]["completion_tokens_details"]["reasoning_tokens"];
                assert!(reasoning.as_u64() >= Some(4), "{v}");
            }
        }
    }
}

/// Streamed, the call arrives as OpenAI streams one (index, id, type and name first,
/// then the arguments piece by piece), and joins to the non-streamed call; no markup
/// reaches content.
#[tokio::test]
async fn streamed_calls_join_to_the_whole_call() {
    let app = model_app(Q3, None);
    let body = request(
        Q3,
        json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}},
               "temperature": 0, "chat_template_kwargs": {"enable_thinking": false}}),
    );
    let (_, whole) = post(&app, "/v1/chat/completions", &body).await;
    let want = &whole["choices"][0]["message"]["tool_calls"][0]["function"];
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (s, b) = send(app.clone(), "POST", "/v1/chat/completions", Some(&streamed)).await;
    assert_eq!(s, StatusCode::OK);
    let (mut name, mut args, mut content, mut finish) =
        (String::new(), String::new(), String::new(), None);
    let mut first_has_id = None;
    let mut argument_deltas = 0;
    for data in String::from_utf8(b)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
    {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        let c = &chunk["choices"][0];
        if let Some(t) = c["delta"]["content"].as_str() {
            content.push_str(t);
        }
        if let Some(calls) = c["delta"]["tool_calls"].as_array() {
            let call = &calls[0];
            assert_eq!(call["index"], 0);
            first_has_id.get_or_insert(call["id"].is_string() && call["type"] == "function");
            name.push_str(call["function"]["name"].as_str().unwrap_or(""));
            let piece = call["function"]["arguments"].as_str().unwrap_or("");
            argument_deltas += usize::from(!piece.is_empty());
            args.push_str(piece);
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert_eq!(first_has_id, Some(true));
    // The arguments stream as the model writes them, not in one piece at the end.
    assert!(argument_deltas >= 3, "{argument_deltas} argument deltas");
    assert_eq!(
        (name.as_str(), args.as_str()),
        (
            want["name"].as_str().unwrap(),
            want["arguments"].as_str().unwrap()
        )
    );
    assert_eq!(content, "");
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}

/// A tool conversation (an assistant turn with calls, a tool result) renders through
/// Qwen3's own template: the tools, the call and the result are in the prompt.
#[tokio::test]
async fn a_tool_conversation_renders_through_the_template() {
    let app = model_app(Q3, None);
    let body = json!({
        "model": Q3,
        "tools": tools(),
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "reasoning_content": "Let me look.",
             "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "20 C"}]}
        ]
    });
    let (s, v) = post(&app, "/apply-template", &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let prompt = v["prompt"].as_str().unwrap();
    for needle in [
        "\"name\": \"get_weather\"",
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "<tool_response>\n20 C\n</tool_response>",
    ] {
        assert!(prompt.contains(needle), "{needle:?} not in {prompt}");
    }
    // And the conversation is answered.
    let mut answer = body.clone();
    answer["max_tokens"] = json!(5);
    let (s, v) = post(&app, "/v1/chat/completions", &answer).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn what_cannot_work_is_a_400_naming_the_field() {
    let app = model_app(Q3, None);
    let cases = [
        (
            json!({"tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice.function.name",
        ),
        (json!({"tools": [{"type": "retrieval"}]}), "tools[0].type"),
        (
            json!({"tools": [{"type": "function", "function": {"name": "bad name"}}]}),
            "tools[0].function.name",
        ),
        (json!({"tool_choice": "sometimes"}), "tool_choice"),
        (
            json!({"tool_choice": "required", "response_format": {"type": "json_object"}}),
            "response_format",
        ),
        (
            json!({"tools": [], "tool_choice": "required"}),
            "tool_choice",
        ),
    ];
    for (extra, param) in cases {
        let (s, v) = post(&app, "/v1/chat/completions", &request(Q3, extra.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {v}");
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    // A model whose template knows no tools.
    let r1 = model_app(R1, None);
    let (s, v) = post(&r1, "/v1/chat/completions", &request(R1, json!({}))).await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("tools"))
    );
    // tool_choice "none" shows no tools and reads no calls.
    let (s, v) = post(
        &r1,
        "/v1/chat/completions",
        &request(R1, json!({"tool_choice": "none", "max_tokens": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Under `auto`, a strict tool leaves the answer free until the model opens a call;
/// from there the call must be well-formed and the strict tool's arguments valid.
/// Walked token by token through the grammar with Qwen3's tokenizer, where
/// `<tool_call>` is text (an added token that is not special), and with DeepSeek's
/// markers, which are not tokens at all in that vocabulary.
#[test]
fn auto_with_a_strict_tool_constrains_a_call_once_opened() {
    let lm = LoadedModel::load(&LoadConfig {
        model: asset(Q3),
        device: None,
        dtype: None,
        chat_template: None,
        reasoning_markers: None,
        progress: None,
    })
    .unwrap();
    let grammars = lm.grammars().unwrap();
    let tok = &lm.tokenizer;
    let defs: Vec<ToolDef> = tools()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| ToolDef {
            name: t["function"]["name"].as_str().unwrap().into(),
            parameters: t["function"]["parameters"].clone(),
            strict: t["function"]["strict"] == true,
        })
        .collect();
    let special = |m: &str| tok.token_to_id(m).filter(|&id| tok.is_special(id));
    let eos = lm.eos_ids[0];
    // Every token of `text` is allowed in turn; returns the state after it.
    let walk = |c: &mut candor::constraint::Constraint, text: &str| {
        for id in tok.encode(text, false).unwrap() {
            let allowed = c.allowed().unwrap();
            assert!(
                allowed.is_allowed(id),
                "{text:?}: {:?} refused",
                tok.decode(&[id], false)
            );
            c.consume(id).unwrap();
        }
    };
    let allows = |c: &mut candor::constraint::Constraint, text: &str| {
        let id = tok.encode(text, false).unwrap()[0];
        c.allowed().unwrap().is_allowed(id)
    };

    let lark = ToolFormat::Hermes.call_grammar(&defs, false, true, special);
    let mut c = grammars.compile(&Grammar::Lark(lark.clone())).unwrap();
    assert!(
        c.allowed().unwrap().is_allowed(eos),
        "an answer may be empty"
    );
    walk(&mut c, "No call needed: {\"braces\"} are fine in text.");
    assert!(
        c.allowed().unwrap().is_allowed(eos),
        "text may end the answer"
    );
    walk(&mut c, " Checking.<tool_call>\n");
    // Inside the call only its JSON may follow.
    assert!(!allows(&mut c, "Sure"));
    assert!(!c.allowed().unwrap().is_allowed(eos));
    walk(
        &mut c,
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"",
    );
    assert!(!allows(&mut c, "kelvin"), "the strict tool's enum holds");
    walk(&mut c, "celsius\", \"days\": ");
    assert!(!allows(&mut c, "9"), "the strict tool's bounds hold");
    walk(&mut c, "3, \"where\": {\"lat\": 48.8}}}\n</tool_call>");
    assert!(
        c.allowed().unwrap().is_allowed(eos),
        "after the call the answer may end"
    );
    walk(&mut c, "\nDone.");

    // A non-strict tool's arguments need only be an object.
    let mut c = grammars.compile(&Grammar::Lark(lark)).unwrap();
    walk(
        &mut c,
        "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": 1}}\n</tool_call>",
    );

    // DeepSeek's markers as text: the lazy lexeme ends the text at the first marker.
    let lark = ToolFormat::DeepSeek.call_grammar(&defs, false, false, special);
    let mut c = grammars.compile(&Grammar::Lark(lark)).unwrap();
    walk(&mut c, "Let me look.");
    walk(&mut c, candor::tools::DS_CALLS_BEGIN);
    assert!(!allows(&mut c, "Sure"));
}

/// Text that looks like a call inside the thinking is thinking: the reasoning splitter
/// takes it out of the answer before the call parser ever sees it, and only the call
/// written after the thinking is a call.
#[test]
fn a_call_inside_the_thinking_is_thinking() {
    use candor::reasoning::splitter::{Markers, Phase, ReasoningSplitter};
    use candor::tools::parser::{ToolCallParser, ToolDelta};
    let (start, end) = Markers::DEFAULT;
    let markers = Arc::new(Markers {
        start: start.into(),
        end: end.into(),
        start_id: None,
        end_id: None,
    });
    let mut splitter = ReasoningSplitter::new(markers, Phase::Thinking, false);
    let mut parser = ToolCallParser::new(ToolFormat::Hermes, true, false);
    let (mut thinking, mut deltas) = (String::new(), Vec::new());
    let answer = "I could write <tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call> but no.</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    let chars: Vec<char> = answer.chars().collect();
    for piece in chars.chunks(3) {
        let split = splitter.push(None, &piece.iter().collect::<String>(), false);
        thinking.push_str(&split.reasoning);
        deltas.extend(parser.push(&split.content));
    }
    let split = splitter.finish();
    thinking.push_str(&split.reasoning);
    deltas.extend(parser.push(&split.content));
    deltas.extend(parser.finish());
    assert!(thinking.contains("\"get_time\""), "{thinking:?}");
    let names: Vec<&str> = deltas
        .iter()
        .filter_map(|d| match d {
            ToolDelta::Start { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["get_weather"], "{deltas:?}");
}
