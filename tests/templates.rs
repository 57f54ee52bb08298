//! candor's chat templates against transformers. Each fixture in tests/fixtures/templates holds a
//! template, the tokenizer's special tokens and the prompts (or errors) transformers'
//! `apply_chat_template(..., tokenize=False)` produced for a set of conversations; every case must
//! render to exactly the same text here. Regenerate the fixtures with
//! `~/.cache/candor/ref-venv/bin/python scripts/gen_template_reference.py`.

use std::path::PathBuf;

use candor::prompt::template::{ChatTemplate, RenderOptions, TemplateError, TemplateFamily};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct Fixture {
    name: String,
    special_tokens: Map<String, Value>,
    template: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    case: String,
    messages: Vec<Value>,
    tools: Option<Vec<Value>>,
    kwargs: Map<String, Value>,
    add_generation_prompt: bool,
    /// The prompt transformers rendered, unless it failed.
    expected: Option<String>,
    /// How transformers failed: `{"raised": message}` for raise_exception, else `{"type", "message"}`.
    error: Option<Value>,
}

fn load(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/templates")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let fixture: Fixture =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    assert_eq!(fixture.name, name);
    assert!(!fixture.cases.is_empty(), "{name} has no cases");
    fixture
}

/// Renders every case of the fixture and fails listing each mismatch with both strings.
fn check(fixture: &Fixture) {
    let token = |key: &str| fixture.special_tokens.get(key).and_then(Value::as_str);
    let template = ChatTemplate::new(&fixture.template, token("bos_token"), token("eos_token"))
        .unwrap_or_else(|e| panic!("{}: {e}", fixture.name));

    let mut failures = Vec::new();
    for case in &fixture.cases {
        let opts = RenderOptions {
            add_generation_prompt: case.add_generation_prompt,
            tools: case.tools.clone(),
            kwargs: case.kwargs.clone(),
        };
        let got = template.render(&case.messages, &opts);
        let failure = match (&case.expected, &case.error, got) {
            (Some(expected), None, Ok(got)) if *expected == got => None,
            (Some(expected), None, Ok(got)) => Some(format!(
                "prompt differs at byte {}\n--- transformers:\n{expected}\n--- candor:\n{got}\n\
                 --- transformers (escaped): {expected:?}\n--- candor (escaped):       {got:?}",
                first_difference(expected, &got)
            )),
            (Some(expected), None, Err(e)) => {
                Some(format!("failed: {e}\n--- transformers:\n{expected}"))
            }
            (None, Some(error), got) => check_error(error, got),
            _ => Some("fixture case has neither `expected` nor `error`".to_string()),
        };
        if let Some(failure) = failure {
            failures.push(format!("== {} / {}: {failure}", fixture.name, case.case));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from transformers:\n{}",
        failures.len(),
        fixture.cases.len(),
        failures.join("\n\n")
    );
}

/// A case where transformers failed must fail here too: with the same message when the template
/// called raise_exception, as a render error otherwise.
fn check_error(error: &Value, got: Result<String, TemplateError>) -> Option<String> {
    let raised = error.get("raised").and_then(Value::as_str);
    match (raised, got) {
        (Some(expected), Err(TemplateError::Raised(message))) if message == expected => None,
        (None, Err(TemplateError::Render { .. })) => None,
        (_, Ok(got)) => Some(format!(
            "transformers failed ({error}) but candor rendered:\n{got}"
        )),
        (_, Err(e)) => Some(format!(
            "transformers failed with {error}, candor with {e:?}"
        )),
    }
}

fn first_difference(a: &str, b: &str) -> usize {
    a.bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

#[test]
fn smollm2_template_from_gguf_matches_transformers() {
    check(&load("smollm2"));
}

#[test]
fn qwen3_template_from_tokenizer_config_matches_transformers() {
    check(&load("qwen3"));
}

#[test]
fn builtin_gemma_matches_transformers() {
    let fixture = load("gemma3");
    assert_eq!(
        fixture.template,
        TemplateFamily::Gemma.source(),
        "the fixture is stale: rerun scripts/gen_template_reference.py"
    );
    check(&fixture);
}

#[test]
fn builtin_llama3_matches_transformers() {
    let fixture = load("llama3");
    assert_eq!(
        fixture.template,
        TemplateFamily::Llama3.source(),
        "the fixture is stale: rerun scripts/gen_template_reference.py"
    );
    check(&fixture);
}

#[test]
fn builtin_chatml_matches_transformers() {
    let fixture = load("chatml");
    assert_eq!(
        fixture.template,
        TemplateFamily::ChatMl.source(),
        "the fixture is stale: rerun scripts/gen_template_reference.py"
    );
    check(&fixture);
}
