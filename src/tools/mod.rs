//! Tool calling: the request's tools and `tool_choice`, the model's call format (read
//! from its chat template, or `--tool-call-format`), the grammar that forces a call,
//! and ([`parser`]) the state machine that finds calls in the answer text.
//!
//! Formats: Hermes (Qwen 2.5, Qwen 3, Hermes: `<tool_call>{"name", "arguments"}</tool_call>`),
//! Llama 3.x JSON (`{"name", "parameters"}`, with or without `<|python_tag|>`), Mistral
//! (`[TOOL_CALLS][{"name", "arguments"}]`) and DeepSeek R1 / V3
//! (`<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` and the
//! arguments in a fenced JSON block).

pub mod parser;

use serde_json::{json, Value};
use std::fmt;
use std::str::FromStr;

/// How a model writes its tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    Hermes,
    Llama3Json,
    Mistral,
    DeepSeek,
}

/// DeepSeek's markers (full-width bars and `▁`, as its tokenizer spells them).
pub const DS_CALLS_BEGIN: &str = "<\u{ff5c}tool\u{2581}calls\u{2581}begin\u{ff5c}>";
pub const DS_CALLS_END: &str = "<\u{ff5c}tool\u{2581}calls\u{2581}end\u{ff5c}>";
pub const DS_CALL_BEGIN: &str = "<\u{ff5c}tool\u{2581}call\u{2581}begin\u{ff5c}>";
pub const DS_CALL_END: &str = "<\u{ff5c}tool\u{2581}call\u{2581}end\u{ff5c}>";
pub const DS_SEP: &str = "<\u{ff5c}tool\u{2581}sep\u{ff5c}>";

impl ToolFormat {
    /// The names `--tool-call-format` takes.
    pub const NAMES: [&'static str; 4] = ["hermes", "llama3-json", "mistral", "deepseek"];

    /// The format a chat template writes calls in, as llama.cpp reads it: by the markers
    /// the template itself uses. None: the template knows no tools.
    pub fn detect(template: &str) -> Option<ToolFormat> {
        if template.contains(DS_CALLS_BEGIN) || template.contains("tool\\u2581calls\\u2581begin") {
            Some(ToolFormat::DeepSeek)
        } else if template.contains("<tool_call>") {
            Some(ToolFormat::Hermes)
        } else if template.contains("[TOOL_CALLS]") {
            Some(ToolFormat::Mistral)
        } else if template.contains("<|python_tag|>") || template.contains("ipython") {
            Some(ToolFormat::Llama3Json)
        } else {
            None
        }
    }

    /// A Lark grammar (llguidance's dialect) for exactly one call of one of `tools`, in
    /// this format. `special` spells a marker that is a special token of the vocabulary
    /// (`<[id]>`), else None and the marker is matched as text.
    pub fn call_grammar(&self, tools: &[ToolDef], special: impl Fn(&str) -> Option<u32>) -> String {
        let lit = |marker: &str| match special(marker) {
            Some(id) => format!("<[{id}]>"),
            None => quote(marker),
        };
        let call = |args_key: &str| {
            let one: Vec<Value> = tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "object",
                        "properties": {"name": {"const": t.name}, args_key: t.parameters},
                        "required": ["name", args_key],
                        "additionalProperties": false
                    })
                })
                .collect();
            let schema = match one.len() {
                1 => one.into_iter().next().expect("one"),
                _ => json!({"anyOf": one}),
            };
            compact_json(schema)
        };
        match self {
            ToolFormat::Hermes => format!(
                "start: {} \"\\n\" call \"\\n\" {}\ncall: %json {}",
                lit("<tool_call>"),
                lit("</tool_call>"),
                call("arguments")
            ),
            ToolFormat::Mistral => format!(
                "start: {} \"[\" call \"]\"\ncall: %json {}",
                lit("[TOOL_CALLS]"),
                call("arguments")
            ),
            ToolFormat::Llama3Json => format!("start: call\ncall: %json {}", call("parameters")),
            ToolFormat::DeepSeek => {
                let alternatives: Vec<String> = tools
                    .iter()
                    .map(|t| {
                        format!(
                            "{} \"\\n```json\\n\" %json {} \"\\n```\"",
                            quote(&t.name),
                            compact_json(t.parameters.clone())
                        )
                    })
                    .collect();
                format!(
                    "start: {} {} \"function\" {} call {} {}\ncall: {}",
                    lit(DS_CALLS_BEGIN),
                    lit(DS_CALL_BEGIN),
                    lit(DS_SEP),
                    lit(DS_CALL_END),
                    lit(DS_CALLS_END),
                    alternatives.join(" | ")
                )
            }
        }
    }
}

/// A Lark string literal.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A schema as JSON text, written without free whitespace by the grammar (as
/// structured output's JSON).
fn compact_json(mut schema: Value) -> String {
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance")
            .or_insert_with(|| json!({"whitespace_flexible": false}));
    }
    schema.to_string()
}

impl FromStr for ToolFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hermes" => Ok(ToolFormat::Hermes),
            "llama3-json" => Ok(ToolFormat::Llama3Json),
            "mistral" => Ok(ToolFormat::Mistral),
            "deepseek" => Ok(ToolFormat::DeepSeek),
            _ => Err(format!(
                "unknown tool-call format `{s}` (one of {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for ToolFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::Llama3Json => "llama3-json",
            ToolFormat::Mistral => "mistral",
            ToolFormat::DeepSeek => "deepseek",
        })
    }
}

/// One function a request offers.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    /// Its JSON schema (an empty object schema when the request gave none).
    pub parameters: Value,
    pub strict: bool,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (the default when tools are given).
    Auto,
    /// No call: the tools are not shown to the model.
    None,
    /// At least one call: the answer is forced into a call of one of the tools.
    Required,
    /// A call of this function.
    Named(String),
}

/// What a chat request says about tools.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    /// The `tools` array as sent, for the chat template's `tools` variable.
    pub raw: Vec<Value>,
    pub tools: Vec<ToolDef>,
    pub choice: ToolChoice,
    /// At most one call when false.
    pub parallel: bool,
}

impl ToolRequest {
    /// The tools a forced call may use: all of them, or the named one.
    pub fn forced(&self) -> Option<Vec<ToolDef>> {
        match &self.choice {
            ToolChoice::Required => Some(self.tools.clone()),
            ToolChoice::Named(n) => Some(
                self.tools
                    .iter()
                    .filter(|t| &t.name == n)
                    .cloned()
                    .collect(),
            ),
            ToolChoice::Auto | ToolChoice::None => None,
        }
    }
}
