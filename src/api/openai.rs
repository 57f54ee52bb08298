//! OpenAI's wire types for `/v1/chat/completions`, `/v1/completions` and `/v1/models`,
//! the error body, and llama-server's `/tokenize` and `/detokenize`.
//!
//! Requests keep every field as an optional raw [`Value`]: a value of the wrong type (say
//! `"temperature": "hot"`) must come back as a 400 naming its param, which serde cannot
//! do, so [`crate::validate`] checks types, ranges and defaults. serde only rejects a body
//! that is not JSON or not an object. Unknown fields are ignored, as OpenAI does.
//!
//! Responses serialize with OpenAI's field names and order. A field is skipped only
//! where OpenAI omits it (`delta.role` after a choice's first chunk, `delta.content` in
//! the final chunk); `logprobs: null`, `finish_reason: null` and `usage: null` are sent.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

/// A fresh response id: `prefix`, a dash and 29 random letters and digits, like
/// OpenAI's (`new_id(CHAT_COMPLETION_ID_PREFIX)` gives `chatcmpl-…`).
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(29)
        .map(char::from)
        .collect();
    format!("{prefix}-{suffix}")
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
}

/// `POST /v1/chat/completions`. Each field holds the raw JSON value (`None` when absent or
/// `null`); the doc says the type [`crate::validate::validate_chat`] expects.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ChatCompletionRequest {
    /// String: must equal the served model name.
    pub model: Option<Value>,
    /// Array of message objects, kept raw for the chat template.
    pub messages: Option<Value>,
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

    /// Not supported yet: captured so that validation names it in a 400.
    pub tools: Option<Value>,
    /// Not supported yet, except `"none"`.
    pub tool_choice: Option<Value>,
    /// Not supported yet (the deprecated form of `tools`).
    pub functions: Option<Value>,
    /// Not supported yet, except `"none"`.
    pub function_call: Option<Value>,
    /// Not supported yet, except `{"type": "text"}` (the default).
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
// Responses shared by both endpoints
// ---------------------------------------------------------------------------------------

/// Why a choice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` or the end of the context.
    Length,
}

/// Token counts of a request (all choices together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl Usage {
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Chat completions
// ---------------------------------------------------------------------------------------

/// A non-streamed answer of `/v1/chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-…`, see [`new_id`].
    pub id: String,
    /// Always [`CHAT_COMPLETION_OBJECT`].
    pub object: String,
    /// Unix time in seconds.
    pub created: u64,
    pub model: String,
    /// Identifies the backend configuration; `null` when not known.
    pub system_fingerprint: Option<String>,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: ChatCompletionMessage,
    /// `null` unless the request asked for `logprobs`.
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: FinishReason,
}

/// The assistant's message in a non-streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionMessage {
    /// Always `"assistant"`.
    pub role: String,
    pub content: Option<String>,
    /// The reasoning trace of a thinking model (the DeepSeek / vLLM extension); absent for
    /// other models, as OpenAI has no such field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

impl ChatCompletionMessage {
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: "assistant".into(),
            content: Some(content.into()),
            reasoning_content: None,
        }
    }
}

/// One event of a streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// The same for every chunk of one completion.
    pub id: String,
    /// Always [`CHAT_COMPLETION_CHUNK_OBJECT`].
    pub object: String,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: Option<String>,
    /// Empty in the usage chunk that `stream_options.include_usage` adds at the end.
    pub choices: Vec<ChatChunkChoice>,
    /// `null` except in that final usage chunk.
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChunkChoice {
    pub index: usize,
    pub delta: ChatDelta,
    pub logprobs: Option<ChatLogprobs>,
    /// `null` until the choice's last chunk.
    pub finish_reason: Option<FinishReason>,
}

/// What a chunk adds to a choice's message. The first chunk of a choice carries `role`;
/// the last one may be empty (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Reasoning text of a thinking model, streamed apart from `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

/// `choices[].logprobs` of the chat API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Option<Vec<ChatTokenLogprob>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTokenLogprob {
    /// The token's text (lossy UTF-8 where the token is part of a character).
    pub token: String,
    /// Natural log of the probability; minus infinity is sent as [`MIN_LOGPROB`].
    #[serde(serialize_with = "serialize_logprob")]
    pub logprob: f32,
    /// The token's exact UTF-8 bytes, so clients can join partial characters.
    pub bytes: Option<Vec<u8>>,
    /// The most likely tokens at this position, most likely first (`top_logprobs` many).
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    #[serde(serialize_with = "serialize_logprob")]
    pub logprob: f32,
    pub bytes: Option<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------
// Text completions
// ---------------------------------------------------------------------------------------

/// An answer of `/v1/completions`, and each event of its stream (the object is the same;
/// streamed events have `finish_reason: null` until a choice ends, and `usage: null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// `cmpl-…`, see [`new_id`].
    pub id: String,
    /// Always [`TEXT_COMPLETION_OBJECT`].
    pub object: String,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: Option<String>,
    pub choices: Vec<CompletionChoice>,
    /// Always set in a non-streamed answer.
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionChoice {
    pub text: String,
    /// With several prompts and `n`, choice `p * n + i` is prompt `p`'s `i`-th sample.
    pub index: usize,
    pub logprobs: Option<CompletionLogprobs>,
    pub finish_reason: Option<FinishReason>,
}

/// The legacy logprobs shape: parallel arrays, one entry per token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    /// `null` for the first token of an echoed prompt, which has no logprob.
    #[serde(serialize_with = "serialize_logprob_list")]
    pub token_logprobs: Vec<Option<f32>>,
    /// Per token: the `logprobs` most likely tokens, as an object token -> logprob.
    pub top_logprobs: Vec<Option<TopLogprobMap>>,
    /// Character offset of each token in the choice's text.
    pub text_offset: Vec<usize>,
}

/// An ordered map token -> logprob, written as a JSON object most likely token first.
/// (Two ids with the same text share one key, as in OpenAI's API.)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopLogprobMap(pub Vec<(String, f32)>);

impl Serialize for TopLogprobMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (token, logprob) in &self.0 {
            map.serialize_entry(token, &finite_logprob(*logprob))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TopLogprobMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        map.into_iter()
            .map(|(token, v)| match v.as_f64() {
                Some(x) => Ok((token, x as f32)),
                None => Err(serde::de::Error::custom("a logprob must be a number")),
            })
            .collect::<Result<_, _>>()
            .map(TopLogprobMap)
    }
}

fn finite_logprob(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        MIN_LOGPROB
    }
}

fn serialize_logprob<S: Serializer>(x: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f32(finite_logprob(*x))
}

fn serialize_logprob_list<S: Serializer>(
    xs: &[Option<f32>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(xs.iter().map(|x| x.map(finite_logprob)))
}

// ---------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------

/// One entry of `GET /v1/models`, and the answer of `GET /v1/models/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    /// Always [`MODEL_OBJECT`].
    pub object: String,
    /// Unix time in seconds (when the model was loaded).
    pub created: u64,
    pub owned_by: String,
}

impl Model {
    pub fn new(id: impl Into<String>, created: u64, owned_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: MODEL_OBJECT.into(),
            created,
            owned_by: owned_by.into(),
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always [`LIST_OBJECT`].
    pub object: String,
    pub data: Vec<Model>,
}

impl ModelList {
    pub fn new(data: Vec<Model>) -> Self {
        Self {
            object: LIST_OBJECT.into(),
            data,
        }
    }
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeResponse {
    pub tokens: Vec<TokenizeToken>,
}

/// A bare id, or with `with_pieces` the id and its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenizeToken {
    Id(u32),
    WithPiece { id: u32, piece: TokenPiece },
}

/// A token's text, or its bytes where they are not valid UTF-8 on their own
/// (as llama-server answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenPiece {
    Text(String),
    Bytes(Vec<u8>),
}

impl TokenPiece {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => TokenPiece::Text(text),
            Err(e) => TokenPiece::Bytes(e.into_bytes()),
        }
    }
}

/// `POST /detokenize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeRequest {
    pub tokens: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeResponse {
    pub content: String,
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
    fn chat_completion_shape() {
        let c = ChatCompletion {
            id: "chatcmpl-1".into(),
            object: CHAT_COMPLETION_OBJECT.into(),
            created: 1700000000,
            model: "m".into(),
            system_fingerprint: None,
            choices: vec![ChatChoice {
                index: 0,
                message: ChatCompletionMessage::assistant("Hello"),
                logprobs: None,
                finish_reason: FinishReason::Stop,
            }],
            usage: Usage::new(5, 2),
        };
        assert_eq!(
            to_json(&c),
            r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":null,"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#
        );
        let back: ChatCompletion = serde_json::from_str(&to_json(&c)).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn reasoning_content_appears_only_when_set() {
        let mut m = ChatCompletionMessage::assistant("a");
        m.reasoning_content = Some("r".into());
        assert_eq!(
            to_json(&m),
            r#"{"role":"assistant","content":"a","reasoning_content":"r"}"#
        );
        let none = ChatCompletionMessage {
            role: "assistant".into(),
            content: None,
            reasoning_content: None,
        };
        assert_eq!(to_json(&none), r#"{"role":"assistant","content":null}"#);
    }

    fn chunk(choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: CHAT_COMPLETION_CHUNK_OBJECT.into(),
            created: 1,
            model: "m".into(),
            system_fingerprint: Some("fp".into()),
            choices,
            usage,
        }
    }

    #[test]
    fn chunk_shapes_first_middle_last_and_usage() {
        let first = chunk(
            vec![ChatChunkChoice {
                index: 0,
                delta: ChatDelta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    reasoning_content: None,
                },
                logprobs: None,
                finish_reason: None,
            }],
            None,
        );
        assert_eq!(
            to_json(&first),
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#
        );
        let middle = ChatChunkChoice {
            index: 1,
            delta: ChatDelta {
                content: Some("Hi".into()),
                ..ChatDelta::default()
            },
            logprobs: None,
            finish_reason: None,
        };
        assert_eq!(
            to_json(&middle),
            r#"{"index":1,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}"#
        );
        let last = ChatChunkChoice {
            index: 0,
            delta: ChatDelta::default(),
            logprobs: None,
            finish_reason: Some(FinishReason::Length),
        };
        assert_eq!(
            to_json(&last),
            r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}"#
        );
        let usage = chunk(vec![], Some(Usage::new(3, 4)));
        assert_eq!(
            to_json(&usage),
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#
        );
        let back: ChatCompletionChunk = serde_json::from_str(&to_json(&first)).unwrap();
        assert_eq!(back, first);
    }

    #[test]
    fn chat_logprobs_shape_and_infinity() {
        let lp = ChatLogprobs {
            content: Some(vec![ChatTokenLogprob {
                token: "Hi".into(),
                logprob: -0.25,
                bytes: Some(vec![72, 105]),
                top_logprobs: vec![
                    TopLogprob {
                        token: "Hi".into(),
                        logprob: -0.25,
                        bytes: Some(vec![72, 105]),
                    },
                    TopLogprob {
                        token: "\u{fffd}".into(),
                        logprob: f32::NEG_INFINITY,
                        bytes: Some(vec![0xe2]),
                    },
                ],
            }]),
        };
        assert_eq!(
            to_json(&lp),
            r#"{"content":[{"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.25,"bytes":[72,105]},{"token":"�","logprob":-9999.0,"bytes":[226]}]}]}"#
        );
        let back: ChatLogprobs = serde_json::from_str(&to_json(&lp)).unwrap();
        assert_eq!(
            back.content.unwrap()[0].top_logprobs[1].logprob,
            MIN_LOGPROB
        );
    }

    #[test]
    fn completion_shape_with_legacy_logprobs() {
        let c = Completion {
            id: "cmpl-1".into(),
            object: TEXT_COMPLETION_OBJECT.into(),
            created: 2,
            model: "m".into(),
            system_fingerprint: None,
            choices: vec![CompletionChoice {
                text: "Hi there".into(),
                index: 0,
                logprobs: Some(CompletionLogprobs {
                    tokens: vec!["Hi".into(), " there".into()],
                    token_logprobs: vec![None, Some(f32::NEG_INFINITY)],
                    top_logprobs: vec![
                        None,
                        Some(TopLogprobMap(vec![
                            ("z".into(), -0.5),
                            (" there".into(), -1.5),
                        ])),
                    ],
                    text_offset: vec![0, 2],
                }),
                finish_reason: Some(FinishReason::Length),
            }],
            usage: Some(Usage::new(1, 1)),
        };
        assert_eq!(
            to_json(&c),
            r#"{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","system_fingerprint":null,"choices":[{"text":"Hi there","index":0,"logprobs":{"tokens":["Hi"," there"],"token_logprobs":[null,-9999.0],"top_logprobs":[null,{"z":-0.5," there":-1.5}],"text_offset":[0,2]},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#
        );
        let back: Completion = serde_json::from_str(&to_json(&c)).unwrap();
        let lp = back.choices[0].logprobs.as_ref().unwrap();
        assert_eq!(
            lp.top_logprobs[1].as_ref().unwrap().0[0],
            ("z".into(), -0.5)
        );
    }

    #[test]
    fn streamed_completion_event_shape() {
        let c = Completion {
            id: "cmpl-1".into(),
            object: TEXT_COMPLETION_OBJECT.into(),
            created: 2,
            model: "m".into(),
            system_fingerprint: None,
            choices: vec![CompletionChoice {
                text: "Hi".into(),
                index: 3,
                logprobs: None,
                finish_reason: None,
            }],
            usage: None,
        };
        assert_eq!(
            to_json(&c),
            r#"{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","system_fingerprint":null,"choices":[{"text":"Hi","index":3,"logprobs":null,"finish_reason":null}],"usage":null}"#
        );
    }

    #[test]
    fn model_list_shape() {
        let list = ModelList::new(vec![Model::new("smollm2", 1700000000, "candor")]);
        assert_eq!(
            to_json(&list),
            r#"{"object":"list","data":[{"id":"smollm2","object":"model","created":1700000000,"owned_by":"candor"}]}"#
        );
        assert_eq!(
            serde_json::from_str::<ModelList>(&to_json(&list)).unwrap(),
            list
        );
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

        let plain = TokenizeResponse {
            tokens: vec![TokenizeToken::Id(1), TokenizeToken::Id(2)],
        };
        assert_eq!(to_json(&plain), r#"{"tokens":[1,2]}"#);
        let pieces = TokenizeResponse {
            tokens: vec![
                TokenizeToken::WithPiece {
                    id: 7,
                    piece: TokenPiece::from_bytes(b"hi".to_vec()),
                },
                TokenizeToken::WithPiece {
                    id: 8,
                    piece: TokenPiece::from_bytes(vec![0xe2, 0x82]),
                },
            ],
        };
        assert_eq!(
            to_json(&pieces),
            r#"{"tokens":[{"id":7,"piece":"hi"},{"id":8,"piece":[226,130]}]}"#
        );
        assert_eq!(
            serde_json::from_str::<TokenizeResponse>(&to_json(&pieces)).unwrap(),
            pieces
        );
    }

    #[test]
    fn detokenize_shapes() {
        let req: DetokenizeRequest = serde_json::from_str(r#"{"tokens": [1, 2]}"#).unwrap();
        assert_eq!(req.tokens, vec![1, 2]);
        assert!(serde_json::from_str::<DetokenizeRequest>(r#"{"tokens": [-1]}"#).is_err());
        let resp = DetokenizeResponse {
            content: "hi".into(),
        };
        assert_eq!(to_json(&resp), r#"{"content":"hi"}"#);
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
