//! Turns an OpenAI request ([`crate::api::openai`]) into a [`ValidRequest`]: checks each
//! field's type and range, applies OpenAI's defaults and the server's limits, and refuses
//! the fields candor does not implement yet.
//!
//! Every error names its param (`temperature`, `messages[2].role`, `stop[1]`) and carries
//! one of OpenAI's error codes. What needs the tokenizer (the prompt's length against the
//! context) is left to `prompt/`; how errors become HTTP answers is left to
//! [`crate::api::error`].

use crate::api::openai::{
    ChatCompletionRequest, CommonRequestFields, CompletionRequest, DetokenizeRequest,
};
use crate::engine::sampler::SamplingParams;
use crate::reasoning::{Effort, ReasoningRequest};
use serde_json::{Map, Value};

/// Upper bound of `n`.
pub const MAX_N: usize = 16;
/// Upper bound of the chat API's `top_logprobs`.
pub const MAX_TOP_LOGPROBS: usize = 20;
/// Upper bound of the legacy completions API's `logprobs`.
pub const MAX_COMPLETION_LOGPROBS: usize = 5;
/// Most stop sequences a request may give.
pub const MAX_STOP: usize = 4;
/// `max_tokens` of a text completion that sets none, as OpenAI's legacy API.
pub const DEFAULT_COMPLETION_MAX_TOKENS: usize = 16;

/// Roles a chat message may have.
const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

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
        prompts: Vec<String>,
        /// The returned text starts with the prompt.
        echo: bool,
    },
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
    unsupported(&req.tools, "tools", |_| false)?;
    unsupported(&req.tool_choice, "tool_choice", |v| v == "none")?;
    unsupported(&req.functions, "functions", |_| false)?;
    unsupported(&req.function_call, "function_call", |v| v == "none")?;
    unsupported(&req.audio, "audio", |_| false)?;
    response_format(&req.response_format)?;

    let messages = messages(&req.messages)?;
    let chat_template_kwargs = match &req.chat_template_kwargs {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => return Err(wrong_type("chat_template_kwargs", "an object", other)),
    };

    let max_tokens = token_limit(&req.max_tokens, "max_tokens", limits)?;
    let max_completion_tokens =
        token_limit(&req.max_completion_tokens, "max_completion_tokens", limits)?;
    let max_tokens = max_completion_tokens
        .or(max_tokens)
        .or(limits.default_max_tokens);

    let logprobs = boolean(&req.logprobs, "logprobs")?.unwrap_or(false);
    let top_logprobs = integer(&req.top_logprobs, "top_logprobs")?
        .map(|k| integer_range("top_logprobs", k, 0, MAX_TOP_LOGPROBS as i128))
        .transpose()?;
    if top_logprobs.is_some() && !logprobs {
        return Err(invalid(
            "top_logprobs",
            "invalid_value",
            "'top_logprobs' requires 'logprobs' to be true.".into(),
        ));
    }
    let logprobs = logprobs.then(|| top_logprobs.unwrap_or(0) as usize);

    let common = common(&req.common, limits)?;
    let reasoning = reasoning_fields(req)?;
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
    })
}

/// The reasoning controls of a chat request.
fn reasoning_fields(req: &ChatCompletionRequest) -> Result<ReasoningRequest, ValidationError> {
    let include = boolean(&req.include_reasoning, "include_reasoning")?;
    let effort = match string(&req.reasoning_effort, "reasoning_effort")? {
        None => None,
        Some(e) => Some(Effort::parse(e).ok_or_else(|| {
            invalid(
                "reasoning_effort",
                "invalid_value",
                format!(
                    "Invalid value: '{e}'. Supported values are: {}.",
                    Effort::NAMES.map(|n| format!("'{n}'")).join(", ")
                ),
            )
        })?),
    };
    let mut budget: Option<(Option<usize>, &str)> = None;
    for (value, name) in [
        (&req.thinking_token_budget, "thinking_token_budget"),
        (&req.reasoning_budget_tokens, "reasoning_budget_tokens"),
        (&req.thinking_budget_tokens, "thinking_budget_tokens"),
        (&req.max_reasoning_tokens, "max_reasoning_tokens"),
    ] {
        let Some(n) = integer(value, name)? else {
            continue;
        };
        let n = integer_range(name, n, -1, u32::MAX as i128)?;
        let b = (n >= 0).then_some(n as usize);
        match budget {
            Some((other, first)) if other != b => {
                return Err(invalid(
                    name,
                    "invalid_value",
                    format!("'{name}' and '{first}' set different thinking budgets; send one."),
                ))
            }
            _ => budget = Some((b, name)),
        }
    }
    let budget_message =
        string(&req.reasoning_budget_message, "reasoning_budget_message")?.map(str::to_string);
    Ok(ReasoningRequest {
        include,
        effort,
        budget: budget.map(|(b, _)| b),
        budget_message,
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

    let prompts = prompts(&req.prompt)?;
    let echo = boolean(&req.echo, "echo")?.unwrap_or(false);
    let max_tokens = token_limit(&req.max_tokens, "max_tokens", limits)?
        .or(limits.default_max_tokens)
        .or(Some(DEFAULT_COMPLETION_MAX_TOKENS));
    let logprobs = integer(&req.logprobs, "logprobs")?
        .map(|k| integer_range("logprobs", k, 0, MAX_COMPLETION_LOGPROBS as i128))
        .transpose()?
        .map(|k| k as usize);

    let common = common(&req.common, limits)?;
    if let Some(best_of) = integer(&req.best_of, "best_of")? {
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

// ---------------------------------------------------------------------------------------
// Fields both endpoints share
// ---------------------------------------------------------------------------------------

struct Common {
    n: usize,
    sampling: SamplingParams,
    stop: Vec<String>,
    stream: bool,
    include_usage: bool,
    ignore_eos: bool,
}

fn common(f: &CommonRequestFields, limits: &Limits) -> Result<Common, ValidationError> {
    let n = integer(&f.n, "n")?
        .map(|n| integer_range("n", n, 1, MAX_N as i128))
        .transpose()?
        .unwrap_or(1) as usize;
    let stop = stop(&f.stop)?;
    let stream = boolean(&f.stream, "stream")?.unwrap_or(false);
    // Lenient where OpenAI refuses: stream_options without stream is ignored, not an error.
    let include_usage = match &f.stream_options {
        None => false,
        Some(Value::Object(options)) => boolean(
            &options.get("include_usage").cloned(),
            "stream_options.include_usage",
        )?
        .unwrap_or(false),
        Some(other) => return Err(wrong_type("stream_options", "an object", other)),
    } && stream;
    string(&f.user, "user")?;
    let ignore_eos = boolean(&f.ignore_eos, "ignore_eos")?.unwrap_or(false);

    let defaults = SamplingParams::default();
    let temperature = number(&f.temperature, "temperature")?
        .map(|t| decimal_range("temperature", t, 0.0, 2.0))
        .transpose()?
        .map_or(defaults.temperature, |t| t as f32);
    let top_p = match number(&f.top_p, "top_p")? {
        None => defaults.top_p,
        Some(p) if p <= 0.0 => {
            return Err(invalid(
                "top_p",
                "decimal_below_min_value",
                format!("Invalid 'top_p': expected a value > 0, but got {p} instead."),
            ))
        }
        Some(p) => decimal_range("top_p", p, 0.0, 1.0)? as f32,
    };
    let top_k = match integer(&f.top_k, "top_k")? {
        None => defaults.top_k,
        Some(k) => {
            let k = integer_range("top_k", k, -1, i128::MAX)?;
            // vLLM: -1 (and 0) disable top-k.
            usize::try_from(k.max(0)).unwrap_or(usize::MAX)
        }
    };
    let min_p = number(&f.min_p, "min_p")?
        .map(|p| decimal_range("min_p", p, 0.0, 1.0))
        .transpose()?
        .map_or(defaults.min_p, |p| p as f32);
    let repetition_penalty = match number(&f.repetition_penalty, "repetition_penalty")? {
        None => defaults.repetition_penalty,
        Some(r) if r <= 0.0 => {
            return Err(invalid(
                "repetition_penalty",
                "decimal_below_min_value",
                format!("Invalid 'repetition_penalty': expected a value > 0, but got {r} instead."),
            ))
        }
        Some(r) => r as f32,
    };
    let presence_penalty = number(&f.presence_penalty, "presence_penalty")?
        .map(|p| decimal_range("presence_penalty", p, -2.0, 2.0))
        .transpose()?
        .map_or(defaults.presence_penalty, |p| p as f32);
    let frequency_penalty = number(&f.frequency_penalty, "frequency_penalty")?
        .map(|p| decimal_range("frequency_penalty", p, -2.0, 2.0))
        .transpose()?
        .map_or(defaults.frequency_penalty, |p| p as f32);
    let logit_bias = logit_bias(&f.logit_bias, limits)?;
    // Any 64-bit integer; a negative seed is taken as its two's complement.
    let seed = integer(&f.seed, "seed")?
        .map(|s| integer_range("seed", s, i64::MIN as i128, u64::MAX as i128))
        .transpose()?
        .map(|s| if s < 0 { s as i64 as u64 } else { s as u64 });

    Ok(Common {
        n,
        sampling: SamplingParams {
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            presence_penalty,
            frequency_penalty,
            logit_bias,
            seed,
        },
        stop,
        stream,
        include_usage,
        ignore_eos,
    })
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

/// `{"type": "text"}` is OpenAI's default and asks for nothing; any other format is refused.
fn response_format(value: &Option<Value>) -> Result<(), ValidationError> {
    let Some(format) = value else { return Ok(()) };
    let Value::Object(fields) = format else {
        return Err(wrong_type("response_format", "an object", format));
    };
    match fields.get("type") {
        Some(Value::String(t)) if t == "text" => Ok(()),
        Some(Value::String(t)) => Err(ValidationError::Unsupported {
            message: format!(
                "'response_format' of type '{t}' is not supported yet; only 'text' is."
            ),
            param: "response_format".into(),
            code: "unsupported_value",
        }),
        Some(other) => Err(wrong_type("response_format.type", "a string", other)),
        None => Err(missing("response_format.type")),
    }
}

fn messages(value: &Option<Value>) -> Result<Vec<Value>, ValidationError> {
    let messages = match value {
        None => return Err(missing("messages")),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(empty_array("messages"));
    }
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(fields) = message else {
            return Err(wrong_type(&at, "an object", message));
        };
        let role = match fields.get("role") {
            None | Some(Value::Null) => return Err(missing(&format!("{at}.role"))),
            Some(Value::String(role)) if ROLES.contains(&role.as_str()) => role.as_str(),
            Some(Value::String(role)) => {
                return Err(invalid(
                    &format!("{at}.role"),
                    "invalid_value",
                    format!(
                        "Invalid value: '{role}'. Supported values are: 'system', 'developer', \
                         'user', 'assistant', and 'tool'."
                    ),
                ))
            }
            Some(other) => return Err(wrong_type(&format!("{at}.role"), "a string", other)),
        };
        content(fields.get("content"), role, &format!("{at}.content"))?;
    }
    Ok(messages.clone())
}

/// A message's content: a string, a list of text parts, or (assistant and tool
/// messages only) null or absent.
fn content(value: Option<&Value>, role: &str, at: &str) -> Result<(), ValidationError> {
    let may_be_null = matches!(role, "assistant" | "tool");
    let parts = match value {
        None if may_be_null => return Ok(()),
        None => return Err(missing(at)),
        Some(Value::Null) if may_be_null => return Ok(()),
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(wrong_type(
                at,
                "a string or an array of content parts",
                other,
            ))
        }
    };
    if parts.is_empty() {
        return Err(empty_array(at));
    }
    for (j, part) in parts.iter().enumerate() {
        let part_at = format!("{at}[{j}]");
        let Value::Object(fields) = part else {
            return Err(wrong_type(&part_at, "an object", part));
        };
        match fields.get("type") {
            Some(Value::String(t)) if t == "text" => {}
            Some(Value::String(t)) => {
                return Err(ValidationError::Unsupported {
                    message: format!(
                        "Content parts of type '{t}' are not supported yet \
                         ('{part_at}.type'); only 'text' parts are."
                    ),
                    param: at.into(),
                    code: "unsupported_value",
                })
            }
            None | Some(Value::Null) => return Err(missing(&format!("{part_at}.type"))),
            Some(other) => return Err(wrong_type(&format!("{part_at}.type"), "a string", other)),
        }
        match fields.get("text") {
            Some(Value::String(_)) => {}
            None | Some(Value::Null) => return Err(missing(&format!("{part_at}.text"))),
            Some(other) => return Err(wrong_type(&format!("{part_at}.text"), "a string", other)),
        }
    }
    Ok(())
}

fn prompts(value: &Option<Value>) -> Result<Vec<String>, ValidationError> {
    let token_ids = || ValidationError::Unsupported {
        message: "Prompts of token ids are not supported yet; send the prompt as text.".into(),
        param: "prompt".into(),
        code: "unsupported_value",
    };
    match value {
        None => Err(missing("prompt")),
        Some(Value::String(s)) if s.is_empty() => Err(empty_string("prompt")),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(empty_array("prompt"));
            }
            if items.iter().any(|x| x.is_number() || x.is_array()) {
                return Err(token_ids());
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) if s.is_empty() => Err(empty_string(&format!("prompt[{i}]"))),
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(&format!("prompt[{i}]"), "a string", other)),
                })
                .collect()
        }
        Some(other) => Err(wrong_type(
            "prompt",
            "a string or an array of strings",
            other,
        )),
    }
}

/// `max_tokens` or `max_completion_tokens`: at least 1 and within the context.
fn token_limit(
    value: &Option<Value>,
    param: &str,
    limits: &Limits,
) -> Result<Option<usize>, ValidationError> {
    let Some(n) = integer(value, param)? else {
        return Ok(None);
    };
    let n = integer_range(param, n, 1, i128::MAX)?;
    if n > limits.context_length as i128 {
        return Err(invalid(
            param,
            "integer_above_max_value",
            format!(
                "Invalid '{param}': {n} is more than this model's context length of {} \
                 tokens (prompt and completion together).",
                limits.context_length
            ),
        ));
    }
    Ok(Some(n as usize))
}

fn stop(value: &Option<Value>) -> Result<Vec<String>, ValidationError> {
    let one = |s: &str, param: &str| {
        if s.is_empty() {
            Err(empty_string(param))
        } else {
            Ok(s.to_string())
        }
    };
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![one(s, "stop")?]),
        Some(Value::Array(items)) => {
            if items.len() > MAX_STOP {
                return Err(invalid(
                    "stop",
                    "array_above_max_length",
                    format!(
                        "Invalid 'stop': array too long. Expected an array with maximum length \
                         {MAX_STOP}, but got an array with length {} instead.",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let param = format!("stop[{i}]");
                    match item {
                        Value::String(s) => one(s, &param),
                        other => Err(wrong_type(&param, "a string", other)),
                    }
                })
                .collect()
        }
        Some(other) => Err(wrong_type("stop", "a string or an array of strings", other)),
    }
}

fn logit_bias(value: &Option<Value>, limits: &Limits) -> Result<Vec<(u32, f32)>, ValidationError> {
    let map = match value {
        None => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("logit_bias", "an object", other)),
    };
    map.iter()
        .map(|(key, bias)| {
            let id = match key.parse::<u32>() {
                Ok(id) if (id as usize) < limits.vocab_size => id,
                Ok(id) => {
                    return Err(invalid(
                        "logit_bias",
                        "invalid_value",
                        format!(
                            "Invalid key in 'logit_bias': token id {id} is outside the \
                             vocabulary of {} tokens.",
                            limits.vocab_size
                        ),
                    ))
                }
                Err(_) => {
                    return Err(invalid(
                        "logit_bias",
                        "invalid_value",
                        format!(
                            "Invalid key in 'logit_bias': '{key}' is not a token id \
                             (a non-negative integer)."
                        ),
                    ))
                }
            };
            let bias = match bias {
                Value::Number(x) => x.as_f64().unwrap_or(f64::NAN),
                other => {
                    return Err(invalid(
                        "logit_bias",
                        "invalid_type",
                        format!(
                            "Invalid type for 'logit_bias' of token {id}: expected a number, \
                             but got {} instead.",
                            describe(other)
                        ),
                    ))
                }
            };
            if !(-100.0..=100.0).contains(&bias) {
                return Err(invalid(
                    "logit_bias",
                    "invalid_value",
                    format!(
                        "Invalid 'logit_bias' of token {id}: expected a value between -100 and \
                         100, but got {bias} instead."
                    ),
                ));
            }
            Ok((id, bias as f32))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Typed reads of raw values, each error naming its param
// ---------------------------------------------------------------------------------------

fn number(value: &Option<Value>, param: &str) -> Result<Option<f64>, ValidationError> {
    match value {
        None => Ok(None),
        Some(v @ Value::Number(x)) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| wrong_type(param, "a number", v)),
        Some(other) => Err(wrong_type(param, "a number", other)),
    }
}

/// An integer, also from an integral decimal (`2.0`) as Python clients may send it.
fn integer(value: &Option<Value>, param: &str) -> Result<Option<i128>, ValidationError> {
    /// Past 2^53 a decimal no longer holds every integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        None => Ok(None),
        Some(v @ Value::Number(x)) => {
            if let Some(i) = x.as_i64() {
                Ok(Some(i as i128))
            } else if let Some(u) = x.as_u64() {
                Ok(Some(u as i128))
            } else {
                match x.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => Ok(Some(f as i128)),
                    _ => Err(wrong_type(param, "an integer", v)),
                }
            }
        }
        Some(other) => Err(wrong_type(param, "an integer", other)),
    }
}

fn boolean(value: &Option<Value>, param: &str) -> Result<Option<bool>, ValidationError> {
    match value {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(param, "a boolean", other)),
    }
}

fn string<'a>(value: &'a Option<Value>, param: &str) -> Result<Option<&'a str>, ValidationError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(param, "a string", other)),
    }
}

fn decimal_range(param: &str, x: f64, min: f64, max: f64) -> Result<f64, ValidationError> {
    in_range(
        param,
        "decimal",
        ["decimal_below_min_value", "decimal_above_max_value"],
        x,
        min,
        max,
    )
}

fn integer_range(param: &str, x: i128, min: i128, max: i128) -> Result<i128, ValidationError> {
    in_range(
        param,
        "integer",
        ["integer_below_min_value", "integer_above_max_value"],
        x,
        min,
        max,
    )
}

/// `x` if it is within `min..=max`, else OpenAI's error for a `kind` ("decimal",
/// "integer") below or above its bounds, with the matching code.
fn in_range<T: PartialOrd + std::fmt::Display>(
    param: &str,
    kind: &str,
    [below, above]: [&'static str; 2],
    x: T,
    min: T,
    max: T,
) -> Result<T, ValidationError> {
    if x < min {
        Err(invalid(
            param,
            below,
            format!(
                "Invalid '{param}': {kind} below minimum value. Expected a value >= {min}, \
                 but got {x} instead."
            ),
        ))
    } else if x > max {
        Err(invalid(
            param,
            above,
            format!(
                "Invalid '{param}': {kind} above maximum value. Expected a value <= {max}, \
                 but got {x} instead."
            ),
        ))
    } else {
        Ok(x)
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(x) if x.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(param: &str, code: &'static str, message: String) -> ValidationError {
    ValidationError::Invalid {
        message,
        param: param.into(),
        code,
    }
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> ValidationError {
    invalid(
        param,
        "invalid_type",
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            describe(got)
        ),
    )
}

fn missing(param: &str) -> ValidationError {
    invalid(
        param,
        "missing_required_parameter",
        format!("Missing required parameter: '{param}'."),
    )
}

fn empty_array(param: &str) -> ValidationError {
    invalid(
        param,
        "empty_array",
        format!(
            "Invalid '{param}': empty array. Expected an array with minimum length 1, but got \
             an empty array instead."
        ),
    )
}

fn empty_string(param: &str) -> ValidationError {
    invalid(
        param,
        "empty_string",
        format!(
            "Invalid '{param}': empty string. Expected a string with minimum length 1, but got \
             an empty string instead."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            served_model_name: "smollm2".into(),
            context_length: 2048,
            vocab_size: 1000,
            default_max_tokens: None,
        }
    }

    /// A minimal valid chat body with `fields` set on top (`null` sets a field to null).
    fn chat_body(fields: Value) -> Value {
        let mut body = json!({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    fn chat_with(body: Value, limits: &Limits) -> Result<ValidRequest, ValidationError> {
        validate_chat(&serde_json::from_value(body).unwrap(), limits)
    }

    fn chat(fields: Value) -> Result<ValidRequest, ValidationError> {
        chat_with(chat_body(fields), &limits())
    }

    fn chat_without(field: &str) -> Result<ValidRequest, ValidationError> {
        let mut body = chat_body(json!({}));
        body.as_object_mut().unwrap().remove(field);
        chat_with(body, &limits())
    }

    fn completion_with(fields: Value, limits: &Limits) -> Result<ValidRequest, ValidationError> {
        let mut body = json!({"model": "smollm2", "prompt": "hi"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        validate_completion(&serde_json::from_value(body).unwrap(), limits)
    }

    fn completion(fields: Value) -> Result<ValidRequest, ValidationError> {
        completion_with(fields, &limits())
    }

    /// The (param, code) of a refused request.
    fn refused(r: Result<ValidRequest, ValidationError>) -> (String, &'static str) {
        let e = r.expect_err("the request should be refused");
        (e.param().to_string(), e.code())
    }

    fn is(param: &str, code: &'static str) -> (String, &'static str) {
        (param.to_string(), code)
    }

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
    fn messages_shape() {
        assert_eq!(
            refused(chat_without("messages")),
            is("messages", "missing_required_parameter")
        );
        assert_eq!(
            refused(chat(json!({"messages": "hi"}))),
            is("messages", "invalid_type")
        );
        assert_eq!(
            refused(chat(json!({"messages": []}))),
            is("messages", "empty_array")
        );
        assert_eq!(
            refused(chat(
                json!({"messages": [{"role": "user", "content": "a"}, "b"]})
            )),
            is("messages[1]", "invalid_type")
        );
    }

    #[test]
    fn message_roles() {
        for role in ROLES {
            assert!(chat(json!({"messages": [{"role": role, "content": "x"}]})).is_ok());
        }
        assert_eq!(
            refused(chat(json!({"messages": [{"content": "x"}]}))),
            is("messages[0].role", "missing_required_parameter")
        );
        assert_eq!(
            refused(chat(json!({"messages": [{"role": 1, "content": "x"}]}))),
            is("messages[0].role", "invalid_type")
        );
        let e = chat(json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "robot", "content": "c"}
        ]}))
        .unwrap_err();
        assert_eq!(e.param(), "messages[2].role");
        assert_eq!(e.code(), "invalid_value");
        assert_eq!(
            e.message(),
            "Invalid value: 'robot'. Supported values are: 'system', 'developer', 'user', \
             'assistant', and 'tool'."
        );
    }

    #[test]
    fn message_content() {
        let one = |message: Value| chat(json!({"messages": [message]}));
        assert!(one(json!({"role": "user", "content": ""})).is_ok());
        assert!(one(json!({"role": "assistant", "content": null})).is_ok());
        assert!(one(json!({"role": "assistant"})).is_ok());
        assert!(one(json!({"role": "tool", "content": null})).is_ok());
        assert_eq!(
            refused(one(json!({"role": "user"}))),
            is("messages[0].content", "missing_required_parameter")
        );
        assert_eq!(
            refused(one(json!({"role": "system", "content": null}))),
            is("messages[0].content", "invalid_type")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": 5}))),
            is("messages[0].content", "invalid_type")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": []}))),
            is("messages[0].content", "empty_array")
        );
        assert!(one(json!({"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}
        ]}))
        .is_ok());
        assert_eq!(
            refused(one(json!({"role": "user", "content": ["a"]}))),
            is("messages[0].content[0]", "invalid_type")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": [{"text": "a"}]}))),
            is("messages[0].content[0].type", "missing_required_parameter")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": [{"type": "text"}]}))),
            is("messages[0].content[0].text", "missing_required_parameter")
        );
        assert_eq!(
            refused(one(
                json!({"role": "user", "content": [{"type": "text", "text": 1}]})
            )),
            is("messages[0].content[0].text", "invalid_type")
        );
        let e = chat(json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:..."}}
            ]}
        ]}))
        .unwrap_err();
        assert!(matches!(e, ValidationError::Unsupported { .. }));
        assert_eq!(e.param(), "messages[1].content");
        assert_eq!(
            e.message(),
            "Content parts of type 'image_url' are not supported yet \
             ('messages[1].content[1].type'); only 'text' parts are."
        );
    }

    #[test]
    fn wrong_types_name_their_param() {
        let e = chat(json!({"temperature": "hot"})).unwrap_err();
        assert_eq!(
            e,
            ValidationError::Invalid {
                message: "Invalid type for 'temperature': expected a number, but got a string \
                          instead."
                    .into(),
                param: "temperature".into(),
                code: "invalid_type",
            }
        );
        for (field, value) in [
            ("top_p", json!("1")),
            ("n", json!("2")),
            ("n", json!(1.5)),
            ("max_tokens", json!("10")),
            ("max_completion_tokens", json!(true)),
            ("seed", json!(1.5)),
            ("seed", json!("1")),
            ("presence_penalty", json!([])),
            ("frequency_penalty", json!({})),
            ("logprobs", json!("yes")),
            ("logprobs", json!(1)),
            ("top_logprobs", json!(2.5)),
            ("stream", json!(1)),
            ("stream_options", json!("x")),
            ("user", json!(5)),
            ("top_k", json!(1.5)),
            ("min_p", json!("0.1")),
            ("repetition_penalty", json!(false)),
            ("chat_template_kwargs", json!([])),
            ("ignore_eos", json!("true")),
            ("logit_bias", json!([1])),
            ("stop", json!(3)),
        ] {
            assert_eq!(
                refused(chat(json!({ field: value }))),
                is(field, "invalid_type"),
                "{field}: {value}"
            );
        }
        assert_eq!(
            refused(chat(
                json!({"stream": true, "stream_options": {"include_usage": "yes"}})
            )),
            is("stream_options.include_usage", "invalid_type")
        );
        let e = chat(json!({"n": 1.5})).unwrap_err();
        assert_eq!(
            e.message(),
            "Invalid type for 'n': expected an integer, but got a decimal instead."
        );
    }

    #[test]
    fn integral_decimals_count_as_integers() {
        let v = chat(json!({"n": 2.0, "max_tokens": 10.0, "seed": 3.0})).unwrap();
        assert_eq!((v.n, v.max_tokens, v.sampling.seed), (2, Some(10), Some(3)));
    }

    #[test]
    fn temperature_range() {
        for t in [0, 1, 2] {
            assert_eq!(
                chat(json!({"temperature": t}))
                    .unwrap()
                    .sampling
                    .temperature,
                t as f32
            );
        }
        assert_eq!(
            chat(json!({"temperature": 0.7}))
                .unwrap()
                .sampling
                .temperature,
            0.7
        );
        assert_eq!(
            refused(chat(json!({"temperature": -0.1}))),
            is("temperature", "decimal_below_min_value")
        );
        let e = chat(json!({"temperature": 2.5})).unwrap_err();
        assert_eq!(e.code(), "decimal_above_max_value");
        assert_eq!(
            e.message(),
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but \
             got 2.5 instead."
        );
    }

    #[test]
    fn top_p_range() {
        assert_eq!(chat(json!({"top_p": 1})).unwrap().sampling.top_p, 1.0);
        assert_eq!(chat(json!({"top_p": 0.01})).unwrap().sampling.top_p, 0.01);
        assert_eq!(
            refused(chat(json!({"top_p": 0}))),
            is("top_p", "decimal_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"top_p": -1}))),
            is("top_p", "decimal_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"top_p": 1.01}))),
            is("top_p", "decimal_above_max_value")
        );
    }

    #[test]
    fn n_range() {
        assert_eq!(chat(json!({"n": 16})).unwrap().n, 16);
        assert_eq!(
            refused(chat(json!({"n": 0}))),
            is("n", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"n": -3}))),
            is("n", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"n": 17}))),
            is("n", "integer_above_max_value")
        );
        assert_eq!(completion(json!({"n": 4})).unwrap().n, 4);
        assert_eq!(
            refused(completion(json!({"n": 17}))),
            is("n", "integer_above_max_value")
        );
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
    fn stop_sequences() {
        assert_eq!(chat(json!({"stop": "\n"})).unwrap().stop, vec!["\n"]);
        assert_eq!(
            chat(json!({"stop": []})).unwrap().stop,
            Vec::<String>::new()
        );
        assert_eq!(
            chat(json!({"stop": ["a", "b", "c", "d"]})).unwrap().stop,
            vec!["a", "b", "c", "d"]
        );
        let e = chat(json!({"stop": ["a", "b", "c", "d", "e"]})).unwrap_err();
        assert_eq!((e.param(), e.code()), ("stop", "array_above_max_length"));
        assert_eq!(
            e.message(),
            "Invalid 'stop': array too long. Expected an array with maximum length 4, but got \
             an array with length 5 instead."
        );
        assert_eq!(
            refused(chat(json!({"stop": ""}))),
            is("stop", "empty_string")
        );
        assert_eq!(
            refused(chat(json!({"stop": ["a", ""]}))),
            is("stop[1]", "empty_string")
        );
        assert_eq!(
            refused(chat(json!({"stop": ["a", 1]}))),
            is("stop[1]", "invalid_type")
        );
        assert_eq!(completion(json!({"stop": "x"})).unwrap().stop, vec!["x"]);
    }

    #[test]
    fn penalty_ranges() {
        for field in ["presence_penalty", "frequency_penalty"] {
            assert!(chat(json!({ field: -2 })).is_ok());
            assert!(chat(json!({ field: 2.0 })).is_ok());
            assert_eq!(
                refused(chat(json!({ field: -2.1 }))),
                is(field, "decimal_below_min_value")
            );
            assert_eq!(
                refused(chat(json!({ field: 2.1 }))),
                is(field, "decimal_above_max_value")
            );
        }
        assert_eq!(
            chat(json!({"repetition_penalty": 1.3}))
                .unwrap()
                .sampling
                .repetition_penalty,
            1.3
        );
        assert!(chat(json!({"repetition_penalty": 5})).is_ok());
        for r in [json!(0), json!(-1.0)] {
            let e = chat(json!({ "repetition_penalty": r })).unwrap_err();
            assert_eq!(
                (e.param(), e.code()),
                ("repetition_penalty", "decimal_below_min_value")
            );
        }
    }

    #[test]
    fn min_p_and_top_k() {
        assert_eq!(chat(json!({"min_p": 0})).unwrap().sampling.min_p, 0.0);
        assert_eq!(chat(json!({"min_p": 1})).unwrap().sampling.min_p, 1.0);
        assert_eq!(
            refused(chat(json!({"min_p": -0.01}))),
            is("min_p", "decimal_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"min_p": 1.5}))),
            is("min_p", "decimal_above_max_value")
        );
        assert_eq!(chat(json!({"top_k": 40})).unwrap().sampling.top_k, 40);
        assert_eq!(chat(json!({"top_k": 0})).unwrap().sampling.top_k, 0);
        assert_eq!(
            chat(json!({"top_k": -1})).unwrap().sampling.top_k,
            0,
            "vLLM's off"
        );
        assert_eq!(
            chat(json!({"top_k": 1_000_000})).unwrap().sampling.top_k,
            1_000_000
        );
        assert_eq!(
            refused(chat(json!({"top_k": -2}))),
            is("top_k", "integer_below_min_value")
        );
    }

    #[test]
    fn logit_bias_keys_and_values() {
        assert_eq!(
            chat(json!({"logit_bias": {"999": 100, "0": -100, "7": 0.5}}))
                .unwrap()
                .sampling
                .logit_bias,
            vec![(999, 100.0), (0, -100.0), (7, 0.5)]
        );
        assert_eq!(
            chat(json!({"logit_bias": {}})).unwrap().sampling.logit_bias,
            vec![]
        );
        for (bias, fragment) in [
            (
                json!({"1000": 1}),
                "token id 1000 is outside the vocabulary of 1000 tokens",
            ),
            (json!({"abc": 1}), "'abc' is not a token id"),
            (json!({"-1": 1}), "'-1' is not a token id"),
            (json!({"1.5": 1}), "'1.5' is not a token id"),
            (
                json!({"5": 100.5}),
                "expected a value between -100 and 100, but got 100.5",
            ),
            (
                json!({"5": -101}),
                "expected a value between -100 and 100, but got -101",
            ),
            (json!({"5": "x"}), "expected a number, but got a string"),
        ] {
            let e = chat(json!({ "logit_bias": bias })).unwrap_err();
            assert_eq!(e.param(), "logit_bias", "{bias}");
            assert!(e.message().contains(fragment), "{}", e.message());
        }
    }

    #[test]
    fn max_tokens_rules() {
        assert_eq!(chat(json!({"max_tokens": 1})).unwrap().max_tokens, Some(1));
        assert_eq!(
            chat(json!({"max_tokens": 2048})).unwrap().max_tokens,
            Some(2048)
        );
        assert_eq!(
            chat(json!({"max_completion_tokens": 7}))
                .unwrap()
                .max_tokens,
            Some(7)
        );
        assert_eq!(
            chat(json!({"max_tokens": 5, "max_completion_tokens": 9}))
                .unwrap()
                .max_tokens,
            Some(9)
        );
        assert_eq!(
            refused(chat(json!({"max_tokens": 0}))),
            is("max_tokens", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"max_completion_tokens": 0}))),
            is("max_completion_tokens", "integer_below_min_value")
        );
        let e = chat(json!({"max_tokens": 4096})).unwrap_err();
        assert_eq!(
            (e.param(), e.code()),
            ("max_tokens", "integer_above_max_value")
        );
        assert_eq!(
            e.message(),
            "Invalid 'max_tokens': 4096 is more than this model's context length of 2048 \
             tokens (prompt and completion together)."
        );
        assert_eq!(
            refused(chat(json!({"max_tokens": 5, "max_completion_tokens": -1}))),
            is("max_completion_tokens", "integer_below_min_value")
        );
        let with_default = Limits {
            default_max_tokens: Some(256),
            ..limits()
        };
        assert_eq!(
            chat_with(chat_body(json!({})), &with_default)
                .unwrap()
                .max_tokens,
            Some(256)
        );
        assert_eq!(
            chat_with(chat_body(json!({"max_tokens": 3})), &with_default)
                .unwrap()
                .max_tokens,
            Some(3)
        );
    }

    #[test]
    fn seeds() {
        assert_eq!(chat(json!({"seed": 42})).unwrap().sampling.seed, Some(42));
        assert_eq!(chat(json!({"seed": 0})).unwrap().sampling.seed, Some(0));
        assert_eq!(
            chat(json!({"seed": -1})).unwrap().sampling.seed,
            Some(u64::MAX)
        );
        assert_eq!(
            chat(json!({"seed": u64::MAX})).unwrap().sampling.seed,
            Some(u64::MAX)
        );
        assert_eq!(
            chat(json!({"seed": i64::MIN})).unwrap().sampling.seed,
            Some(1 << 63)
        );
        assert_eq!(chat(json!({})).unwrap().sampling.seed, None);
    }

    #[test]
    fn streaming_and_usage() {
        let v = chat(json!({"stream": true})).unwrap();
        assert!(v.stream && !v.include_usage);
        let v = chat(json!({"stream": true, "stream_options": {"include_usage": true}})).unwrap();
        assert!(v.stream && v.include_usage);
        let v = chat(json!({"stream": true, "stream_options": {}})).unwrap();
        assert!(!v.include_usage);
        let v = chat(json!({"stream": false, "stream_options": {"include_usage": true}})).unwrap();
        assert!(
            !v.stream && !v.include_usage,
            "usage chunks only exist in streams"
        );
        let v =
            completion(json!({"stream": true, "stream_options": {"include_usage": true}})).unwrap();
        assert!(v.stream && v.include_usage);
    }

    #[test]
    fn unsupported_fields_are_named() {
        for (field, value) in [
            (
                "tools",
                json!([{"type": "function", "function": {"name": "f"}}]),
            ),
            ("tools", json!([])),
            ("tool_choice", json!("auto")),
            (
                "tool_choice",
                json!({"type": "function", "function": {"name": "f"}}),
            ),
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
        assert!(chat(json!({"tool_choice": "none"})).is_ok());
        assert!(chat(json!({"function_call": "none"})).is_ok());
    }

    #[test]
    fn response_format() {
        assert!(chat(json!({"response_format": {"type": "text"}})).is_ok());
        let e = chat(json!({"response_format": {"type": "json_object"}})).unwrap_err();
        assert!(matches!(e, ValidationError::Unsupported { .. }));
        assert_eq!(
            (e.param(), e.code()),
            ("response_format", "unsupported_value")
        );
        assert_eq!(
            e.message(),
            "'response_format' of type 'json_object' is not supported yet; only 'text' is."
        );
        assert_eq!(
            refused(chat(
                json!({"response_format": {"type": "json_schema", "json_schema": {}}})
            )),
            is("response_format", "unsupported_value")
        );
        assert_eq!(
            refused(chat(json!({"response_format": "json"}))),
            is("response_format", "invalid_type")
        );
        assert_eq!(
            refused(chat(json!({"response_format": {}}))),
            is("response_format.type", "missing_required_parameter")
        );
    }

    #[test]
    fn completion_defaults() {
        let v = completion(json!({})).unwrap();
        assert_eq!(
            v,
            ValidRequest {
                input: Input::Completion {
                    prompts: vec!["hi".into()],
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
                prompts: vec!["a".into(), "b".into()],
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
    fn completion_prompts() {
        let prompt = |p: Value| completion(json!({ "prompt": p }));
        let no_prompt = serde_json::from_value(json!({"model": "smollm2"})).unwrap();
        assert_eq!(
            refused(validate_completion(&no_prompt, &limits())),
            is("prompt", "missing_required_parameter")
        );
        assert_eq!(refused(prompt(json!(""))), is("prompt", "empty_string"));
        assert_eq!(refused(prompt(json!([]))), is("prompt", "empty_array"));
        assert_eq!(refused(prompt(json!(5))), is("prompt", "invalid_type"));
        assert_eq!(refused(prompt(json!({}))), is("prompt", "invalid_type"));
        assert_eq!(
            refused(prompt(json!(["a", ""]))),
            is("prompt[1]", "empty_string")
        );
        assert_eq!(
            refused(prompt(json!(["a", null]))),
            is("prompt[1]", "invalid_type")
        );
        for ids in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
            let e = prompt(ids).unwrap_err();
            assert!(matches!(e, ValidationError::Unsupported { .. }));
            assert_eq!(e.param(), "prompt");
            assert_eq!(
                e.message(),
                "Prompts of token ids are not supported yet; send the prompt as text."
            );
        }
    }

    #[test]
    fn completion_logprobs_echo_suffix_best_of() {
        assert_eq!(
            completion(json!({"logprobs": 0})).unwrap().logprobs,
            Some(0)
        );
        assert_eq!(
            refused(completion(json!({"logprobs": 6}))),
            is("logprobs", "integer_above_max_value")
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
    fn completion_shares_the_sampling_rules() {
        for (field, value, code) in [
            ("temperature", json!(3), "decimal_above_max_value"),
            ("top_p", json!(0), "decimal_below_min_value"),
            ("presence_penalty", json!(-3), "decimal_below_min_value"),
            ("frequency_penalty", json!("x"), "invalid_type"),
            ("top_k", json!(-5), "integer_below_min_value"),
            ("min_p", json!(2), "decimal_above_max_value"),
            ("repetition_penalty", json!(0), "decimal_below_min_value"),
            ("logit_bias", json!({"x": 1}), "invalid_value"),
            ("seed", json!("s"), "invalid_type"),
            (
                "stop",
                json!(["a", "b", "c", "d", "e"]),
                "array_above_max_length",
            ),
            ("stream", json!("yes"), "invalid_type"),
            ("user", json!(1), "invalid_type"),
            ("ignore_eos", json!(1), "invalid_type"),
        ] {
            assert_eq!(
                refused(completion(json!({ field: value }))),
                is(field, code),
                "{field}: {value}"
            );
        }
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

    #[test]
    fn errors_become_openai_json() {
        use crate::api::error::ApiError;
        let e: ApiError = chat(json!({"temperature": "hot"})).unwrap_err().into();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(
            serde_json::to_value(e.body()).unwrap(),
            json!({"error": {
                "message": "Invalid type for 'temperature': expected a number, but got a string \
                            instead.",
                "type": "invalid_request_error", "param": "temperature", "code": "invalid_type"
            }})
        );
        let e: ApiError = chat(json!({"model": "other"})).unwrap_err().into();
        assert_eq!(e.status.as_u16(), 404);
        assert_eq!(e.code.as_deref(), Some("model_not_found"));
    }

    #[test]
    fn reasoning_fields() {
        let v = chat(
            json!({"include_reasoning": false, "reasoning_effort": "low",
                            "thinking_token_budget": 5, "max_reasoning_tokens": 5,
                            "reasoning_budget_message": "Answer now."}),
        )
        .unwrap();
        assert_eq!(
            v.reasoning,
            ReasoningRequest {
                include: Some(false),
                effort: Some(Effort::Low),
                budget: Some(Some(5)),
                budget_message: Some("Answer now.".into()),
            }
        );
        assert_eq!(
            chat(json!({"reasoning_budget_tokens": -1}))
                .unwrap()
                .reasoning
                .budget,
            Some(None)
        );
        assert_eq!(
            refused(chat(json!({"reasoning_effort": "max"}))),
            is("reasoning_effort", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"thinking_budget_tokens": -2}))),
            is("thinking_budget_tokens", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(
                json!({"thinking_token_budget": 1, "max_reasoning_tokens": 2})
            )),
            is("max_reasoning_tokens", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"include_reasoning": "no"}))),
            is("include_reasoning", "invalid_type")
        );
    }
}
