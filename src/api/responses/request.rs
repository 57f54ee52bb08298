//! A Responses request read into the chat request that candor validates and runs
//! ([`crate::validate::validate_chat`], `api::chat::build`): input items to messages,
//! `max_output_tokens` to `max_completion_tokens`, `reasoning.effort` to
//! `reasoning_effort`, flat function tools to chat's nested ones, `text.format` to
//! `response_format`. What only the Responses API has (store, metadata, the fields candor
//! cannot honour, refused by name) is checked here, and errors of the chat path are
//! renamed to the Responses API's fields.

use super::items::{self, missing, unsupported, wrong_type};
use crate::api::error::ApiError;
use crate::openai::responses::{
    CreateResponseRequest, FunctionTool, Item, ReasoningSettings, TextFormat, TextSettings,
    ToolChoice,
};
use crate::openai::{ChatCompletionRequest, CommonRequestFields};
use serde::Serialize;
use serde_json::{Map, Value};

/// Most `metadata` entries, and the longest key and value, as OpenAI's.
const METADATA_MAX: (usize, usize, usize) = (16, 64, 512);

/// What a response echoes of its request.
#[derive(Debug, Clone)]
pub struct Settings {
    pub instructions: Option<String>,
    pub max_output_tokens: Option<usize>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: ReasoningSettings,
    pub store: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub text: TextSettings,
    pub tool_choice: ToolChoice,
    pub tools: Vec<FunctionTool>,
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    pub metadata: Map<String, Value>,
}

/// The first look at a request: what decides whether and how it continues a stored one.
pub struct Head {
    pub store: bool,
    pub previous_response_id: Option<String>,
    pub instructions: Option<String>,
}

/// Refuses what candor cannot honour and reads `store`, `previous_response_id` and
/// `instructions`.
pub fn head(req: &CreateResponseRequest) -> Result<Head, ApiError> {
    refuse_unsupported(req)?;
    let store = match &req.store {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("store", "a boolean", other)),
    };
    let previous_response_id = match &req.previous_response_id {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(wrong_type("previous_response_id", "a string", other)),
    };
    let instructions = match &req.instructions {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(_)) => {
            return Err(unsupported(
                "instructions",
                "'instructions' as a list of items is not supported; send a string.",
            ))
        }
        Some(other) => return Err(wrong_type("instructions", "a string", other)),
    };
    Ok(Head {
        store,
        previous_response_id,
        instructions,
    })
}

fn refuse_unsupported(req: &CreateResponseRequest) -> Result<(), ApiError> {
    let refuse = |param: &str, why: &str| Err(unsupported(param, &format!("'{param}' {why}")));
    if let Some(v) = &req.include {
        if !v.as_array().is_some_and(Vec::is_empty) {
            return refuse(
                "include",
                "is not supported: candor has no extra output to include (the whole \
                 thinking is always in the reasoning item's 'content', unencrypted).",
            );
        }
    }
    if req
        .background
        .as_ref()
        .is_some_and(|v| v != &Value::Bool(false))
    {
        return refuse(
            "background",
            "is not supported: responses run while you wait.",
        );
    }
    if req.conversation.is_some() {
        return refuse(
            "conversation",
            "is not supported: continue a stored response with 'previous_response_id'.",
        );
    }
    if req.prompt.is_some() {
        return refuse(
            "prompt",
            "is not supported: candor stores no prompt templates.",
        );
    }
    if req.truncation.as_ref().is_some_and(|v| *v != "disabled") {
        return refuse(
            "truncation",
            "other than 'disabled' is not supported: an input longer than the context is \
             refused.",
        );
    }
    if req.top_logprobs.as_ref().is_some_and(|v| *v != 0) {
        return refuse("top_logprobs", "is not supported on /v1/responses.");
    }
    if req.max_tool_calls.is_some() {
        return refuse(
            "max_tool_calls",
            "is not supported: candor runs no built-in tools.",
        );
    }
    if req
        .service_tier
        .as_ref()
        .is_some_and(|v| *v != "auto" && *v != "default")
    {
        return refuse(
            "service_tier",
            "other than 'auto' or 'default' is not supported.",
        );
    }
    if req.context_management.is_some() {
        return refuse(
            "context_management",
            "is not supported: no server-side compaction.",
        );
    }
    if req
        .prompt_cache_retention
        .as_ref()
        .is_some_and(|v| *v != "in_memory")
    {
        return refuse(
            "prompt_cache_retention",
            "other than 'in_memory' is not supported: the prefix cache lives in memory.",
        );
    }
    Ok(())
}

/// The chat request a Responses request runs as, and what the response echoes.
/// `conversation` is the stored conversation it continues followed by its own input.
pub fn to_chat(
    req: &CreateResponseRequest,
    head: &Head,
    conversation: &[Item],
) -> Result<(ChatCompletionRequest, Settings), ApiError> {
    let (tools, chat_tools) = tools(&req.tools)?;
    let (tool_choice, chat_tool_choice) = tool_choice(&req.tool_choice)?;
    let (text, response_format) = text(&req.text)?;
    let (reasoning, effort) = reasoning(&req.reasoning)?;
    let metadata = metadata(&req.metadata)?;
    let user = optional_string(&req.user, "user")?;
    let safety_identifier = optional_string(&req.safety_identifier, "safety_identifier")?;
    let number = |v: &Option<Value>| v.as_ref().and_then(Value::as_f64).unwrap_or(1.0);
    let messages = items::to_messages(head.instructions.as_deref(), conversation);
    let chat = ChatCompletionRequest {
        model: req.model.clone(),
        messages: Some(Value::Array(messages)),
        tools: chat_tools,
        tool_choice: chat_tool_choice,
        parallel_tool_calls: req.parallel_tool_calls.clone(),
        max_completion_tokens: req.max_output_tokens.clone(),
        common: CommonRequestFields {
            temperature: req.temperature.clone(),
            top_p: req.top_p.clone(),
            stream: req.stream.clone(),
            user: req.user.clone(),
            seed: req.seed.clone(),
            top_k: req.top_k.clone(),
            min_p: req.min_p.clone(),
            repetition_penalty: req.repetition_penalty.clone(),
            ignore_eos: req.ignore_eos.clone(),
            logit_bias: req.logit_bias.clone(),
            ..Default::default()
        },
        chat_template_kwargs: req.chat_template_kwargs.clone(),
        reasoning_effort: effort,
        thinking_token_budget: req.thinking_token_budget.clone(),
        reasoning_budget_message: req.reasoning_budget_message.clone(),
        response_format,
        ..Default::default()
    };
    let settings = Settings {
        instructions: head.instructions.clone(),
        max_output_tokens: req
            .max_output_tokens
            .as_ref()
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        parallel_tool_calls: req.parallel_tool_calls != Some(Value::Bool(false)),
        previous_response_id: head.previous_response_id.clone(),
        reasoning,
        store: head.store,
        temperature: number(&req.temperature),
        top_p: number(&req.top_p),
        text,
        tool_choice,
        tools,
        user,
        safety_identifier,
        metadata,
    };
    Ok((chat, settings))
}

/// A tool in chat's nested shape.
#[derive(Serialize)]
struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
    strict: bool,
}

/// Function tools (flat: `name`, `parameters`, `strict` at the top; `strict` true unless
/// set false, as OpenAI's Responses API); any other type is refused.
fn tools(value: &Option<Value>) -> Result<(Vec<FunctionTool>, Option<Value>), ApiError> {
    let list = match value {
        None => return Ok((Vec::new(), None)),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    let mut echo = Vec::with_capacity(list.len());
    let mut chat = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let Value::Object(fields) = tool else {
            return Err(wrong_type(&at, "an object", tool));
        };
        match fields.get("type") {
            Some(Value::String(t)) if t == "function" => {}
            Some(Value::String(t)) => {
                return Err(unsupported(
                    &format!("{at}.type"),
                    &format!(
                        "Tools of type '{t}' are not supported: candor runs no built-in tools \
                         (web search, file search, code interpreter...). Declare a 'function' \
                         tool and run it yourself."
                    ),
                ))
            }
            Some(other) => return Err(wrong_type(&format!("{at}.type"), "a string", other)),
            None => return Err(missing(&format!("{at}.type"))),
        }
        let name = fields
            .get("name")
            .filter(|v| !v.is_null())
            .ok_or_else(|| missing(&format!("{at}.name")))?;
        let strict = match fields.get("strict") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(wrong_type(&format!("{at}.strict"), "a boolean", other)),
        };
        let description = fields.get("description").filter(|v| !v.is_null());
        let parameters = fields.get("parameters").filter(|v| !v.is_null());
        chat.push(
            serde_json::to_value(ChatTool {
                kind: "function",
                function: ChatFunction {
                    name,
                    description,
                    parameters,
                    strict,
                },
            })
            .expect("a tool serializes"),
        );
        echo.push(FunctionTool {
            kind: "function",
            name: name.as_str().unwrap_or_default().to_string(),
            description: description.and_then(Value::as_str).map(str::to_string),
            parameters: parameters.cloned().unwrap_or_else(|| {
                serde_json::to_value(EmptyObjectSchema::default()).expect("serializes")
            }),
            strict: Some(strict),
        });
    }
    Ok((echo, Some(Value::Array(chat))))
}

/// `{"type": "object", "properties": {}}`: a tool without parameters.
#[derive(Serialize)]
struct EmptyObjectSchema {
    #[serde(rename = "type")]
    kind: &'static str,
    properties: Map<String, Value>,
}

impl Default for EmptyObjectSchema {
    fn default() -> Self {
        Self {
            kind: "object",
            properties: Map::new(),
        }
    }
}

/// chat's `{"type": "function", "function": {"name"}}`.
#[derive(Serialize)]
struct ChatToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: NameOnly<'a>,
}

#[derive(Serialize)]
struct NameOnly<'a> {
    name: &'a str,
}

fn tool_choice(value: &Option<Value>) -> Result<(ToolChoice, Option<Value>), ApiError> {
    match value {
        None => Ok((ToolChoice::Mode("auto".into()), None)),
        // The mode's value is checked by chat's validation.
        Some(Value::String(mode)) => Ok((ToolChoice::Mode(mode.clone()), value.clone())),
        Some(Value::Object(fields)) => {
            match fields.get("type") {
                Some(Value::String(t)) if t == "function" => {}
                Some(Value::String(t)) => {
                    return Err(unsupported(
                        "tool_choice.type",
                        &format!(
                            "A 'tool_choice' of type '{t}' is not supported; use 'auto', \
                             'none', 'required' or {{\"type\": \"function\", \"name\": ...}}."
                        ),
                    ))
                }
                Some(other) => return Err(wrong_type("tool_choice.type", "a string", other)),
                None => return Err(missing("tool_choice.type")),
            }
            let name = match fields.get("name") {
                Some(Value::String(n)) => n,
                None | Some(Value::Null) => return Err(missing("tool_choice.name")),
                Some(other) => return Err(wrong_type("tool_choice.name", "a string", other)),
            };
            let chat = ChatToolChoice {
                kind: "function",
                function: NameOnly { name },
            };
            Ok((
                ToolChoice::Function {
                    kind: "function",
                    name: name.clone(),
                },
                Some(serde_json::to_value(chat).expect("serializes")),
            ))
        }
        Some(other) => Err(wrong_type("tool_choice", "a string or an object", other)),
    }
}

/// chat's `response_format`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchemaSpec<'a> },
}

#[derive(Serialize)]
struct JsonSchemaSpec<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// `text.format` (and `text.verbosity`, which only its default can honour).
fn text(value: &Option<Value>) -> Result<(TextSettings, Option<Value>), ApiError> {
    let text_only = TextSettings {
        format: TextFormat::Text,
    };
    let fields = match value {
        None => return Ok((text_only, None)),
        Some(Value::Object(fields)) => fields,
        Some(other) => return Err(wrong_type("text", "an object", other)),
    };
    match fields.get("verbosity") {
        None | Some(Value::Null) => {}
        Some(v) if *v == "medium" => {}
        Some(_) => {
            return Err(unsupported(
                "text.verbosity",
                "'text.verbosity' other than 'medium' is not supported: candor cannot make \
                 a model more or less verbose.",
            ))
        }
    }
    let format = match fields.get("format") {
        None | Some(Value::Null) => return Ok((text_only, None)),
        Some(Value::Object(f)) => f,
        Some(other) => return Err(wrong_type("text.format", "an object", other)),
    };
    let kind = match format.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None | Some(Value::Null) => return Err(missing("text.format.type")),
        Some(other) => return Err(wrong_type("text.format.type", "a string", other)),
    };
    match kind {
        "text" => Ok((text_only, None)),
        "json_object" => Ok((
            TextSettings {
                format: TextFormat::JsonObject,
            },
            Some(serde_json::to_value(ResponseFormat::JsonObject).expect("serializes")),
        )),
        "json_schema" => {
            let name = match format.get("name") {
                Some(Value::String(n)) => n,
                None | Some(Value::Null) => return Err(missing("text.format.name")),
                Some(other) => return Err(wrong_type("text.format.name", "a string", other)),
            };
            let schema = match format.get("schema") {
                Some(s @ Value::Object(_)) => s,
                None | Some(Value::Null) => return Err(missing("text.format.schema")),
                Some(other) => {
                    return Err(wrong_type(
                        "text.format.schema",
                        "a JSON schema object",
                        other,
                    ))
                }
            };
            let strict = match format.get("strict") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => return Err(wrong_type("text.format.strict", "a boolean", other)),
            };
            let chat = ResponseFormat::JsonSchema {
                json_schema: JsonSchemaSpec {
                    name,
                    schema,
                    strict,
                },
            };
            Ok((
                TextSettings {
                    format: TextFormat::JsonSchema {
                        name: name.clone(),
                        schema: schema.clone(),
                        description: format
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        strict,
                    },
                },
                Some(serde_json::to_value(chat).expect("serializes")),
            ))
        }
        other => Err(ApiError::bad_request(
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object' and \
                 'json_schema'."
            ),
            Some("text.format.type"),
        )),
    }
}

/// `reasoning.effort` (checked by chat's validation as `reasoning_effort`) and
/// `reasoning.summary` (accepted; no summary is generated).
fn reasoning(value: &Option<Value>) -> Result<(ReasoningSettings, Option<Value>), ApiError> {
    let fields = match value {
        None => return Ok((ReasoningSettings::default(), None)),
        Some(Value::Object(fields)) => fields,
        Some(other) => return Err(wrong_type("reasoning", "an object", other)),
    };
    let effort = fields.get("effort").filter(|v| !v.is_null()).cloned();
    let mut summary = None;
    for name in ["summary", "generate_summary"] {
        match fields.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if matches!(s.as_str(), "auto" | "concise" | "detailed") => {
                summary = Some(s.clone())
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    format!(
                        "Invalid 'reasoning.{name}'. Supported values are: 'auto', 'concise' \
                         and 'detailed'."
                    ),
                    Some(&format!("reasoning.{name}")),
                ))
            }
        }
    }
    Ok((
        ReasoningSettings {
            effort: effort.as_ref().and_then(Value::as_str).map(str::to_string),
            summary,
        },
        effort,
    ))
}

fn metadata(value: &Option<Value>) -> Result<Map<String, Value>, ApiError> {
    let map = match value {
        None => return Ok(Map::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("metadata", "an object", other)),
    };
    let (most, key_len, value_len) = METADATA_MAX;
    if map.len() > most {
        return Err(ApiError::bad_request(
            format!(
                "'metadata' holds at most {most} entries; it has {}.",
                map.len()
            ),
            Some("metadata"),
        ));
    }
    for (k, v) in map {
        let at = format!("metadata.{k}");
        match v {
            Value::String(s) if k.chars().count() <= key_len && s.chars().count() <= value_len => {}
            Value::String(_) => {
                return Err(ApiError::bad_request(
                    format!(
                        "'{at}': keys are at most {key_len} characters, values at most \
                         {value_len}."
                    ),
                    Some(&at),
                ))
            }
            other => return Err(wrong_type(&at, "a string", other)),
        }
    }
    Ok(map.clone())
}

fn optional_string(value: &Option<Value>, param: &str) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(param, "a string", other)),
    }
}

/// An error of the chat path, in the Responses API's names: the param at fault and the
/// field names its message quotes.
pub fn renamed(mut e: ApiError) -> ApiError {
    const NAMES: [(&str, &str); 5] = [
        ("max_completion_tokens", "max_output_tokens"),
        ("reasoning_effort", "reasoning.effort"),
        ("response_format", "text.format"),
        ("tool_choice.function.name", "tool_choice.name"),
        ("messages", "input"),
    ];
    if let Some(p) = e.param.take() {
        let mut p = p.replace(".function.", ".");
        for (chat, responses) in NAMES {
            if p == chat || p.starts_with(&format!("{chat}.")) || p.starts_with(&format!("{chat}["))
            {
                p = match chat {
                    // A message's index is not the input item's: name `input` whole.
                    "messages" => responses.to_string(),
                    "response_format" => {
                        format!("{responses}{}", &p[chat.len()..]).replace(".json_schema", "")
                    }
                    _ => format!("{responses}{}", &p[chat.len()..]),
                };
                break;
            }
        }
        e.param = Some(p);
    }
    for (chat, responses) in NAMES {
        e.message = e
            .message
            .replace(&format!("'{chat}'"), &format!("'{responses}'"));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> CreateResponseRequest {
        serde_json::from_value(v).unwrap()
    }

    fn convert(v: Value) -> Result<(ChatCompletionRequest, Settings), ApiError> {
        let r = req(v);
        let h = head(&r)?;
        let input = items::parse(r.input.as_ref())?;
        to_chat(&r, &h, &input)
    }

    #[test]
    fn fields_map_to_their_chat_names() {
        let (chat, settings) = convert(json!({
            "model": "m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 64,
            "reasoning": {"effort": "low", "summary": "auto"}, "temperature": 0.5,
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"},
                                "strict": true}},
            "metadata": {"k": "v"}, "store": false
        }))
        .unwrap();
        assert_eq!(chat.max_completion_tokens, Some(json!(64)));
        assert_eq!(chat.reasoning_effort, Some(json!("low")));
        assert_eq!(
            chat.tools,
            Some(json!([{"type": "function", "function": {"name": "f",
                "parameters": {"type": "object"}, "strict": true}}]))
        );
        assert_eq!(
            chat.tool_choice,
            Some(json!({"type": "function", "function": {"name": "f"}}))
        );
        assert_eq!(
            chat.response_format,
            Some(json!({"type": "json_schema", "json_schema": {"name": "n",
                "schema": {"type": "object"}, "strict": true}}))
        );
        assert_eq!(
            chat.messages,
            Some(json!([{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Hi"}]))
        );
        assert!(!settings.store && !settings.parallel_tool_calls);
        assert_eq!(settings.reasoning.summary.as_deref(), Some("auto"));
        assert_eq!((settings.temperature, settings.top_p), (0.5, 1.0));
        assert_eq!(settings.tools[0].strict, Some(true));
    }

    #[test]
    fn what_candor_cannot_honour_is_refused_by_name() {
        for (body, param) in [
            (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
            (
                json!({"tools": [{"type": "file_search", "vector_store_ids": []}]}),
                "tools[0].type",
            ),
            (json!({"background": true}), "background"),
            (
                json!({"include": ["reasoning.encrypted_content"]}),
                "include",
            ),
            (json!({"conversation": "conv_1"}), "conversation"),
            (json!({"prompt": {"id": "p"}}), "prompt"),
            (json!({"truncation": "auto"}), "truncation"),
            (json!({"top_logprobs": 2}), "top_logprobs"),
            (json!({"max_tool_calls": 2}), "max_tool_calls"),
            (json!({"service_tier": "flex"}), "service_tier"),
            (json!({"text": {"verbosity": "low"}}), "text.verbosity"),
            (
                json!({"tool_choice": {"type": "web_search_preview"}}),
                "tool_choice.type",
            ),
            (
                json!({"reasoning": {"summary": "long"}}),
                "reasoning.summary",
            ),
            (
                json!({"instructions": [{"role": "system", "content": "x"}]}),
                "instructions",
            ),
            (
                json!({"text": {"format": {"type": "json_schema", "schema": {}}}}),
                "text.format.name",
            ),
            (json!({"metadata": {"k": 1}}), "metadata.k"),
            (json!({"store": "yes"}), "store"),
        ] {
            let mut body = body;
            body["input"] = json!("Hi");
            let e = convert(body.clone())
                .err()
                .unwrap_or_else(|| panic!("{body} accepted"));
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
            assert_eq!(e.status, 400);
        }
        assert!(
            convert(json!({"input": "Hi", "include": [], "background": false,
                               "truncation": "disabled", "service_tier": "auto"}))
            .is_ok()
        );
    }

    #[test]
    fn chat_errors_get_responses_names() {
        for (param, expected) in [
            ("max_completion_tokens", "max_output_tokens"),
            ("reasoning_effort", "reasoning.effort"),
            ("response_format.json_schema.schema", "text.format.schema"),
            ("tools[1].function.parameters", "tools[1].parameters"),
            ("tool_choice.function.name", "tool_choice.name"),
            ("messages[3].content", "input"),
            ("temperature", "temperature"),
        ] {
            let e = renamed(ApiError::bad_request(format!("bad '{param}'"), Some(param)));
            assert_eq!(e.param.as_deref(), Some(expected));
        }
        let e = renamed(ApiError::bad_request("'response_format' is bad", None));
        assert_eq!(e.message, "'text.format' is bad");
    }
}
