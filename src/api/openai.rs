//! OpenAI's wire names and the request types of `/v1/chat/completions` and
//! `/v1/completions`, the error body, and llama-server's `/tokenize` and `/detokenize`.
//!
//! Requests keep every field as an optional raw [`Value`]: a value of the wrong type (say
//! `"temperature": "hot"`) must come back as a 400 naming its param, which serde cannot
//! do, so [`crate::validate`] checks types, ranges and defaults. serde only rejects a body
//! that is not JSON or not an object. Unknown fields are ignored, as OpenAI does.
//!
//! Responses are built where they are answered (`chat`, `completions`, `models`,
//! `generation`), with OpenAI's field names and the object names and ids defined here.

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
