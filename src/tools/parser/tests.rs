use super::*;

fn call(index: usize, name: &str, arguments: &str) -> ToolDelta {
    ToolDelta::Call {
        index,
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn text(t: &str) -> ToolDelta {
    ToolDelta::Text(t.into())
}

/// Everything the parser gives for `answer` pushed whole, with neighbouring text joined.
fn whole(format: ToolFormat, answer: &str) -> Vec<ToolDelta> {
    let mut p = ToolCallParser::new(format, true);
    let mut out = p.push(answer);
    out.extend(p.finish());
    join(out)
}

/// The same, pushed in pieces of `size` characters (a call split across tokens).
fn pieces(format: ToolFormat, answer: &str, size: usize) -> Vec<ToolDelta> {
    let mut p = ToolCallParser::new(format, true);
    let chars: Vec<char> = answer.chars().collect();
    let mut out = Vec::new();
    for chunk in chars.chunks(size) {
        out.extend(p.push(&chunk.iter().collect::<String>()));
    }
    out.extend(p.finish());
    join(out)
}

fn join(out: Vec<ToolDelta>) -> Vec<ToolDelta> {
    let mut joined = Vec::new();
    for d in out {
        match (joined.last_mut(), d) {
            (Some(ToolDelta::Text(a)), ToolDelta::Text(b)) => a.push_str(&b),
            (_, d) => joined.push(d),
        }
    }
    joined
}

fn every_split(format: ToolFormat, answer: &str, want: &[ToolDelta]) {
    assert_eq!(whole(format, answer), want, "whole");
    for size in [1, 2, 3, 5, 7] {
        assert_eq!(pieces(format, answer, size), want, "pieces of {size}");
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
    let mut p = ToolCallParser::new(ToolFormat::Hermes, false);
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
