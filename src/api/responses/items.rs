//! A request's `input` read into [`Item`]s (each checked, each given an id), and a
//! conversation of items turned into the chat messages the model's template renders:
//! consecutive reasoning, assistant message and function call items become one assistant
//! message (`reasoning_content`, `content`, `tool_calls`), a `function_call_output` a
//! `tool` message, instructions a system message in front.

use crate::api::error::ApiError;
use crate::openai::responses::{
    new_id, Content, FunctionCall, FunctionCallOutput, Item, Message, Reasoning, Status,
    FUNCTION_CALL_ID_PREFIX, FUNCTION_CALL_OUTPUT_ID_PREFIX, MESSAGE_ID_PREFIX,
    REASONING_ID_PREFIX,
};
use serde::Serialize;
use serde_json::{Map, Value};

/// Reads `input`: a string (one user message) or an array of items.
pub fn parse(input: Option<&Value>) -> Result<Vec<Item>, ApiError> {
    match input {
        None => Err(missing("input")),
        Some(Value::String(text)) => Ok(vec![Item::Message(Message {
            id: new_id(MESSAGE_ID_PREFIX),
            role: "user".into(),
            status: Status::Completed,
            content: vec![Content::InputText { text: text.clone() }],
        })]),
        Some(Value::Array(items)) if items.is_empty() => Err(ApiError::bad_request(
            "Invalid 'input': empty array. Expected an array with minimum length 1.",
            Some("input"),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| item(v, &format!("input[{i}]")))
            .collect(),
        Some(other) => Err(wrong_type("input", "a string or an array of items", other)),
    }
}

fn item(value: &Value, at: &str) -> Result<Item, ApiError> {
    let Value::Object(fields) = value else {
        return Err(wrong_type(at, "an object", value));
    };
    // An item without `type` but with `role` is a message (EasyInputMessage).
    let kind = match fields.get("type") {
        None | Some(Value::Null) if fields.contains_key("role") => "message",
        None | Some(Value::Null) => return Err(missing(&format!("{at}.type"))),
        Some(Value::String(t)) => t.as_str(),
        Some(other) => return Err(wrong_type(&format!("{at}.type"), "a string", other)),
    };
    let id = |prefix: &str| -> Result<String, ApiError> {
        Ok(optional_string(fields, "id", at)?.unwrap_or_else(|| new_id(prefix)))
    };
    match kind {
        "message" => {
            let role = required_string(fields, "role", at)?;
            if !matches!(role.as_str(), "user" | "system" | "developer" | "assistant") {
                return Err(ApiError::bad_request(
                    format!(
                        "Invalid value: '{role}'. Supported values are: 'user', 'system', \
                         'developer' and 'assistant'."
                    ),
                    Some(&format!("{at}.role")),
                ));
            }
            let content = content(fields.get("content"), &role, &format!("{at}.content"))?;
            Ok(Item::Message(Message {
                id: id(MESSAGE_ID_PREFIX)?,
                role,
                status: Status::Completed,
                content,
            }))
        }
        "function_call" => Ok(Item::FunctionCall(FunctionCall {
            id: id(FUNCTION_CALL_ID_PREFIX)?,
            call_id: required_string(fields, "call_id", at)?,
            name: required_string(fields, "name", at)?,
            arguments: required_string(fields, "arguments", at)?,
            status: Status::Completed,
        })),
        "function_call_output" => {
            let output = match fields.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    text_parts(parts, &["input_text"], &format!("{at}.output"))?
                }
                None | Some(Value::Null) => return Err(missing(&format!("{at}.output"))),
                Some(other) => {
                    return Err(wrong_type(
                        &format!("{at}.output"),
                        "a string or an array of input_text parts",
                        other,
                    ))
                }
            };
            Ok(Item::FunctionCallOutput(FunctionCallOutput {
                id: id(FUNCTION_CALL_OUTPUT_ID_PREFIX)?,
                call_id: required_string(fields, "call_id", at)?,
                output,
                status: Status::Completed,
            }))
        }
        "reasoning" => {
            if fields
                .get("encrypted_content")
                .is_some_and(|v| !v.is_null())
            {
                return Err(ApiError::bad_request(
                    format!(
                        "'{at}.encrypted_content' is not supported: candor sends the thinking \
                         as text in 'content' and never encrypts it; send that back instead."
                    ),
                    Some(&format!("{at}.encrypted_content")),
                ));
            }
            // The thinking is `content`; a client that kept only the summary sends that.
            let text = match (fields.get("content"), fields.get("summary")) {
                (Some(Value::Array(parts)), _) if !parts.is_empty() => {
                    text_parts(parts, &["reasoning_text"], &format!("{at}.content"))?
                }
                (_, Some(Value::Array(parts))) => {
                    text_parts(parts, &["summary_text"], &format!("{at}.summary"))?
                }
                (_, None | Some(Value::Null)) => String::new(),
                (_, Some(other)) => {
                    return Err(wrong_type(&format!("{at}.summary"), "an array", other))
                }
            };
            Ok(Item::Reasoning(Reasoning {
                id: id(REASONING_ID_PREFIX)?,
                status: Status::Completed,
                summary: Vec::new(),
                content: vec![Content::ReasoningText { text }],
            }))
        }
        "item_reference" => Err(unsupported(
            &format!("{at}.type"),
            "Items of type 'item_reference' are not supported: send the item itself, or \
             continue a stored response with 'previous_response_id'.",
        )),
        other => Err(unsupported(
            &format!("{at}.type"),
            &format!(
                "Items of type '{other}' are not supported. Supported types are: 'message', \
                 'function_call', 'function_call_output' and 'reasoning'."
            ),
        )),
    }
}

/// A message's content: a string or a list of text parts (`input_text`; an assistant's
/// `output_text` too).
fn content(value: Option<&Value>, role: &str, at: &str) -> Result<Vec<Content>, ApiError> {
    let assistant = role == "assistant";
    let wrap = |text: String| {
        if assistant {
            Content::output_text(text)
        } else {
            Content::InputText { text }
        }
    };
    match value {
        Some(Value::String(s)) => Ok(vec![wrap(s.clone())]),
        Some(Value::Array(parts)) if parts.is_empty() => Err(ApiError::bad_request(
            format!("Invalid '{at}': empty array. Expected an array with minimum length 1."),
            Some(at),
        )),
        Some(Value::Array(parts)) => {
            let kinds: &[&str] = if assistant {
                &["output_text", "input_text"]
            } else {
                &["input_text"]
            };
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| Ok(wrap(text_part(p, kinds, &format!("{at}[{j}]"))?)))
                .collect()
        }
        None | Some(Value::Null) => Err(missing(at)),
        Some(other) => Err(wrong_type(
            at,
            "a string or an array of content parts",
            other,
        )),
    }
}

/// The text of parts of the given types, joined.
fn text_parts(parts: &[Value], kinds: &[&str], at: &str) -> Result<String, ApiError> {
    let mut text = String::new();
    for (j, p) in parts.iter().enumerate() {
        text.push_str(&text_part(p, kinds, &format!("{at}[{j}]"))?);
    }
    Ok(text)
}

fn text_part(part: &Value, kinds: &[&str], at: &str) -> Result<String, ApiError> {
    let Value::Object(fields) = part else {
        return Err(wrong_type(at, "an object", part));
    };
    let kind = required_string(fields, "type", at)?;
    if !kinds.contains(&kind.as_str()) {
        let names: Vec<String> = kinds.iter().map(|k| format!("'{k}'")).collect();
        return Err(unsupported(
            &format!("{at}.type"),
            &format!(
                "Content parts of type '{kind}' are not supported here; only {} parts are.",
                names.join(" and ")
            ),
        ));
    }
    required_string(fields, "text", at)
}

fn required_string(fields: &Map<String, Value>, name: &str, at: &str) -> Result<String, ApiError> {
    optional_string(fields, name, at)?.ok_or_else(|| missing(&format!("{at}.{name}")))
}

fn optional_string(
    fields: &Map<String, Value>,
    name: &str,
    at: &str,
) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(&format!("{at}.{name}"), "a string", other)),
    }
}

pub fn missing(param: &str) -> ApiError {
    let mut e = ApiError::bad_request(
        format!("Missing required parameter: '{param}'."),
        Some(param),
    );
    e.code = Some("missing_required_parameter".into());
    e
}

pub fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let mut e = ApiError::bad_request(
        format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        Some(param),
    );
    e.code = Some("invalid_type".into());
    e
}

pub fn unsupported(param: &str, message: &str) -> ApiError {
    let mut e = ApiError::bad_request(message, Some(param));
    e.code = Some("unsupported_parameter".into());
    e
}

// ---------------------------------------------------------------------------------------
// Items to chat messages
// ---------------------------------------------------------------------------------------

/// A chat message as the template reads it (what `messages` of a chat request holds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct ChatMessage {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ChatToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ChatToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ChatFunction {
    name: String,
    arguments: String,
}

/// The chat messages of a conversation, `instructions` first as a system message.
pub fn to_messages(instructions: Option<&str>, items: &[Item]) -> Vec<Value> {
    let mut out: Vec<ChatMessage> = Vec::new();
    if let Some(text) = instructions {
        out.push(ChatMessage {
            role: "system",
            content: Some(text.to_string()),
            ..Default::default()
        });
    }
    // The assistant turn being gathered from consecutive items.
    let mut turn: Option<ChatMessage> = None;
    for item in items {
        match item {
            Item::Message(m) if m.role == "assistant" => {
                if turn.as_ref().is_some_and(|t| !t.tool_calls.is_empty()) {
                    // Text after calls starts a new assistant message.
                    out.extend(turn.take());
                }
                let t = turn.get_or_insert_with(assistant);
                let text: String = m.content.iter().map(Content::text).collect();
                t.content.get_or_insert_with(String::new).push_str(&text);
            }
            Item::Reasoning(r) => {
                if turn
                    .as_ref()
                    .is_some_and(|t| t.content.is_some() || !t.tool_calls.is_empty())
                {
                    out.extend(turn.take());
                }
                let t = turn.get_or_insert_with(assistant);
                let text: String = r.content.iter().map(Content::text).collect();
                t.reasoning_content
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            Item::FunctionCall(c) => {
                let t = turn.get_or_insert_with(assistant);
                t.tool_calls.push(ChatToolCall {
                    id: c.call_id.clone(),
                    kind: "function",
                    function: ChatFunction {
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    },
                });
            }
            Item::Message(m) => {
                out.extend(turn.take());
                out.push(ChatMessage {
                    role: match m.role.as_str() {
                        "system" => "system",
                        "developer" => "developer",
                        _ => "user",
                    },
                    content: Some(m.content.iter().map(Content::text).collect()),
                    ..Default::default()
                });
            }
            Item::FunctionCallOutput(o) => {
                out.extend(turn.take());
                out.push(ChatMessage {
                    role: "tool",
                    content: Some(o.output.clone()),
                    tool_call_id: Some(o.call_id.clone()),
                    ..Default::default()
                });
            }
        }
    }
    out.extend(turn);
    out.into_iter()
        .map(|m| serde_json::to_value(m).expect("a chat message serializes"))
        .collect()
}

fn assistant() -> ChatMessage {
    ChatMessage {
        role: "assistant",
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(v: Value) -> Vec<Item> {
        parse(Some(&v)).unwrap()
    }

    #[test]
    fn a_string_is_one_user_message() {
        let messages = to_messages(Some("Be brief."), &items(json!("Hi")));
        assert_eq!(
            messages,
            vec![
                json!({"role": "system", "content": "Be brief."}),
                json!({"role": "user", "content": "Hi"})
            ]
        );
    }

    #[test]
    fn a_tool_loop_becomes_assistant_calls_and_tool_messages() {
        let conversation = items(json!([
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [],
             "content": [{"type": "reasoning_text", "text": "Call it."}]},
            {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{\"c\":1}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "ok"}]},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]},
            {"role": "developer", "content": "again"}
        ]));
        assert_eq!(
            to_messages(None, &conversation),
            vec![
                json!({"role": "user", "content": "Weather?"}),
                json!({"role": "assistant", "reasoning_content": "Call it.", "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "w", "arguments": "{\"c\":1}"}}]}),
                json!({"role": "tool", "content": "sunny", "tool_call_id": "call_1"}),
                json!({"role": "assistant", "content": "Sunny.", "reasoning_content": "ok"}),
                json!({"role": "developer", "content": "again"}),
            ]
        );
    }

    #[test]
    fn bad_items_name_their_field() {
        for (input, param) in [
            (json!([]), "input"),
            (json!(5), "input"),
            (json!([{"type": "web_search_call"}]), "input[0].type"),
            (json!([{"content": "x"}]), "input[0].type"),
            (json!([{"role": "tool", "content": "x"}]), "input[0].role"),
            (json!([{"role": "user"}]), "input[0].content"),
            (
                json!([{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]),
                "input[0].content[0].type",
            ),
            (
                json!([{"role": "user", "content": "hi"},
                        {"type": "function_call_output", "output": "x"}]),
                "input[1].call_id",
            ),
            (
                json!([{"type": "function_call", "call_id": "c", "arguments": "{}"}]),
                "input[0].name",
            ),
            (
                json!([{"type": "reasoning", "summary": [], "encrypted_content": "x"}]),
                "input[0].encrypted_content",
            ),
            (
                json!([{"type": "item_reference", "id": "msg_1"}]),
                "input[0].type",
            ),
        ] {
            let e = parse(Some(&input)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{input}: {e}");
            assert_eq!(e.status, 400);
        }
    }
}
