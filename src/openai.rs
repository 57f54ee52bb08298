//! The wire vocabulary of the OpenAI-compatible API, below both `api` and `validate`:
//! OpenAI's names and the request types of `/v1/chat/completions` and
//! `/v1/completions`, the error body, and llama-server's `/tokenize` and `/detokenize`;
//! the Responses API's in [`responses`].
//!
//! Requests keep every field as an optional raw [`Value`]: a value of the wrong type (say
//! `"temperature": "hot"`) must come back as a 400 naming its param, which serde cannot
//! do, so [`crate::validate`] checks types, ranges and defaults. serde only rejects a body
//! that is not JSON or not an object. Unknown fields are ignored, as OpenAI does.
//!
//! Responses are typed structs with OpenAI's field names (checked against OpenAI's own
//! OpenAPI schemas by the HTTP tests); candor's extensions (`reasoning_content`,
//! `reasoning`) sit beside them. The endpoints in `api/` fill them in.

pub mod responses;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `object` of a non-streamed chat completion.
pub const CHAT_COMPLETION_OBJECT: &str = "chat.completion";
/// `object` of each streamed chat completion chunk.
pub const CHAT_COMPLETION_CHUNK_OBJECT: &str = "chat.completion.chunk";
/// `object` of a text completion, streamed or not.
pub const TEXT_COMPLETION_OBJECT: &str = "text_completion";
/// `object` of one entry of `/v1/models`.
pub const MODEL_OBJECT: &str = "model";
/// `object` of the `/v1/models` list.
pub const LIST_OBJECT: &str = "list";

/// Prefix of chat completion ids (`chatcmpl-…`).
pub const CHAT_COMPLETION_ID_PREFIX: &str = "chatcmpl";
/// Prefix of text completion ids (`cmpl-…`).
pub const COMPLETION_ID_PREFIX: &str = "cmpl";

/// What OpenAI's API reports for a log-probability of minus infinity: JSON has no
/// infinity, and `null` would break clients that expect a number.
pub const MIN_LOGPROB: f32 = -9999.0;

/// A log-probability as it goes on the wire: [`MIN_LOGPROB`] for minus infinity.
pub fn wire_logprob(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        MIN_LOGPROB
    }
}

/// Seconds since the Unix epoch, for `created`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh response id: `prefix`, a dash and 29 random letters and digits, like
/// OpenAI's (`new_id(CHAT_COMPLETION_ID_PREFIX)` gives `chatcmpl-…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", random_alphanumeric(29))
}

/// A fresh tool call id: `call_` and 24 random letters and digits, like OpenAI's.
pub fn new_tool_call_id() -> String {
    format!("call_{}", random_alphanumeric(24))
}

fn random_alphanumeric(n: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The fields `/v1/chat/completions` and `/v1/completions` share: sampling, stopping,
/// streaming. Raw values, checked by [`crate::validate`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CommonRequestFields {
    /// Number in [0, 2]; 0 is greedy.
    pub temperature: Option<Value>,
    /// Number in (0, 1].
    pub top_p: Option<Value>,
    /// Integer: how many choices to sample independently (per prompt).
    pub n: Option<Value>,
    /// String or array of up to 4 strings.
    pub stop: Option<Value>,
    /// Integer: makes sampling reproducible.
    pub seed: Option<Value>,
    /// Number in [-2, 2].
    pub presence_penalty: Option<Value>,
    /// Number in [-2, 2].
    pub frequency_penalty: Option<Value>,
    /// Object: token id (as a string) -> bias in [-100, 100].
    pub logit_bias: Option<Value>,
    /// Boolean: answer with server-sent events.
    pub stream: Option<Value>,
    /// Object `{include_usage: bool}`.
    pub stream_options: Option<Value>,
    /// String identifying the end user; accepted and ignored.
    pub user: Option<Value>,
    /// Extension (vLLM): integer >= -1; 0 and -1 disable.
    pub top_k: Option<Value>,
    /// Extension (vLLM, llama.cpp): number in [0, 1].
    pub min_p: Option<Value>,
    /// Extension (vLLM, llama.cpp): number > 0; 1 disables.
    pub repetition_penalty: Option<Value>,
    /// Extension (vLLM): boolean: keep generating past end-of-sequence tokens.
    pub ignore_eos: Option<Value>,
    /// Extension (vLLM): a JSON schema (object or string) the answer must match.
    pub guided_json: Option<Value>,
    /// Extension (vLLM): a regular expression the answer must match.
    pub guided_regex: Option<Value>,
    /// Extension (vLLM): the answer is exactly one of these strings.
    pub guided_choice: Option<Value>,
    /// Extension (vLLM): a Lark grammar the answer must match.
    pub guided_grammar: Option<Value>,
    /// Extension (vLLM): `{json | regex | choice | grammar}`, as the `guided_*` fields.
    pub structured_outputs: Option<Value>,
}

/// `POST /v1/chat/completions`. Each field holds the raw JSON value (`None` when absent or
/// `null`); the doc says the type [`crate::validate::validate_chat`] expects.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ChatCompletionRequest {
    /// String: must equal the served model name.
    pub model: Option<Value>,
    /// Array of message objects, kept raw for the chat template.
    pub messages: Option<Value>,
    /// Array of `{"type": "function", "function": {name, description, parameters, strict}}`.
    pub tools: Option<Value>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "function": {"name"}}`.
    pub tool_choice: Option<Value>,
    /// Boolean (default true): false allows at most one call.
    pub parallel_tool_calls: Option<Value>,
    /// Integer >= 1. Deprecated by OpenAI in favour of `max_completion_tokens`.
    pub max_tokens: Option<Value>,
    /// Integer >= 1; wins over `max_tokens` when both are sent.
    pub max_completion_tokens: Option<Value>,
    /// The fields both completion endpoints take.
    #[serde(flatten)]
    pub common: CommonRequestFields,
    /// Boolean: return the chosen tokens' log-probabilities.
    pub logprobs: Option<Value>,
    /// Integer in [0, 20]: alternatives per token; needs `logprobs: true`.
    pub top_logprobs: Option<Value>,

    /// Extension (vLLM): object of extra variables for the chat template
    /// (e.g. `{"enable_thinking": false}`).
    pub chat_template_kwargs: Option<Value>,

    /// Extension (vLLM, OpenRouter): boolean; false leaves the thinking out of the response.
    pub include_reasoning: Option<Value>,
    /// OpenAI: `none`, `minimal`, `low`, `medium`, `high` or `xhigh`: a thinking budget from
    /// the server's table.
    pub reasoning_effort: Option<Value>,
    /// Thinking budget in tokens (integer >= 0, or -1 for none), under the peers' names:
    /// vLLM's `thinking_token_budget`.
    pub thinking_token_budget: Option<Value>,
    /// llama-server's name for the thinking budget.
    pub reasoning_budget_tokens: Option<Value>,
    /// llama-server's other name for the thinking budget.
    pub thinking_budget_tokens: Option<Value>,
    /// candor's name for the thinking budget.
    pub max_reasoning_tokens: Option<Value>,
    /// String written before the end marker when the budget closes the thinking.
    pub reasoning_budget_message: Option<Value>,

    /// Not supported yet (the deprecated form of `tools`).
    pub functions: Option<Value>,
    /// Not supported yet, except `"none"`.
    pub function_call: Option<Value>,
    /// `{"type": "text" | "json_object" | "json_schema", ...}`.
    pub response_format: Option<Value>,
    /// Not supported: audio output.
    pub audio: Option<Value>,
}

/// `POST /v1/completions` (the legacy text completions API). Raw values, as in
/// [`ChatCompletionRequest`]; checked by [`crate::validate::validate_completion`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CompletionRequest {
    /// String: must equal the served model name.
    pub model: Option<Value>,
    /// Non-empty string or array of non-empty strings (arrays of token ids are refused).
    pub prompt: Option<Value>,
    /// Integer >= 1; OpenAI's default is 16.
    pub max_tokens: Option<Value>,
    /// The fields both completion endpoints take.
    #[serde(flatten)]
    pub common: CommonRequestFields,
    /// Integer in [0, 5]: log-probabilities of the chosen token and this many alternatives.
    pub logprobs: Option<Value>,
    /// Boolean: the returned text starts with the prompt.
    pub echo: Option<Value>,
    /// Not supported (insertion): refused unless empty.
    pub suffix: Option<Value>,
    /// Integer: only `n` itself is supported.
    pub best_of: Option<Value>,
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// `system_fingerprint` of every response.
pub const FINGERPRINT: &str = concat!("candor-", env!("CARGO_PKG_VERSION"));

/// `role` of every message candor writes.
pub const ASSISTANT: &str = "assistant";

/// Token counts of a response (`usage`), the prompt counted once per prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens found in the prefix cache.
    pub cached_tokens: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Completion tokens the model spent thinking.
    pub reasoning_tokens: usize,
}

/// The thinking beside a message or delta (candor's extension, under both names the
/// peers use: DeepSeek's and vLLM's `reasoning_content`, OpenRouter's `reasoning`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningFields {
    pub reasoning_content: Option<String>,
    pub reasoning: Option<String>,
}

impl ReasoningFields {
    /// The same text under both names (`None`: null, the model did not think).
    pub fn new(thought: Option<String>) -> Self {
        Self {
            reasoning_content: thought.clone(),
            reasoning: thought,
        }
    }
}

/// A non-streamed `chat.completion`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: ChatMessage,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: &'static str,
}

/// The assistant's message of a choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: Option<String>,
    /// Always null: candor's models do not refuse through a separate channel.
    pub refusal: Option<String>,
    /// Present when the server shows the thinking (`--reasoning-format separated`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningFields>,
    /// The calls the model made (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// One call of a function, as `message.tool_calls` carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub call_type: &'static str,
    pub function: FunctionCall,
}

/// A called function: its name and its arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

/// A piece of a call in a stream: the first carries `id`, `type` and the name; later
/// ones pieces of `arguments`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallDelta {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub call_type: Option<&'static str>,
    pub function: FunctionCallDelta,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCallDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `type` of a tool call.
pub const FUNCTION: &str = "function";

/// `logprobs` of a chat choice: one entry per generated token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatLogprobs {
    pub content: Option<Vec<TokenLogprob>>,
    /// Always null (no refusals).
    pub refusal: Option<Vec<TokenLogprob>>,
}

impl ChatLogprobs {
    pub fn new(content: Vec<TokenLogprob>) -> Self {
        Self {
            content: Some(content),
            refusal: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

/// One streamed `chat.completion.chunk`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<ChunkChoice>,
    /// Absent unless `stream_options.include_usage`; then null in every chunk but the
    /// last, which has no choices and the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: ChatDelta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// What a chunk adds to a choice's message; empty in the chunk that finishes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatDelta {
    /// `assistant` in a choice's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A `text_completion`: the whole answer, or one streamed chunk of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<CompletionChoice>,
    /// Always there when not streamed; in a stream as in [`ChatCompletionChunk::usage`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionChoice {
    pub text: String,
    pub index: usize,
    pub logprobs: Option<CompletionLogprobs>,
    /// Null in the chunks of a stream before the choice ends.
    pub finish_reason: Option<&'static str>,
}

/// The legacy logprobs object: lists in parallel over the tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    /// Null for an echoed prompt's first token, which nothing before it predicts (as
    /// OpenAI's API and vLLM answer).
    pub token_logprobs: Vec<Option<f32>>,
    /// Alternatives of each token: text to log-probability (null where the logprob is).
    pub top_logprobs: Vec<Option<IndexMap<String, f32>>>,
    /// Where each token starts in the choice's text.
    pub text_offset: Vec<usize>,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}

/// One served model (`GET /v1/models/{id}`), with two extensions (absent while the
/// model loads) that let a client such as the chat page offer only what the model
/// supports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// Tokens of prompt + completion a request may use (vLLM's field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<usize>,
    /// How the model thinks; absent for a model without thinking markers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ModelReasoning>,
}

/// What `reasoning_effort` and the thinking budget do for this model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReasoning {
    /// The markers around the thinking (`<think>`, `</think>`).
    pub start: String,
    pub end: String,
    /// `--reasoning-format`: `separated`, `raw` or `hidden`.
    pub format: String,
    /// The budget a request without an effort or a budget of its own gets (null:
    /// unlimited).
    pub default_budget: Option<usize>,
    /// The thinking budget of each `reasoning_effort` (`--reasoning-effort-budgets`).
    pub effort_budgets: EffortBudgets,
}

/// Thinking tokens allowed per `reasoning_effort`; null: unlimited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffortBudgets {
    pub none: Option<usize>,
    pub minimal: Option<usize>,
    pub low: Option<usize>,
    pub medium: Option<usize>,
    pub high: Option<usize>,
    pub xhigh: Option<usize>,
}

/// `GET /health` once the model is loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub status: &'static str,
}

/// `POST /apply-template`: the rendered prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyTemplateResponse {
    pub prompt: String,
}

/// `POST /tokenize`: ids, or ids with their text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenizeResponse {
    pub tokens: Tokens,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Tokens {
    Ids(Vec<u32>),
    WithPieces(Vec<TokenPiece>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenPiece {
    pub id: u32,
    pub piece: String,
}

/// `POST /detokenize`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetokenizeResponse {
    pub content: String,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The body of every error answer: `{"error": {"message", "type", "param", "code"}}`.
/// Built by [`crate::api::error::ApiError`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub message: String,
    /// `invalid_request_error` for 4xx, `server_error` for 5xx, as OpenAI does.
    #[serde(rename = "type")]
    pub error_type: String,
    /// The request field at fault (`temperature`, `messages[2].role`), or `null`.
    pub param: Option<String>,
    /// A machine-readable reason (`model_not_found`, `context_length_exceeded`), or `null`.
    pub code: Option<String>,
}

// ---------------------------------------------------------------------------------------
// llama-server's tokenizer endpoints
// ---------------------------------------------------------------------------------------

/// `POST /tokenize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeRequest {
    pub content: String,
    /// Add the model's BOS/EOS tokens as a prompt would get them (llama-server default: false).
    #[serde(default)]
    pub add_special: bool,
    /// Answer `{id, piece}` objects instead of bare ids.
    #[serde(default)]
    pub with_pieces: bool,
}

/// `POST /detokenize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeRequest {
    pub tokens: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_json<T: Serialize>(x: &T) -> String {
        serde_json::to_string(x).unwrap()
    }

    #[test]
    fn chat_request_keeps_raw_values_and_ignores_unknown_fields() {
        let req: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi", "name": "x"}],
            "temperature": "hot",
            "max_tokens": null,
            "stop": ["a", "b"],
            "logit_bias": {"42": -100},
            "tools": [],
            "parallel_tool_calls": true,
            "metadata": {"a": 1},
        }))
        .unwrap();
        assert_eq!(req.model, Some(json!("m")));
        assert_eq!(
            req.messages,
            Some(json!([{"role": "user", "content": "hi", "name": "x"}]))
        );
        assert_eq!(req.common.temperature, Some(json!("hot")));
        assert_eq!(req.max_tokens, None, "null is absent");
        assert_eq!(req.common.stop, Some(json!(["a", "b"])));
        assert_eq!(req.common.logit_bias, Some(json!({"42": -100})));
        assert_eq!(req.tools, Some(json!([])));
        assert_eq!(req.common.top_p, None);
    }

    #[test]
    fn completion_request_keeps_raw_values() {
        let req: CompletionRequest = serde_json::from_value(json!({
            "model": "m", "prompt": ["a", "b"], "logprobs": 3, "echo": true, "suffix": "x",
            "best_of": 2, "unknown": 1
        }))
        .unwrap();
        assert_eq!(req.prompt, Some(json!(["a", "b"])));
        assert_eq!(req.logprobs, Some(json!(3)));
        assert_eq!(req.echo, Some(json!(true)));
        assert_eq!(req.suffix, Some(json!("x")));
        assert_eq!(req.best_of, Some(json!(2)));
    }

    #[test]
    fn only_non_objects_fail_to_deserialize() {
        assert!(serde_json::from_str::<ChatCompletionRequest>("[]").is_err());
        assert!(serde_json::from_str::<ChatCompletionRequest>("{").is_err());
        assert!(serde_json::from_str::<ChatCompletionRequest>("{}").is_ok());
        assert!(serde_json::from_str::<CompletionRequest>(r#"{"prompt": 5}"#).is_ok());
    }

    #[test]
    fn error_body_shape() {
        let e = ErrorResponse {
            error: ErrorObject {
                message: "m".into(),
                error_type: "invalid_request_error".into(),
                param: Some("temperature".into()),
                code: None,
            },
        };
        assert_eq!(
            to_json(&e),
            r#"{"error":{"message":"m","type":"invalid_request_error","param":"temperature","code":null}}"#
        );
    }

    #[test]
    fn tokenize_shapes() {
        let req: TokenizeRequest = serde_json::from_str(r#"{"content": "hi"}"#).unwrap();
        assert_eq!(
            req,
            TokenizeRequest {
                content: "hi".into(),
                add_special: false,
                with_pieces: false
            }
        );
        let req: TokenizeRequest =
            serde_json::from_str(r#"{"content": "hi", "add_special": true, "with_pieces": true}"#)
                .unwrap();
        assert!(req.add_special && req.with_pieces);
        assert!(serde_json::from_str::<TokenizeRequest>("{}").is_err());
    }

    #[test]
    fn detokenize_shapes() {
        let req: DetokenizeRequest = serde_json::from_str(r#"{"tokens": [1, 2]}"#).unwrap();
        assert_eq!(req.tokens, vec![1, 2]);
        assert!(serde_json::from_str::<DetokenizeRequest>(r#"{"tokens": [-1]}"#).is_err());
    }

    #[test]
    fn minus_infinity_goes_out_as_a_number() {
        assert_eq!(wire_logprob(f32::NEG_INFINITY), MIN_LOGPROB);
        assert_eq!(wire_logprob(-0.25), -0.25);
    }

    #[test]
    fn ids_have_openai_form() {
        let id = new_id(CHAT_COMPLETION_ID_PREFIX);
        assert!(id.starts_with("chatcmpl-"));
        assert_eq!(id.len(), "chatcmpl-".len() + 29);
        assert!(id[9..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(id, new_id(CHAT_COMPLETION_ID_PREFIX));
        assert!(new_id(COMPLETION_ID_PREFIX).starts_with("cmpl-"));
    }
}
