//! Turns an OpenAI request ([`crate::openai`]) into a [`ValidRequest`]: checks each
//! field's type and range, applies OpenAI's defaults and the server's limits, and refuses
//! the fields candor does not implement yet.
//!
//! Every error names its param (`temperature`, `messages[2].role`, `stop[1]`) and carries
//! one of OpenAI's error codes. This file holds the entry points and what a request
//! becomes; the checks live by subject: `sampling.rs` (the fields both endpoints share),
//! `messages.rs` (chat messages and text prompts), `reasoning.rs` (the thinking
//! controls), over the typed reads of `values.rs`. What needs the tokenizer (the prompt's length
//! against the context) is [`crate::prompt`]'s; how errors become HTTP answers is the
//! API's.

mod messages;
mod reasoning;
mod sampling;
mod structured;
mod tools;
mod values;

use crate::engine::sampler::SamplingParams;
use crate::openai::{ChatCompletionRequest, CompletionRequest, DetokenizeRequest};
use crate::reasoning::ReasoningRequest;
use crate::tools::ToolRequest;
use serde_json::{Map, Value};
pub use structured::RequestGrammar;
use values::{boolean, integer_in, invalid, string, wrong_type};

/// Upper bound of `n`.
pub const MAX_N: usize = 16;
/// Upper bound of the chat API's `top_logprobs`.
pub const MAX_TOP_LOGPROBS: usize = 20;
/// Upper bound of the legacy completions API's `logprobs` (OpenAI's is 5; vLLM's 20,
/// which scoring tools such as lm-evaluation-harness use).
pub const MAX_COMPLETION_LOGPROBS: usize = 20;
/// Most stop sequences a request may give.
pub const MAX_STOP: usize = 4;
/// `max_tokens` of a text completion that sets none, as OpenAI's legacy API.
pub const DEFAULT_COMPLETION_MAX_TOKENS: usize = 16;

/// What validation needs to know about the served model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The only value `model` may take.
    pub served_model_name: String,
    /// Prompt and completion together; `max_tokens` above it can never be honoured.
    pub context_length: usize,
    /// `logit_bias` keys must be token ids below it.
    pub vocab_size: usize,
    /// `max_tokens` for requests that set none (`--max-tokens`); `None`: up to the
    /// context for chat, OpenAI's 16 for text completions.
    pub default_max_tokens: Option<usize>,
}

/// The prompt material of a request, before templating and tokenization.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Messages as sent (each checked: an object with a known role and text content),
    /// for the chat template.
    Chat {
        messages: Vec<Value>,
        /// Extra variables for the chat template (`chat_template_kwargs`).
        chat_template_kwargs: Map<String, Value>,
    },
    /// One or more prompts; each yields `n` choices.
    Completion {
        prompts: Vec<CompletionPrompt>,
        /// The returned text starts with the prompt.
        echo: bool,
    },
}

/// One prompt of a text completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionPrompt {
    /// Text, tokenized with the model's BOS where it wants one.
    Text(String),
    /// Token ids, fed to the model as they are.
    Tokens(Vec<u32>),
}

/// A request whose values are all checked, with defaults applied. The engine consumes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    pub input: Input,
    /// Choices per prompt, sampled independently; 1..=[`MAX_N`].
    pub n: usize,
    /// `None`: up to the end of the context.
    pub max_tokens: Option<usize>,
    pub sampling: SamplingParams,
    /// Non-empty strings that end a choice; at most [`MAX_STOP`].
    pub stop: Vec<String>,
    pub stream: bool,
    /// Send a final usage chunk (`stream_options.include_usage`); only ever true when
    /// streaming.
    pub include_usage: bool,
    /// `Some(k)`: return the chosen token's logprob and the `k` most likely alternatives.
    pub logprobs: Option<usize>,
    /// Generate past end-of-sequence tokens, until `max_tokens` or a stop string.
    pub ignore_eos: bool,
    /// Chat only: how to show and bound the thinking.
    pub reasoning: ReasoningRequest,
    /// What the answer must match (structured output), if anything.
    pub grammar: Option<RequestGrammar>,
    /// Chat only: the tools the model may call.
    pub tools: Option<ToolRequest>,
}

/// Why a request was refused. Each variant carries OpenAI's `message`, the `param` at
/// fault and a `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A value of the wrong type, out of range or malformed, or a required one missing (400).
    #[error("{message}")]
    Invalid {
        message: String,
        param: String,
        code: &'static str,
    },
    /// A field or value candor does not implement yet (400).
    #[error("{message}")]
    Unsupported {
        message: String,
        param: String,
        code: &'static str,
    },
    /// `model` is not the served model (404).
    #[error("{message}")]
    ModelNotFound {
        message: String,
        param: String,
        code: &'static str,
    },
}

impl ValidationError {
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. }
            | Self::Unsupported { message, .. }
            | Self::ModelNotFound { message, .. } => message,
        }
    }

    pub fn param(&self) -> &str {
        match self {
            Self::Invalid { param, .. }
            | Self::Unsupported { param, .. }
            | Self::ModelNotFound { param, .. } => param,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Unsupported { code, .. }
            | Self::ModelNotFound { code, .. } => code,
        }
    }
}

/// Checks a `/v1/chat/completions` request.
pub fn validate_chat(
    req: &ChatCompletionRequest,
    limits: &Limits,
) -> Result<ValidRequest, ValidationError> {
    model(&req.model, limits)?;
    unsupported(&req.functions, "functions", |_| false)?;
    unsupported(&req.function_call, "function_call", |v| v == "none")?;
    unsupported(&req.audio, "audio", |_| false)?;
    let grammar = structured::grammar(&req.common, req.response_format.as_ref())?;
    let tools = tools::tools(req)?;
    if let (Some(g), Some(t)) = (&grammar, &tools) {
        if t.forced().is_some() {
            return Err(invalid(
                &g.param,
                "invalid_value",
                format!(
                    "'{}' and a 'tool_choice' that forces a call cannot be used together: \
                     the answer is the call.",
                    g.param
                ),
            ));
        }
    }

    let messages = messages::messages(&req.messages)?;
    let chat_template_kwargs = match &req.chat_template_kwargs {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => return Err(wrong_type("chat_template_kwargs", "an object", other)),
    };

    let max_tokens = sampling::token_limit(&req.max_tokens, "max_tokens", limits)?;
    let max_completion_tokens =
        sampling::token_limit(&req.max_completion_tokens, "max_completion_tokens", limits)?;
    let max_tokens = max_completion_tokens
        .or(max_tokens)
        .or(limits.default_max_tokens);

    let logprobs = boolean(&req.logprobs, "logprobs")?.unwrap_or(false);
    let top_logprobs = integer_in(
        &req.top_logprobs,
        "top_logprobs",
        0,
        MAX_TOP_LOGPROBS as i128,
    )?;
    if top_logprobs.is_some() && !logprobs {
        return Err(invalid(
            "top_logprobs",
            "invalid_value",
            "'top_logprobs' requires 'logprobs' to be true.".into(),
        ));
    }
    let logprobs = logprobs.then(|| top_logprobs.unwrap_or(0) as usize);

    let common = sampling::common(&req.common, limits)?;
    let reasoning = reasoning::reasoning_fields(req)?;
    Ok(ValidRequest {
        reasoning,
        input: Input::Chat {
            messages,
            chat_template_kwargs,
        },
        n: common.n,
        max_tokens,
        sampling: common.sampling,
        stop: common.stop,
        stream: common.stream,
        include_usage: common.include_usage,
        logprobs,
        ignore_eos: common.ignore_eos,
        grammar,
        tools,
    })
}

/// Checks a `/v1/completions` request.
pub fn validate_completion(
    req: &CompletionRequest,
    limits: &Limits,
) -> Result<ValidRequest, ValidationError> {
    model(&req.model, limits)?;
    match &req.suffix {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(_) => {
            return Err(ValidationError::Unsupported {
                message: "'suffix' is not supported yet: candor completes text after the \
                          prompt but does not insert between a prompt and a suffix."
                    .into(),
                param: "suffix".into(),
                code: "unsupported_parameter",
            })
        }
    }

    let prompts = messages::prompts(&req.prompt)?;
    let echo = boolean(&req.echo, "echo")?.unwrap_or(false);
    // `max_tokens: 0` with `echo` scores the prompt without generating (as OpenAI's
    // legacy API and vLLM allow).
    let scoring = echo && req.max_tokens.as_ref().and_then(Value::as_i64) == Some(0);
    let max_tokens = match scoring {
        true => Some(0),
        false => sampling::token_limit(&req.max_tokens, "max_tokens", limits)?,
    }
    .or(limits.default_max_tokens)
    .or(Some(DEFAULT_COMPLETION_MAX_TOKENS));
    let logprobs = integer_in(
        &req.logprobs,
        "logprobs",
        0,
        MAX_COMPLETION_LOGPROBS as i128,
    )?
    .map(|k| k as usize);

    let common = sampling::common(&req.common, limits)?;
    let grammar = structured::grammar(&req.common, None)?;
    if let Some(best_of) = values::integer(&req.best_of, "best_of")? {
        if best_of != common.n as i128 {
            return Err(ValidationError::Unsupported {
                message: format!(
                    "'best_of' other than 'n' is not supported yet (got best_of {best_of}, n {}).",
                    common.n
                ),
                param: "best_of".into(),
                code: "unsupported_value",
            });
        }
    }
    Ok(ValidRequest {
        input: Input::Completion { prompts, echo },
        n: common.n,
        max_tokens,
        sampling: common.sampling,
        stop: common.stop,
        stream: common.stream,
        include_usage: common.include_usage,
        logprobs,
        ignore_eos: common.ignore_eos,
        reasoning: ReasoningRequest::default(),
        grammar,
        tools: None,
    })
}

/// Checks that every id of a `/detokenize` request is in the vocabulary.
pub fn validate_detokenize(
    req: &DetokenizeRequest,
    limits: &Limits,
) -> Result<(), ValidationError> {
    match req
        .tokens
        .iter()
        .position(|&id| id as usize >= limits.vocab_size)
    {
        None => Ok(()),
        Some(i) => Err(invalid(
            &format!("tokens[{i}]"),
            "invalid_value",
            format!(
                "Invalid 'tokens[{i}]': token id {} is outside the vocabulary of {} tokens.",
                req.tokens[i], limits.vocab_size
            ),
        )),
    }
}

/// The served model, named or left out (llama-server and vLLM serve their one model to
/// requests without `model`); any other name is a 404.
fn model(value: &Option<Value>, limits: &Limits) -> Result<(), ValidationError> {
    let Some(name) = string(value, "model")? else {
        return Ok(());
    };
    if name == limits.served_model_name {
        return Ok(());
    }
    Err(ValidationError::ModelNotFound {
        message: format!(
            "The model '{name}' does not exist. This server serves '{}'.",
            limits.served_model_name
        ),
        param: "model".into(),
        code: "model_not_found",
    })
}

/// A field candor does not implement: refused unless absent or `accept`ed (a value that
/// asks for nothing, like `tool_choice: "none"`).
fn unsupported(
    value: &Option<Value>,
    param: &str,
    accept: impl Fn(&Value) -> bool,
) -> Result<(), ValidationError> {
    match value {
        Some(v) if !accept(v) => Err(ValidationError::Unsupported {
            message: format!("'{param}' is not supported yet."),
            param: param.into(),
            code: "unsupported_parameter",
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::test_support::*;
    use serde_json::json;

    #[test]
    fn chat_defaults() {
        let v = chat(json!({})).unwrap();
        assert_eq!(
            v,
            ValidRequest {
                input: Input::Chat {
                    messages: vec![json!({"role": "user", "content": "hi"})],
                    chat_template_kwargs: Map::new(),
                },
                n: 1,
                max_tokens: None,
                sampling: SamplingParams::default(),
                stop: vec![],
                stream: false,
                include_usage: false,
                logprobs: None,
                ignore_eos: false,
                reasoning: ReasoningRequest::default(),
                grammar: None,
                tools: None,
            }
        );
        assert_eq!(v.sampling.temperature, 1.0);
        assert_eq!(v.sampling.top_p, 1.0);
    }

    #[test]
    fn chat_every_field() {
        let v = chat(json!({
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "developer", "content": "d"},
                {"role": "user", "content": [{"type": "text", "text": "u"}], "name": "ann"},
                {"role": "assistant", "content": null},
                {"role": "tool", "content": "t", "tool_call_id": "1"}
            ],
            "max_tokens": 100, "max_completion_tokens": 50, "temperature": 0.5, "top_p": 0.9,
            "n": 3, "stop": ["a", "b"], "seed": 7, "presence_penalty": 0.5,
            "frequency_penalty": -0.5, "logit_bias": {"5": 10, "3": -100.0}, "logprobs": true,
            "top_logprobs": 4, "stream": true, "stream_options": {"include_usage": true},
            "user": "u1", "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
            "chat_template_kwargs": {"enable_thinking": false}, "ignore_eos": true,
            "parallel_tool_calls": false, "store": false
        }))
        .unwrap();
        let Input::Chat {
            messages,
            chat_template_kwargs,
        } = &v.input
        else {
            panic!("chat input")
        };
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[2]["name"], "ann", "messages are kept as sent");
        assert_eq!(chat_template_kwargs["enable_thinking"], false);
        assert_eq!(v.n, 3);
        assert_eq!(v.max_tokens, Some(50), "max_completion_tokens wins");
        assert_eq!(
            v.sampling,
            SamplingParams {
                temperature: 0.5,
                top_k: 40,
                top_p: 0.9,
                min_p: 0.05,
                repetition_penalty: 1.1,
                presence_penalty: 0.5,
                frequency_penalty: -0.5,
                logit_bias: vec![(5, 10.0), (3, -100.0)],
                seed: Some(7),
            }
        );
        assert_eq!(v.stop, vec!["a", "b"]);
        assert!(v.stream && v.include_usage && v.ignore_eos);
        assert_eq!(v.logprobs, Some(4));
    }

    #[test]
    fn nulls_are_absent_and_unknown_fields_ignored() {
        let v = chat(json!({
            "temperature": null, "n": null, "stop": null, "max_tokens": null, "tools": null,
            "response_format": null, "logit_bias": null, "stream_options": null,
            "some_future_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(v, chat(json!({})).unwrap());
    }

    #[test]
    fn model_must_be_the_served_one() {
        // Left out, it is the served one.
        assert_eq!(chat_without("model").unwrap(), chat(json!({})).unwrap());
        assert_eq!(
            refused(chat(json!({"model": 5}))),
            is("model", "invalid_type")
        );
        let e = chat(json!({"model": "gpt-4o"})).unwrap_err();
        assert_eq!(
            e,
            ValidationError::ModelNotFound {
                message: "The model 'gpt-4o' does not exist. This server serves 'smollm2'.".into(),
                param: "model".into(),
                code: "model_not_found",
            }
        );
        assert!(matches!(
            completion(json!({"model": "SmolLM2"})),
            Err(ValidationError::ModelNotFound { .. })
        ));
    }

    #[test]
    fn chat_logprobs() {
        assert_eq!(chat(json!({"logprobs": true})).unwrap().logprobs, Some(0));
        assert_eq!(chat(json!({"logprobs": false})).unwrap().logprobs, None);
        assert_eq!(
            chat(json!({"logprobs": true, "top_logprobs": 20}))
                .unwrap()
                .logprobs,
            Some(20)
        );
        assert_eq!(
            chat(json!({"logprobs": true, "top_logprobs": 0}))
                .unwrap()
                .logprobs,
            Some(0)
        );
        assert_eq!(
            refused(chat(json!({"logprobs": true, "top_logprobs": 21}))),
            is("top_logprobs", "integer_above_max_value")
        );
        assert_eq!(
            refused(chat(json!({"logprobs": true, "top_logprobs": -1}))),
            is("top_logprobs", "integer_below_min_value")
        );
        for logprobs in [json!(false), json!(null)] {
            let e = chat(json!({"logprobs": logprobs, "top_logprobs": 2})).unwrap_err();
            assert_eq!((e.param(), e.code()), ("top_logprobs", "invalid_value"));
            assert_eq!(
                e.message(),
                "'top_logprobs' requires 'logprobs' to be true."
            );
        }
    }

    #[test]
    fn unsupported_fields_are_named() {
        for (field, value) in [
            ("functions", json!([{"name": "f"}])),
            ("function_call", json!("auto")),
            ("audio", json!({"voice": "alloy", "format": "wav"})),
        ] {
            let e = chat(json!({ field: value })).unwrap_err();
            assert_eq!(
                e,
                ValidationError::Unsupported {
                    message: format!("'{field}' is not supported yet."),
                    param: field.into(),
                    code: "unsupported_parameter",
                },
                "{field}: {value}"
            );
        }
        assert!(chat(json!({"function_call": "none"})).is_ok());
    }

    #[test]
    fn tools_and_tool_choice() {
        use crate::tools::ToolChoice;
        let f = json!([{"type": "function", "function": {"name": "f"}}]);
        let tools = |v: Value| chat(v).unwrap().tools;
        let t = tools(json!({"tools": f})).unwrap();
        assert_eq!(
            (t.tools[0].name.as_str(), &t.choice, t.parallel),
            ("f", &ToolChoice::Auto, true)
        );
        assert_eq!(
            t.tools[0].parameters,
            json!({"type": "object", "properties": {}})
        );
        let named = json!({"type": "function", "function": {"name": "f"}});
        let t = tools(json!({"tools": f, "tool_choice": named, "parallel_tool_calls": false}));
        assert_eq!(
            t.map(|t| (t.choice, t.parallel)),
            Some((ToolChoice::Named("f".into()), false))
        );
        assert_eq!(tools(json!({"tools": []})), None);
        assert_eq!(tools(json!({"tool_choice": "none"})), None);
        assert_eq!(
            refused(chat(
                json!({"tools": f, "tool_choice": {"type": "function", "function": {"name": "g"}}})
            )),
            is("tool_choice.function.name", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"tools": [{"type": "code_interpreter"}]}))),
            is("tools[0].type", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"tools": [f[0], f[0]]}))),
            is("tools[1].function.name", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"tool_choice": "required"}))),
            is("tool_choice", "invalid_value")
        );
    }

    #[test]
    fn response_format() {
        use crate::constraint::Grammar;
        let grammar = |v: Value| chat(v).unwrap().grammar.map(|g| (g.grammar, g.param));
        assert_eq!(grammar(json!({"response_format": {"type": "text"}})), None);
        assert_eq!(
            grammar(json!({"response_format": {"type": "json_object"}})),
            Some((Grammar::JsonObject, "response_format".into()))
        );
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        assert_eq!(
            grammar(json!({"response_format": {"type": "json_schema",
                "json_schema": {"name": "x", "schema": schema, "strict": true}}})),
            Some((Grammar::JsonSchema(schema), "response_format".into()))
        );
        assert_eq!(
            grammar(json!({"guided_choice": ["yes", "no"]})),
            Some((
                Grammar::Choice(vec!["yes".into(), "no".into()]),
                "guided_choice".into()
            ))
        );
        assert_eq!(
            grammar(json!({"structured_outputs": {"regex": "[0-9]+"}})),
            Some((
                Grammar::Regex("[0-9]+".into()),
                "structured_outputs.regex".into()
            ))
        );
        assert_eq!(
            refused(chat(json!({"response_format": {"type": "xml"}}))),
            is("response_format", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"response_format": {"type": "json_schema"}}))),
            is("response_format.json_schema", "missing_required_parameter")
        );
        assert_eq!(
            refused(chat(json!({"response_format": "json"}))),
            is("response_format", "invalid_type")
        );
        assert_eq!(
            refused(chat(json!({"response_format": {}}))),
            is("response_format.type", "missing_required_parameter")
        );
        assert_eq!(
            refused(chat(json!({"guided_choice": []}))),
            is("guided_choice", "invalid_type")
        );
        assert_eq!(
            refused(chat(
                json!({"guided_regex": "a", "response_format": {"type": "json_object"}})
            )),
            is("guided_regex", "invalid_value")
        );
    }

    #[test]
    fn completion_defaults() {
        let v = completion(json!({})).unwrap();
        assert_eq!(
            v,
            ValidRequest {
                input: Input::Completion {
                    prompts: vec![CompletionPrompt::Text("hi".into())],
                    echo: false,
                },
                n: 1,
                max_tokens: Some(DEFAULT_COMPLETION_MAX_TOKENS),
                sampling: SamplingParams::default(),
                stop: vec![],
                stream: false,
                include_usage: false,
                logprobs: None,
                ignore_eos: false,
                reasoning: ReasoningRequest::default(),
                grammar: None,
                tools: None,
            }
        );
        let server_default = Limits {
            default_max_tokens: Some(64),
            ..limits()
        };
        assert_eq!(
            completion_with(json!({}), &server_default)
                .unwrap()
                .max_tokens,
            Some(64)
        );
        assert_eq!(
            completion(json!({"max_tokens": 100})).unwrap().max_tokens,
            Some(100)
        );
        assert_eq!(
            refused(completion(json!({"max_tokens": 0}))),
            is("max_tokens", "integer_below_min_value")
        );
    }

    #[test]
    fn completion_every_field() {
        let v = completion(json!({
            "prompt": ["a", "b"], "echo": true, "logprobs": 5, "n": 2, "best_of": 2,
            "temperature": 0, "top_p": 0.5, "top_k": 3, "min_p": 0.1, "repetition_penalty": 1.2,
            "presence_penalty": 1, "frequency_penalty": 1, "logit_bias": {"1": 1}, "seed": 9,
            "stop": ["x"], "stream": true, "user": "u", "ignore_eos": true, "suffix": ""
        }))
        .unwrap();
        assert_eq!(
            v.input,
            Input::Completion {
                prompts: vec![
                    CompletionPrompt::Text("a".into()),
                    CompletionPrompt::Text("b".into())
                ],
                echo: true
            }
        );
        assert_eq!(v.logprobs, Some(5));
        assert_eq!(v.n, 2);
        assert!(v.sampling.is_greedy());
        assert_eq!(v.sampling.top_k, 3);
        assert_eq!(v.sampling.logit_bias, vec![(1, 1.0)]);
        assert_eq!(v.sampling.seed, Some(9));
        assert!(v.stream && v.ignore_eos && !v.include_usage);
    }

    #[test]
    fn completion_logprobs_echo_suffix_best_of() {
        assert_eq!(
            completion(json!({"logprobs": 0})).unwrap().logprobs,
            Some(0)
        );
        assert_eq!(
            completion(json!({"logprobs": 20})).unwrap().logprobs,
            Some(20)
        );
        assert_eq!(
            refused(completion(json!({"logprobs": 21}))),
            is("logprobs", "integer_above_max_value")
        );
        // Scoring a prompt: max_tokens 0 only with echo.
        let scoring = completion(json!({"echo": true, "max_tokens": 0, "logprobs": 1}));
        assert_eq!(scoring.unwrap().max_tokens, Some(0));
        assert_eq!(
            refused(completion(json!({"max_tokens": 0}))),
            is("max_tokens", "integer_below_min_value")
        );
        assert_eq!(
            refused(completion(json!({"logprobs": -1}))),
            is("logprobs", "integer_below_min_value")
        );
        assert_eq!(
            refused(completion(json!({"logprobs": true}))),
            is("logprobs", "invalid_type")
        );
        assert_eq!(
            refused(completion(json!({"echo": "yes"}))),
            is("echo", "invalid_type")
        );
        let e = completion(json!({"suffix": "end"})).unwrap_err();
        assert!(matches!(e, ValidationError::Unsupported { .. }));
        assert_eq!((e.param(), e.code()), ("suffix", "unsupported_parameter"));
        assert!(e.message().starts_with("'suffix' is not supported yet"));
        assert_eq!(
            refused(completion(json!({"suffix": 5}))),
            is("suffix", "unsupported_parameter")
        );
        assert!(completion(json!({"suffix": null})).is_ok());
        assert!(completion(json!({"best_of": 1})).is_ok());
        assert!(completion(json!({"best_of": 3, "n": 3})).is_ok());
        assert_eq!(
            refused(completion(json!({"best_of": 3}))),
            is("best_of", "unsupported_value")
        );
        assert_eq!(
            refused(completion(json!({"best_of": "3"}))),
            is("best_of", "invalid_type")
        );
    }

    #[test]
    fn detokenize_ids_must_be_in_the_vocabulary() {
        let ok = DetokenizeRequest {
            tokens: vec![0, 999],
        };
        assert_eq!(validate_detokenize(&ok, &limits()), Ok(()));
        let bad = DetokenizeRequest {
            tokens: vec![1, 2, 1000],
        };
        let e = validate_detokenize(&bad, &limits()).unwrap_err();
        assert_eq!((e.param(), e.code()), ("tokens[2]", "invalid_value"));
        assert_eq!(
            e.message(),
            "Invalid 'tokens[2]': token id 1000 is outside the vocabulary of 1000 tokens."
        );
    }
}
