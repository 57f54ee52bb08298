use super::*;

/// A choice's answer as it reads once joined: text, and whole calls.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Call(usize, String, String),
}

fn call(index: usize, name: &str, arguments: &str) -> Piece {
    Piece::Call(index, name.into(), arguments.into())
}

fn text(t: &str) -> Piece {
    Piece::Text(t.into())
}

/// Everything the parser gives for `answer` pushed whole.
fn whole_with(format: ToolFormat, answer: &str, streamed: bool) -> Vec<Piece> {
    let mut p = ToolCallParser::new(format, true, streamed);
    let mut out = p.push(answer);
    out.extend(p.finish());
    join(out)
}

/// The same, pushed in pieces of `size` characters (a call split across tokens).
fn pieces(format: ToolFormat, answer: &str, size: usize, streamed: bool) -> Vec<Piece> {
    let mut p = ToolCallParser::new(format, true, streamed);
    let chars: Vec<char> = answer.chars().collect();
    let mut out = Vec::new();
    for chunk in chars.chunks(size) {
        out.extend(p.push(&chunk.iter().collect::<String>()));
    }
    out.extend(p.finish());
    join(out)
}

/// Neighbouring text joined, each call's arguments joined (and checked to follow its
/// start).
fn join(out: Vec<ToolDelta>) -> Vec<Piece> {
    let mut joined: Vec<Piece> = Vec::new();
    for d in out {
        match (joined.last_mut(), d) {
            (Some(Piece::Text(a)), ToolDelta::Text(b)) => a.push_str(&b),
            (_, ToolDelta::Text(b)) => joined.push(Piece::Text(b)),
            (_, ToolDelta::Start { index, name }) => {
                joined.push(Piece::Call(index, name, String::new()))
            }
            (Some(Piece::Call(i, _, args)), ToolDelta::Arguments { index, text }) => {
                assert_eq!(*i, index, "arguments of call {index} after call {i}");
                args.push_str(&text);
            }
            (_, d) => panic!("{d:?} before its call's start"),
        }
    }
    joined
}

fn every_split(format: ToolFormat, answer: &str, want: &[Piece]) {
    every_split_with(format, answer, want, false);
}

fn every_split_with(format: ToolFormat, answer: &str, want: &[Piece], streamed: bool) {
    assert_eq!(whole_with(format, answer, streamed), want, "whole");
    for size in [1, 2, 3, 5, 7] {
        assert_eq!(
            pieces(format, answer, size, streamed),
            want,
            "pieces of {size}"
        );
    }
}

#[test]
fn hermes_as_qwen3_writes_it() {
    // What Qwen3's template renders for an assistant turn with two calls.
    let answer = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>";
    every_split(
        ToolFormat::Hermes,
        answer,
        &[
            text("Let me check.\n"),
            call(0, "get_weather", r#"{"city":"Paris"}"#),
            call(1, "get_time", r#"{"tz":"CET"}"#),
        ],
    );
}

#[test]
fn text_that_only_looks_like_a_marker_is_text() {
    every_split(
        ToolFormat::Hermes,
        "Use <tool> or <tool_cal tags.",
        &[text("Use <tool> or <tool_cal tags.")],
    );
}

#[test]
fn malformed_or_unfinished_calls_are_text() {
    let bad = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call>";
    every_split(ToolFormat::Hermes, bad, &[text(bad)]);
    let cut = "Sure.<tool_call>\n{\"name\": \"f\", \"argu";
    every_split(ToolFormat::Hermes, cut, &[text(cut)]);
}

#[test]
fn one_call_only_when_parallel_calls_are_off() {
    let answer = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>";
    let mut p = ToolCallParser::new(ToolFormat::Hermes, false, false);
    let mut out = p.push(answer);
    out.extend(p.finish());
    assert_eq!(
        join(out),
        vec![
            call(0, "a", "{}"),
            text("<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>")
        ]
    );
}

#[test]
fn llama3_json_with_and_without_the_python_tag() {
    every_split(
        ToolFormat::Llama3Json,
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        &[call(0, "get_weather", r#"{"city":"Paris"}"#)],
    );
    every_split(
        ToolFormat::Llama3Json,
        "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": 1}}",
        &[call(0, "a", "{}"), call(1, "b", r#"{"k":1}"#)],
    );
    // An answer that is not a JSON object is text, braces later on included.
    every_split(
        ToolFormat::Llama3Json,
        "The set {1, 2} is small.",
        &[text("The set {1, 2} is small.")],
    );
    every_split(
        ToolFormat::Llama3Json,
        "{\"not\": \"a call\"}",
        &[text("{\"not\": \"a call\"}")],
    );
}

#[test]
fn mistral_calls_are_a_list() {
    every_split(
        ToolFormat::Mistral,
        "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]",
        &[call(0, "a", r#"{"x":1}"#), call(1, "b", "{}")],
    );
}

#[test]
fn deepseek_calls_with_their_markers() {
    let answer = format!(
        "I will look it up.{DS_CALLS_BEGIN}{DS_CALL_BEGIN}function{DS_SEP}get_weather\n```json\n{{\"city\": \"Paris\"}}\n```{DS_CALL_END}\n{DS_CALL_BEGIN}function{DS_SEP}get_time\n```json\n{{}}\n```{DS_CALL_END}{DS_CALLS_END}"
    );
    every_split(
        ToolFormat::DeepSeek,
        &answer,
        &[
            text("I will look it up."),
            call(0, "get_weather", r#"{"city": "Paris"}"#),
            call(1, "get_time", "{}"),
        ],
    );
}

#[test]
fn formats_are_read_from_templates() {
    assert_eq!(
        ToolFormat::detect("{{- '<tool_call>\\n' }}"),
        Some(ToolFormat::Hermes)
    );
    assert_eq!(
        ToolFormat::detect(&format!("{{{{'{DS_CALLS_BEGIN}'}}}}")),
        Some(ToolFormat::DeepSeek)
    );
    assert_eq!(
        ToolFormat::detect("{{ '[TOOL_CALLS]' }}"),
        Some(ToolFormat::Mistral)
    );
    assert_eq!(
        ToolFormat::detect("{%- if builtin_tools %}<|python_tag|>"),
        Some(ToolFormat::Llama3Json)
    );
    assert_eq!(ToolFormat::detect("{{ messages }}"), None);
}

#[test]
fn constrained_calls_stream_their_arguments_as_written() {
    // As the grammar makes Qwen3 write them (Python's separators), braces in strings.
    let answer = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"tags\": [\"a}\", \"b\\\"]\"]}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
    every_split_with(
        ToolFormat::Hermes,
        answer,
        &[
            text("Let me check.\n"),
            call(
                0,
                "get_weather",
                r#"{"city": "Paris", "tags": ["a}", "b\"]"]}"#,
            ),
            call(1, "get_time", "{}"),
        ],
        true,
    );
    // The name comes out as soon as it is complete, the arguments as they are written.
    let mut p = ToolCallParser::new(ToolFormat::Hermes, true, true);
    assert_eq!(p.push("<tool_call>\n{\"name\": \"get_wea"), vec![]);
    assert_eq!(
        p.push("ther\", \"arguments\": {\"ci"),
        vec![
            ToolDelta::Start {
                index: 0,
                name: "get_weather".into()
            },
            ToolDelta::Arguments {
                index: 0,
                text: "{\"ci".into()
            }
        ]
    );
    assert_eq!(
        p.push("ty\": 1}}\n</tool"),
        vec![ToolDelta::Arguments {
            index: 0,
            text: "ty\": 1}".into()
        }]
    );
    assert_eq!(p.push("_call>"), vec![]);
    assert_eq!(p.finish(), vec![]);
}

#[test]
fn constrained_calls_in_every_format() {
    every_split_with(
        ToolFormat::Mistral,
        "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": 2}]}}, {\"name\": \"b\", \"arguments\": {}}]",
        &[call(0, "a", r#"{"x": [1, {"y": 2}]}"#), call(1, "b", "{}")],
        true,
    );
    every_split_with(
        ToolFormat::Llama3Json,
        "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": 1}}",
        &[call(0, "a", "{}"), call(1, "b", r#"{"k": 1}"#)],
        true,
    );
    let answer = format!(
        "{DS_CALLS_BEGIN}{DS_CALL_BEGIN}function{DS_SEP}get_weather\n```json\n{{\"city\": \"Paris\"}}\n```{DS_CALL_END}\n{DS_CALL_BEGIN}function{DS_SEP}get_time\n```json\n{{}}\n```{DS_CALL_END}{DS_CALLS_END}"
    );
    every_split_with(
        ToolFormat::DeepSeek,
        &answer,
        &[
            call(0, "get_weather", r#"{"city": "Paris"}"#),
            call(1, "get_time", "{}"),
        ],
        true,
    );
}

#[test]
fn a_constrained_call_cut_by_the_token_limit_keeps_what_it_had() {
    every_split_with(
        ToolFormat::Hermes,
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": \"ab",
        &[call(0, "f", r#"{"x": "ab"#)],
        true,
    );
}

#[test]
fn a_call_written_otherwise_is_read_whole_even_when_streamed() {
    // Keys in another order: not the grammar's shape, so checked whole.
    every_split_with(
        ToolFormat::Hermes,
        "<tool_call>{\"arguments\": {\"x\": 1}, \"name\": \"f\"}</tool_call>",
        &[call(0, "f", r#"{"x":1}"#)],
        true,
    );
    let bad = "<tool_call>{\"arguments\": {\"x\": }, \"name\": \"f\"}</tool_call>";
    every_split_with(ToolFormat::Hermes, bad, &[text(bad)], true);
}
