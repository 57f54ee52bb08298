//! The wire vocabulary of OpenAI's Responses API (`/v1/responses`): the request (raw
//! values, as for chat), the `response` object with its output items, the typed events of
//! a streamed response, the list of a response's input items and the answer to a delete.
//! Field names follow OpenAI's OpenAPI schemas (`Response`, `ResponseStreamEvent`,
//! `ResponseItemList`), which the HTTP tests check every answer against.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `object` of a response.
pub const RESPONSE_OBJECT: &str = "response";
/// Prefix of response ids (`resp_…`).
pub const RESPONSE_ID_PREFIX: &str = "resp";
/// Prefix of message item ids (`msg_…`).
pub const MESSAGE_ID_PREFIX: &str = "msg";
/// Prefix of reasoning item ids (`rs_…`).
pub const REASONING_ID_PREFIX: &str = "rs";
/// Prefix of function call item ids (`fc_…`).
pub const FUNCTION_CALL_ID_PREFIX: &str = "fc";
/// Prefix of function call output item ids (`fco_…`).
pub const FUNCTION_CALL_OUTPUT_ID_PREFIX: &str = "fco";

/// A fresh id as OpenAI writes the Responses API's: `prefix`, an underscore and 32
/// random letters and digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", super::random_alphanumeric(32))
}

// ---------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------

/// `POST /v1/responses`. Raw values (`None` when absent or null), checked by
/// `api::responses::request`; unknown fields are ignored, as OpenAI does, but the fields
/// candor cannot honour are read so that they can be refused by name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CreateResponseRequest {
    /// String: must equal the served model name.
    pub model: Option<Value>,
    /// A string (one user message) or an array of input items.
    pub input: Option<Value>,
    /// String: a system message put before the conversation (not carried over by
    /// `previous_response_id`).
    pub instructions: Option<Value>,
    /// Integer >= 1: thinking and answer together.
    pub max_output_tokens: Option<Value>,
    pub temperature: Option<Value>,
    pub top_p: Option<Value>,
    /// `{effort, summary}`.
    pub reasoning: Option<Value>,
    /// Function tools in the flat shape (`name`, `parameters`, `strict` at the top).
    pub tools: Option<Value>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "name"}`.
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<Value>,
    /// `{format: {type: text | json_object | json_schema, ...}, verbosity}`.
    pub text: Option<Value>,
    pub stream: Option<Value>,
    /// `{include_obfuscation}`: candor never obfuscates, so any value is fine.
    pub stream_options: Option<Value>,
    /// Boolean (default true): keep the response for `previous_response_id` and GET.
    pub store: Option<Value>,
    pub previous_response_id: Option<Value>,
    /// Up to 16 string values, echoed back.
    pub metadata: Option<Value>,
    pub user: Option<Value>,
    /// Accepted and echoed (OpenAI's abuse-monitoring id, like `user`).
    pub safety_identifier: Option<Value>,
    /// Accepted: candor's prefix cache needs no key.
    pub prompt_cache_key: Option<Value>,
    /// Refused unless empty: candor has no extra output to include.
    pub include: Option<Value>,
    /// Refused when true: no background mode.
    pub background: Option<Value>,
    /// Refused: no server-side conversations (use `previous_response_id`).
    pub conversation: Option<Value>,
    /// Refused: no stored prompt templates.
    pub prompt: Option<Value>,
    /// Refused unless `"disabled"`: an input longer than the context is a 400.
    pub truncation: Option<Value>,
    /// Refused: log-probabilities are not offered on this endpoint.
    pub top_logprobs: Option<Value>,
    /// Refused: candor does not run tools, so it cannot count their calls.
    pub max_tool_calls: Option<Value>,
    /// Refused unless `"auto"` or `"default"`: one tier.
    pub service_tier: Option<Value>,
    /// Refused: no server-side compaction.
    pub context_management: Option<Value>,
    /// Refused unless `"in_memory"`: the prefix cache lives in memory.
    pub prompt_cache_retention: Option<Value>,

    /// Extension (as on chat): integer seed.
    pub seed: Option<Value>,
    /// Extension (as on chat).
    pub top_k: Option<Value>,
    /// Extension (as on chat).
    pub min_p: Option<Value>,
    /// Extension (as on chat).
    pub repetition_penalty: Option<Value>,
    /// Extension (as on chat): token id -> bias in [-100, 100].
    pub logit_bias: Option<Value>,
    /// Extension (as on chat): keep generating past end-of-sequence tokens.
    pub ignore_eos: Option<Value>,
    /// Extension (as on chat): extra variables for the chat template.
    pub chat_template_kwargs: Option<Value>,
    /// Extension (as on chat): the thinking budget in tokens, winning over the effort.
    pub thinking_token_budget: Option<Value>,
    /// Extension (as on chat): written before the end marker when the budget closes the
    /// thinking.
    pub reasoning_budget_message: Option<Value>,
}

// ---------------------------------------------------------------------------------------
// Items: the output of a response, and its input as stored
// ---------------------------------------------------------------------------------------

/// `status` of an item or a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

/// One item of a conversation: what a response outputs (reasoning, assistant messages,
/// function calls) and what a request inputs (also user, system and developer messages
/// and function call outputs).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message(Message),
    Reasoning(Reasoning),
    FunctionCall(FunctionCall),
    FunctionCallOutput(FunctionCallOutput),
}

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Item::Message(m) => &m.id,
            Item::Reasoning(r) => &r.id,
            Item::FunctionCall(c) => &c.id,
            Item::FunctionCallOutput(o) => &o.id,
        }
    }
}

/// A message: the assistant's with `output_text` parts, the others' with `input_text`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: String,
    /// `user`, `system`, `developer` or `assistant`.
    pub role: String,
    pub status: Status,
    pub content: Vec<Content>,
}

/// A part of a message, or of a reasoning item (`reasoning_text`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
        /// Always empty: candor does not cite sources.
        annotations: Vec<Value>,
        /// Always empty: log-probabilities are not offered on this endpoint.
        logprobs: Vec<Value>,
    },
    ReasoningText {
        text: String,
    },
}

impl Content {
    pub fn output_text(text: String) -> Self {
        Content::OutputText {
            text,
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Content::InputText { text }
            | Content::OutputText { text, .. }
            | Content::ReasoningText { text } => text,
        }
    }

    pub fn push_str(&mut self, piece: &str) {
        match self {
            Content::InputText { text }
            | Content::OutputText { text, .. }
            | Content::ReasoningText { text } => text.push_str(piece),
        }
    }
}

/// The model's thinking: the whole trace in `content` (a local model's thinking is the
/// user's to see), `summary` empty (no summary is generated).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reasoning {
    pub id: String,
    pub status: Status,
    pub summary: Vec<SummaryText>,
    pub content: Vec<Content>,
}

/// A part of a reasoning summary (`summary_text`); candor writes none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

/// A call of one of the request's function tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    pub id: String,
    /// What the `function_call_output` answering it names.
    pub call_id: String,
    pub name: String,
    /// JSON text.
    pub arguments: String,
    pub status: Status,
}

/// A tool's result, sent back by the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCallOutput {
    pub id: String,
    pub call_id: String,
    pub output: String,
    pub status: Status,
}

// ---------------------------------------------------------------------------------------
// The response object
// ---------------------------------------------------------------------------------------

/// A response: the request's settings echoed, its output items and usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    pub status: Status,
    /// Set when `status` is `completed`.
    pub completed_at: Option<u64>,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<usize>,
    pub model: String,
    pub output: Vec<Item>,
    /// The text of every `output_text` part, joined (the SDKs' convenience field).
    pub output_text: String,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: ReasoningSettings,
    pub store: bool,
    pub temperature: f64,
    pub text: TextSettings,
    pub tool_choice: ToolChoice,
    pub tools: Vec<FunctionTool>,
    pub top_p: f64,
    /// Always `disabled`: an input too long for the context is refused.
    pub truncation: &'static str,
    /// Absent until the response is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponseUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    pub metadata: Map<String, Value>,
    /// Always false: no background mode.
    pub background: bool,
}

/// Why a response failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseError {
    /// `server_error`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` (also when `--request-timeout` cut the generation).
    pub reason: &'static str,
}

/// `reasoning` as the request set it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReasoningSettings {
    pub effort: Option<String>,
    /// Accepted and echoed; no summary is generated, so reasoning items keep `summary: []`.
    pub summary: Option<String>,
}

/// `text` as the request set it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextSettings {
    pub format: TextFormat,
}

/// `text.format`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        strict: Option<bool>,
    },
}

/// `tool_choice`: a mode, or one function.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `auto`, `none` or `required`.
    Mode(String),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        name: String,
    },
}

/// A function tool in the Responses API's flat shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionTool {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parameters: Value,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseUsage {
    pub input_tokens: usize,
    pub input_tokens_details: InputTokensDetails,
    /// Thinking and answer.
    pub output_tokens: usize,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputTokensDetails {
    /// Input tokens found in the prefix cache.
    pub cached_tokens: usize,
    /// Always 0: candor does not count what it writes to its cache.
    pub cache_write_tokens: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutputTokensDetails {
    /// Output tokens the model spent thinking.
    pub reasoning_tokens: usize,
}

/// `GET /v1/responses/{id}/input_items`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemList {
    pub object: &'static str,
    pub data: Vec<Item>,
    /// The first and last item's ids (empty when `data` is).
    pub first_id: String,
    pub last_id: String,
    pub has_more: bool,
}

/// `DELETE /v1/responses/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeletedResponse {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

// ---------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------

/// One server-sent event of a streamed response: its payload and its place in the
/// stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEvent {
    #[serde(flatten)]
    pub event: Event,
    pub sequence_number: u64,
}

/// The payload of a stream event; `type` names it (and the SSE `event:` line).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "response.created")]
    Created { response: Box<Response> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: Box<Response> },
    #[serde(rename = "response.completed")]
    Completed { response: Box<Response> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: Box<Response> },
    #[serde(rename = "response.failed")]
    Failed { response: Box<Response> },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded { output_index: usize, item: Item },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone { output_index: usize, item: Item },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        item_id: String,
        output_index: usize,
        content_index: usize,
        part: Content,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        item_id: String,
        output_index: usize,
        content_index: usize,
        part: Content,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        item_id: String,
        output_index: usize,
        content_index: usize,
        delta: String,
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        item_id: String,
        output_index: usize,
        content_index: usize,
        text: String,
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.reasoning_text.delta")]
    ReasoningTextDelta {
        item_id: String,
        output_index: usize,
        content_index: usize,
        delta: String,
    },
    #[serde(rename = "response.reasoning_text.done")]
    ReasoningTextDone {
        item_id: String,
        output_index: usize,
        content_index: usize,
        text: String,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        item_id: String,
        output_index: usize,
        delta: String,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        item_id: String,
        output_index: usize,
        name: String,
        arguments: String,
    },
    /// A failure mid-stream, before `response.failed`.
    #[serde(rename = "error")]
    Error {
        code: Option<String>,
        message: String,
        param: Option<String>,
    },
}

impl Event {
    /// The event's `type`, for the SSE `event:` line.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "response.created",
            Event::InProgress { .. } => "response.in_progress",
            Event::Completed { .. } => "response.completed",
            Event::Incomplete { .. } => "response.incomplete",
            Event::Failed { .. } => "response.failed",
            Event::OutputItemAdded { .. } => "response.output_item.added",
            Event::OutputItemDone { .. } => "response.output_item.done",
            Event::ContentPartAdded { .. } => "response.content_part.added",
            Event::ContentPartDone { .. } => "response.content_part.done",
            Event::OutputTextDelta { .. } => "response.output_text.delta",
            Event::OutputTextDone { .. } => "response.output_text.done",
            Event::ReasoningTextDelta { .. } => "response.reasoning_text.delta",
            Event::ReasoningTextDone { .. } => "response.reasoning_text.done",
            Event::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Event::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Event::Error { .. } => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names_are_their_types() {
        let events = [
            Event::OutputTextDelta {
                item_id: "msg_1".into(),
                output_index: 1,
                content_index: 0,
                delta: "hi".into(),
                logprobs: vec![],
            },
            Event::Error {
                code: None,
                message: "m".into(),
                param: None,
            },
            Event::OutputItemAdded {
                output_index: 0,
                item: Item::Reasoning(Reasoning {
                    id: "rs_1".into(),
                    status: Status::InProgress,
                    summary: vec![],
                    content: vec![],
                }),
            },
        ];
        for event in events {
            let v = serde_json::to_value(StreamEvent {
                event: event.clone(),
                sequence_number: 3,
            })
            .unwrap();
            assert_eq!(v["type"], event.name());
            assert_eq!(v["sequence_number"], 3);
        }
    }

    #[test]
    fn items_have_openai_shapes() {
        let item = Item::Message(Message {
            id: "msg_1".into(),
            role: "assistant".into(),
            status: Status::Completed,
            content: vec![Content::output_text("hi".into())],
        });
        assert_eq!(
            serde_json::to_value(item).unwrap(),
            json!({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": "hi", "annotations": [],
                                "logprobs": []}]})
        );
        let choice = ToolChoice::Function {
            kind: "function",
            name: "f".into(),
        };
        assert_eq!(
            serde_json::to_value(choice).unwrap(),
            json!({"type": "function", "name": "f"})
        );
        assert!(new_id(RESPONSE_ID_PREFIX).starts_with("resp_"));
        assert_eq!(new_id(MESSAGE_ID_PREFIX).len(), "msg_".len() + 32);
    }
}
