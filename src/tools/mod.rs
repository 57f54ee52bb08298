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

    /// A Lark grammar (llguidance's dialect) for the calls of one answer in this format.
    /// `forced`: the answer is one or more calls (one when not `parallel`), each
    /// call's arguments valid for its tool. Otherwise (`auto` with a `strict` tool) the
    /// answer is free text until the model opens a call; from there the call must be
    /// well-formed, with a `strict` tool's arguments valid for its schema and any other
    /// tool's a JSON object. `special` spells a marker that is a special token of the
    /// vocabulary (`<[id]>`), else None and the marker is matched as text.
    pub fn call_grammar(
        &self,
        tools: &[ToolDef],
        forced: bool,
        parallel: bool,
        special: impl Fn(&str) -> Option<u32>,
    ) -> String {
        let lit = |marker: &str| match special(marker) {
            Some(id) => format!("<[{id}]>"),
            None => quote(marker),
        };
        let parameters = |t: &ToolDef| {
            if forced || t.strict {
                t.parameters.clone()
            } else {
                json!({"type": "object"})
            }
        };
        let call = |args_key: &str| {
            let one: Vec<Value> = tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "object",
                        "properties": {"name": {"const": t.name}, args_key: parameters(t)},
                        "required": ["name", args_key],
                        "additionalProperties": false
                    })
                })
                .collect();
            match one.len() {
                1 => one.into_iter().next().expect("one"),
                _ => json!({"anyOf": one}),
            }
        };
        // After a first call: more of them, or none when only one is allowed.
        let more = |next: &str| match parallel {
            true => format!(" ({next})*"),
            false => String::new(),
        };
        let repeat = if parallel { "*" } else { "?" };
        // The answer's free text before a call: any text, then the marker that opens
        // the call. A marker that is a special token cannot be spelled by text; one
        // that is text ends the text at its first appearance (a lazy lexeme).
        let open_after_text = |marker: &str| match special(marker) {
            Some(id) => format!("TEXT? <[{id}]>"),
            None => "head".to_string(),
        };
        let head = |marker: &str| match special(marker) {
            Some(_) => String::new(),
            None => format!("\nhead[lazy]: /(?s:.*){}/", regex_escape(marker)),
        };
        const TEXT: &str = "\nTEXT: /(?s:.+)/";
        match self {
            ToolFormat::Hermes => {
                let one = format!(
                    "\"\\n\" call \"\\n\" {}\ncall: %json {}",
                    lit("</tool_call>"),
                    separated_json(call("arguments"))
                );
                let open = lit("<tool_call>");
                if forced {
                    format!(
                        "start: {open} one{}\none: {one}",
                        more(&format!("\"\\n\" {open} one"))
                    )
                } else {
                    format!(
                        "start: ({} one){repeat} TEXT?\none: {one}{TEXT}{}",
                        open_after_text("<tool_call>"),
                        head("<tool_call>")
                    )
                }
            }
            ToolFormat::Mistral => {
                let mut list = json!({"type": "array", "items": call("arguments"), "minItems": 1});
                if !parallel {
                    list["maxItems"] = json!(1);
                }
                let list = format!("list: %json {}", separated_json(list));
                if forced {
                    format!("start: {} list\n{list}", lit("[TOOL_CALLS]"))
                } else {
                    format!(
                        "start: ({} list)? TEXT?\n{list}{TEXT}{}",
                        open_after_text("[TOOL_CALLS]"),
                        head("[TOOL_CALLS]")
                    )
                }
            }
            ToolFormat::Llama3Json => {
                let calls = format!(
                    "calls: call{}\ncall: %json {}",
                    more("\"; \" call"),
                    separated_json(call("parameters"))
                );
                if forced {
                    format!("start: calls\n{calls}")
                } else {
                    // An answer that opens with `{` is a call; any other is text.
                    format!("start: calls | NOT_A_CALL\n{calls}\nNOT_A_CALL: /[^{{](?s:.*)/")
                }
            }
            ToolFormat::DeepSeek => {
                let alternatives: Vec<String> = tools
                    .iter()
                    .map(|t| {
                        format!(
                            "{} \"\\n```json\\n\" %json {} \"\\n```\"",
                            quote(&t.name),
                            separated_json(parameters(t))
                        )
                    })
                    .collect();
                let list = format!(
                    "list: one{} {}\none: {} \"function\" {} call {}\ncall: {}",
                    more("\"\\n\"? one"),
                    lit(DS_CALLS_END),
                    lit(DS_CALL_BEGIN),
                    lit(DS_SEP),
                    lit(DS_CALL_END),
                    alternatives.join(" | ")
                );
                if forced {
                    format!("start: {} list\n{list}", lit(DS_CALLS_BEGIN))
                } else {
                    format!(
                        "start: ({} list)? TEXT?\n{list}{TEXT}{}",
                        open_after_text(DS_CALLS_BEGIN),
                        head(DS_CALLS_BEGIN)
                    )
                }
            }
        }
    }
}

/// A Lark string literal.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// `text` matched literally in a Lark `/regex/`.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A schema as JSON text, written by the grammar with the separators models are
/// trained on (Python's `json.dumps`: `", "` and `": "`) and no other free whitespace,
/// so that a streamed call's text is predictable.
fn separated_json(mut schema: Value) -> String {
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance").or_insert_with(
            || json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}),
        );
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
