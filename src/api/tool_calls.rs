//! Tool calls on the chat endpoint: the tools go to the model through its own chat
//! template (the `tools` variable); a forced call (`tool_choice` `required` or a named
//! function) constrains the answer to the call syntax of the model's format, and so
//! does a call the model opens under `auto` when a tool is `strict`; the answer text is
//! split into content and calls by [`crate::tools::parser`], whole for a non-streamed
//! answer and as it streams for a stream.

use crate::api::error::ApiError;
use crate::constraint::{Constraint, Grammar};
use crate::loaded_model::LoadedModel;
use crate::openai;
use crate::tools::parser::{ToolCallParser, ToolDelta};
use crate::tools::{ToolChoice, ToolFormat, ToolRequest};
use serde_json::Value;

/// How a request's answer is read for calls.
#[derive(Debug, Clone, Copy)]
pub struct ToolPlan {
    pub format: ToolFormat,
    pub parallel: bool,
    /// A grammar writes the calls, so they stream as written.
    pub constrained: bool,
}

/// Puts the calls of earlier assistant turns into the shape templates read; returns
/// how to read the answer (None: no tools, or `tool_choice: "none"`, which shows the
/// model no tools) and the constraint on its calls (a forced call, or `auto` with a
/// `strict` tool).
pub fn prepare(
    lm: &LoadedModel,
    tools: Option<&ToolRequest>,
    messages: &mut [Value],
) -> Result<(Option<ToolPlan>, Option<Constraint>), ApiError> {
    for m in messages.iter_mut() {
        arguments_as_objects(m);
    }
    let Some(tools) = tools.filter(|t| t.choice != ToolChoice::None) else {
        return Ok((None, None));
    };
    let format = lm.tool_format.ok_or_else(|| {
        ApiError::bad_request(
            "This model's chat template does not describe tool calls, so candor cannot tell \
             the model about 'tools' nor read its calls. Start the server with \
             --tool-call-format (hermes, llama3-json, mistral or deepseek) or a \
             --chat-template that handles tools.",
            Some("tools"),
        )
    })?;
    let forced = tools.forced();
    let strict = tools.tools.iter().any(|t| t.strict);
    let mut plan = ToolPlan {
        format,
        parallel: tools.parallel,
        constrained: false,
    };
    // Under `auto`, only a strict tool asks for the grammar.
    if forced.is_none() && !strict {
        return Ok((Some(plan), None));
    }
    let tok = &lm.tokenizer;
    let special = |marker: &str| tok.token_to_id(marker).filter(|&id| tok.is_special(id));
    let lark = match &forced {
        // A named function is called once; `required` may call several tools.
        Some(forced) => {
            let several = tools.parallel && tools.choice == ToolChoice::Required;
            format.call_grammar(forced, true, several, special)
        }
        None => format.call_grammar(&tools.tools, false, tools.parallel, special),
    };
    let grammars = lm
        .grammars()
        .map_err(|e| ApiError::internal(format!("forced tool calls are unavailable: {e}")))?;
    let constraint = grammars.compile(&Grammar::Lark(lark)).map_err(|e| {
        ApiError::bad_request(
            format!("The tools' parameters cannot be used to force a call: {e}"),
            Some("tools"),
        )
    })?;
    plan.constrained = true;
    Ok((Some(plan), Some(constraint)))
}

/// OpenAI sends a call's `arguments` as JSON text; chat templates (Qwen 2.5, Llama 3.1)
/// write `arguments | tojson` and expect an object, as transformers' do.
fn arguments_as_objects(message: &mut Value) {
    let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) else {
        return;
    };
    for call in calls {
        let Some(f) = call.get_mut("function").and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(Value::String(text)) = f.get("arguments") {
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
                f.insert("arguments".into(), v);
            }
        }
    }
}

fn call(name: String, arguments: String) -> openai::ToolCall {
    openai::ToolCall {
        id: openai::new_tool_call_id(),
        call_type: openai::FUNCTION,
        function: openai::FunctionCall { name, arguments },
    }
}

/// A whole answer: its content (None when it is only calls) and its calls.
pub fn split(plan: ToolPlan, text: &str) -> (Option<String>, Vec<openai::ToolCall>) {
    let mut parser = ToolCallParser::new(plan.format, plan.parallel, plan.constrained);
    let mut pieces = parser.push(text);
    pieces.extend(parser.finish());
    let mut content = String::new();
    let mut calls: Vec<openai::ToolCall> = Vec::new();
    for p in pieces {
        match p {
            ToolDelta::Text(t) => content.push_str(&t),
            ToolDelta::Start { name, .. } => calls.push(call(name, String::new())),
            ToolDelta::Arguments { index, text } => calls[index].function.arguments.push_str(&text),
        }
    }
    let content = (!content.is_empty() || calls.is_empty()).then_some(content);
    (content, calls)
}

/// What a streamed answer's text becomes: content, or the pieces of a call.
pub enum StreamPiece {
    Content(String),
    Call(openai::ToolCallDelta),
}

/// One streamed choice's calls.
pub struct ToolStream {
    parser: ToolCallParser,
}

impl ToolStream {
    pub fn new(plan: ToolPlan) -> Self {
        Self {
            parser: ToolCallParser::new(plan.format, plan.parallel, plan.constrained),
        }
    }

    /// Calls found so far.
    pub fn calls(&self) -> usize {
        self.parser.calls()
    }

    pub fn push(&mut self, text: &str) -> Vec<StreamPiece> {
        let pieces = self.parser.push(text);
        Self::shape(pieces)
    }

    pub fn finish(&mut self) -> Vec<StreamPiece> {
        let pieces = self.parser.finish();
        Self::shape(pieces)
    }

    /// Each call as OpenAI streams one: `id`, `type` and the name first (with empty
    /// arguments), then the pieces of its arguments.
    fn shape(pieces: Vec<ToolDelta>) -> Vec<StreamPiece> {
        pieces
            .into_iter()
            .map(|p| match p {
                ToolDelta::Text(t) => StreamPiece::Content(t),
                ToolDelta::Start { index, name } => {
                    let head = call(name, String::new());
                    StreamPiece::Call(openai::ToolCallDelta {
                        index,
                        id: Some(head.id),
                        call_type: Some(openai::FUNCTION),
                        function: openai::FunctionCallDelta {
                            name: Some(head.function.name),
                            arguments: Some(String::new()),
                        },
                    })
                }
                ToolDelta::Arguments { index, text } => StreamPiece::Call(openai::ToolCallDelta {
                    index,
                    id: None,
                    call_type: None,
                    function: openai::FunctionCallDelta {
                        name: None,
                        arguments: Some(text),
                    },
                }),
            })
            .collect()
    }
}
