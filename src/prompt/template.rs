//! Chat templates: a request's messages rendered into the prompt text the model was trained on.
//!
//! Owns compiling a Jinja chat template (GGUF `tokenizer.chat_template`, tokenizer_config.json
//! `chat_template`, or a built-in one for a model whose file carries none) and rendering it the way
//! transformers' `apply_chat_template(..., tokenize=False)` does: the same Jinja settings
//! (`trim_blocks`, `lstrip_blocks`, no trailing newline), the globals transformers defines
//! (`raise_exception`, `strftime_now`, its `tojson`), Python's string and dict methods, and the
//! same message clean-up (null keys dropped, reasoning aliased); `{% generation %}` tags render
//! their body, as in transformers. Tokenizing the prompt, checking it
//! against the context length and validating message shapes are left to others.
//!
//! Templates port what transformers does in `src/transformers/utils/chat_template_utils.py`
//! (`_compile_jinja_template`, `render_jinja_template`, `_alias_reasoning_fields`) and
//! `tokenization_utils_base.py` (`apply_chat_template`), transformers 5.24.0.
//!
//! Known differences from Jinja2: `{% break %}`/`{% continue %}` need minijinja's `loop_controls`
//! feature, which this crate does not enable; `~` and `| string` print floats, lists and dicts the
//! minijinja way (`{{ ... }}` prints them as Python does).

mod python;

use std::fmt;

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value as JinjaValue};
use serde_json::{Map, Value};

/// Name of the one template in each environment; it shows up in minijinja's error messages.
const TEMPLATE_NAME: &str = "chat_template";

/// Variables a template gets from [`RenderOptions`] fields or the messages, never from `kwargs`.
const RESERVED_VARIABLES: [&str; 3] = ["messages", "tools", "add_generation_prompt"];

/// Names a message's reasoning may come under; templates read the first, gpt-oss reads `thinking`.
/// transformers' `_REASONING_FIELDS`.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// Why a template could not be built or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template text does not parse.
    #[error("chat template syntax error at line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// The template called `raise_exception(message)`: it rejects this conversation.
    #[error("the chat template rejected the conversation: {0}")]
    Raised(String),
    /// Rendering failed some other way: a type error, an undefined attribute, an unknown method...
    #[error("chat template failed to render{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Render {
        line: Option<usize>,
        message: String,
    },
    /// Transformers refuses to render an empty conversation, and so do we.
    #[error("there are no messages to render")]
    NoMessages,
    /// A message must be a JSON object (`{"role": ..., "content": ...}`).
    #[error("message {index} is not a JSON object")]
    InvalidMessage { index: usize },
    /// A kwarg tried to set a variable that [`RenderOptions`] or the messages set.
    #[error("`{0}` cannot be passed as a template kwarg")]
    ReservedKwarg(String),
    /// tokenizer_config.json's `chat_template` is neither a string nor a list with a "default" entry.
    #[error("tokenizer_config.json chat_template: {0}")]
    InvalidConfig(String),
}

/// The template families candor ships for models whose file carries no chat template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateFamily {
    /// Gemma's `<start_of_turn>user ... <end_of_turn>` turns: the official Gemma 3 template.
    Gemma,
    /// Llama 3's `<|start_header_id|>role<|end_header_id|>` headers closed by `<|eot_id|>`.
    Llama3,
    /// ChatML's `<|im_start|>role ... <|im_end|>` turns, with Qwen's tool format.
    ChatMl,
}

impl TemplateFamily {
    /// The Jinja source of the built-in template.
    pub fn source(self) -> &'static str {
        match self {
            // google/gemma-3-4b-it chat_template, verbatim.
            TemplateFamily::Gemma => include_str!("template/gemma3.jinja"),
            TemplateFamily::Llama3 => include_str!("template/llama3.jinja"),
            TemplateFamily::ChatMl => include_str!("template/chatml.jinja"),
        }
    }

    /// A human name for logs.
    pub fn name(self) -> &'static str {
        match self {
            TemplateFamily::Gemma => "Gemma",
            TemplateFamily::Llama3 => "Llama 3",
            TemplateFamily::ChatMl => "ChatML",
        }
    }
}

impl fmt::Display for TemplateFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which template a model got and why, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// The template came with the model (or the user); `origin` names where, e.g.
    /// "GGUF metadata tokenizer.chat_template".
    Provided { origin: String },
    /// A built-in template, because the model file carries none; `reason` says why this family.
    Builtin {
        family: TemplateFamily,
        reason: String,
    },
}

impl fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateSource::Provided { origin } => write!(f, "chat template from {origin}"),
            TemplateSource::Builtin { family, reason } => write!(
                f,
                "built-in {family} chat template (the model file carries none; {reason})"
            ),
        }
    }
}

/// Picks the built-in template for a model whose file carries none, from its architecture
/// (GGUF `general.architecture` or config.json `model_type`) and its vocabulary (`has_token`
/// says whether a token exists). None when no family fits.
///
/// Gemma architectures get Gemma; `llama` gets Llama 3 when its vocabulary has Llama 3's header
/// tokens and ChatML when it has `<|im_start|>` (SmolLM2 is a llama with ChatML turns); Qwen 2/3
/// get ChatML. Any other architecture is judged by the same special tokens.
pub fn builtin_for_model(
    architecture: &str,
    has_token: impl Fn(&str) -> bool,
) -> Option<TemplateSource> {
    let llama3_vocab = has_token("<|start_header_id|>") && has_token("<|eot_id|>");
    let chatml_vocab = has_token("<|im_start|>") && has_token("<|im_end|>");
    let gemma_vocab = has_token("<start_of_turn>") && has_token("<end_of_turn>");
    let (family, reason) = match architecture {
        "gemma" | "gemma2" | "gemma3" | "gemma3_text" => (
            TemplateFamily::Gemma,
            format!("architecture `{architecture}` uses Gemma's <start_of_turn> turns"),
        ),
        "qwen2" | "qwen2_moe" | "qwen3" | "qwen3_moe" => (
            TemplateFamily::ChatMl,
            format!("architecture `{architecture}` uses ChatML turns"),
        ),
        "llama" if llama3_vocab => (
            TemplateFamily::Llama3,
            "architecture `llama` with Llama 3's <|start_header_id|> and <|eot_id|> tokens"
                .to_string(),
        ),
        _ if llama3_vocab => (
            TemplateFamily::Llama3,
            format!("architecture `{architecture}` with Llama 3's <|start_header_id|> and <|eot_id|> tokens"),
        ),
        _ if chatml_vocab => (
            TemplateFamily::ChatMl,
            format!("architecture `{architecture}` with ChatML's <|im_start|> and <|im_end|> tokens"),
        ),
        _ if gemma_vocab => (
            TemplateFamily::Gemma,
            format!("architecture `{architecture}` with Gemma's <start_of_turn> and <end_of_turn> tokens"),
        ),
        _ => return None,
    };
    Some(TemplateSource::Builtin { family, reason })
}

/// tokenizer_config.json's `chat_template`: a string, or a list of `{"name", "template"}` of which
/// the one named "default" is used. (transformers also switches to a "tool_use" template when
/// tools are given; candor always renders "default".)
pub fn template_from_config(chat_template: &Value) -> Result<&str, TemplateError> {
    match chat_template {
        Value::String(source) => Ok(source),
        Value::Array(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                let name = entry.get("name").and_then(Value::as_str);
                let template = entry.get("template").and_then(Value::as_str);
                match (name, template) {
                    (Some("default"), Some(template)) => return Ok(template),
                    (Some(name), Some(_)) => names.push(name.to_string()),
                    _ => return Err(TemplateError::InvalidConfig(
                        "each entry of a chat_template list needs a string `name` and `template`"
                            .to_string(),
                    )),
                }
            }
            Err(TemplateError::InvalidConfig(format!(
                "no template named \"default\" among {names:?}"
            )))
        }
        other => Err(TemplateError::InvalidConfig(format!(
            "expected a string or a list of {{name, template}}, got {other}"
        ))),
    }
}

/// What a render call adds to the messages.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// End the prompt with the header that opens an assistant turn, so the model answers next.
    pub add_generation_prompt: bool,
    /// Tool definitions, each OpenAI's `{"type": "function", "function": {...}}`; None is what the
    /// template sees when the request has no tools (Python's None, like transformers passes).
    pub tools: Option<Vec<Value>>,
    /// Further template variables, e.g. `enable_thinking`; like transformers' kwargs they override
    /// `bos_token`/`eos_token`. `documents` may be set here; the names in `RenderOptions` may not.
    pub kwargs: Map<String, Value>,
}

/// A compiled chat template, shared by every request to one model.
pub struct ChatTemplate {
    /// The compiled template with transformers' globals and filters; renders are independent.
    env: Environment<'static>,
    /// The Jinja text, for logs and for tools that compare templates.
    source: String,
    /// `bos_token` as templates see it; None leaves the variable undefined, as transformers does
    /// for a tokenizer without one (Qwen's).
    bos_token: Option<String>,
    /// `eos_token`, likewise.
    eos_token: Option<String>,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles a Jinja chat template; `bos_token` and `eos_token` are the tokenizer's, as text.
    pub fn new(
        source: &str,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self, TemplateError> {
        let mut env = jinja_environment();
        env.add_template_owned(TEMPLATE_NAME, without_generation_tags(source))
            .map_err(syntax_error)?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.map(str::to_string),
            eos_token: eos_token.map(str::to_string),
        })
    }

    /// One of candor's built-in templates.
    pub fn builtin(
        family: TemplateFamily,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self, TemplateError> {
        Self::new(family.source(), bos_token, eos_token)
    }

    /// The Jinja text this template was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template walks a message's content as a list of parts (`{% for part in
    /// message.content %}`, Gemma 3) rather than using it as a string (most templates).
    pub fn takes_content_parts(&self) -> bool {
        let words: Vec<&str> = self.source.split_whitespace().collect();
        words.windows(4).any(|w| {
            w[0] == "for"
                && w[2] == "in"
                && [
                    "message.content",
                    "message['content']",
                    "message[\"content\"]",
                ]
                .iter()
                .any(|c| w[3].starts_with(c))
        })
    }

    /// Adapts API messages to what this template can render, as vLLM and llama-server do:
    /// for templates that use content as a string, a list of text parts becomes one string
    /// (parts joined by newlines) and a null or missing assistant / tool content becomes "".
    /// Templates that walk the parts get them unchanged.
    pub fn prepare_messages(&self, messages: &[Value]) -> Vec<Value> {
        if self.takes_content_parts() {
            return messages.to_vec();
        }
        messages
            .iter()
            .map(|m| {
                let Value::Object(fields) = m else {
                    return m.clone();
                };
                let mut fields = fields.clone();
                let text = match fields.get("content") {
                    Some(Value::Array(parts)) => Some(
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                    None | Some(Value::Null) => Some(String::new()),
                    Some(_) => None,
                };
                if let Some(text) = text {
                    fields.insert("content".into(), Value::String(text));
                }
                Value::Object(fields)
            })
            .collect()
    }

    /// Renders OpenAI-style messages (`role`, `content` as a string or a list of parts, optional
    /// `tool_calls`, `reasoning_content`, `name`, `tool_call_id`) into the prompt text.
    pub fn render(
        &self,
        messages: &[Value],
        opts: &RenderOptions,
    ) -> Result<String, TemplateError> {
        if messages.is_empty() {
            return Err(TemplateError::NoMessages);
        }
        if let Some(name) = RESERVED_VARIABLES
            .iter()
            .find(|name| opts.kwargs.contains_key(**name))
        {
            return Err(TemplateError::ReservedKwarg(name.to_string()));
        }
        let messages = messages
            .iter()
            .enumerate()
            .map(|(index, message)| normalize_message(index, message))
            .collect::<Result<Vec<_>, _>>()?;

        // transformers: template_kwargs = {**special_tokens_map, **kwargs}, then messages, tools,
        // documents and add_generation_prompt as keyword arguments.
        let mut ctx: Vec<(String, JinjaValue)> = Vec::new();
        let special = [
            ("bos_token", &self.bos_token),
            ("eos_token", &self.eos_token),
        ];
        for (name, token) in special {
            if let Some(token) = token {
                ctx.push((name.to_string(), JinjaValue::from(token.as_str())));
            }
        }
        ctx.push(("documents".to_string(), JinjaValue::from(())));
        for (name, value) in &opts.kwargs {
            ctx.push((name.clone(), JinjaValue::from_serialize(value)));
        }
        ctx.push((
            "messages".to_string(),
            JinjaValue::from_serialize(&messages),
        ));
        let tools = match &opts.tools {
            Some(tools) => JinjaValue::from_serialize(tools),
            None => JinjaValue::from(()),
        };
        ctx.push(("tools".to_string(), tools));
        ctx.push((
            "add_generation_prompt".to_string(),
            JinjaValue::from(opts.add_generation_prompt),
        ));
        // Later entries win, so kwargs override the special tokens.
        let ctx: JinjaValue = ctx.into_iter().collect();

        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .expect("the template was added in ChatTemplate::new");
        template.render(ctx).map_err(render_error)
    }
}

/// An environment configured like transformers' `_compile_jinja_template`.
fn jinja_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(python::format_value);
    env.add_filter("tojson", python::tojson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: &str| python::strftime_now(format));
    env
}

/// Rewrites transformers' `{% generation %}...{% endgeneration %}` (its AssistantTracker extension,
/// which marks assistant text for training masks and renders its body unchanged) into
/// `{% if true %}...{% endif %}`, keeping the tags' whitespace control, so minijinja can parse it.
fn without_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        let (before, tag) = rest.split_at(start);
        out.push_str(before);
        let body = &tag[2..];
        let modifier = body.len() - body.trim_start_matches(['-', '+']).len();
        let (modifier, keyword) = body.split_at(modifier.min(1));
        let keyword_start = keyword.len() - keyword.trim_start().len();
        let (space, keyword) = keyword.split_at(keyword_start);
        let replaced = [("endgeneration", "endif"), ("generation", "if true")]
            .into_iter()
            .find_map(|(name, replacement)| {
                let after = keyword.strip_prefix(name)?;
                let closes = after
                    .trim_start()
                    .trim_start_matches(['-', '+'])
                    .starts_with("%}");
                closes.then_some((name.len(), replacement))
            });
        out.push_str("{%");
        out.push_str(modifier);
        out.push_str(space);
        rest = match replaced {
            Some((len, replacement)) => {
                out.push_str(replacement);
                &keyword[len..]
            }
            None => keyword,
        };
    }
    out.push_str(rest);
    out
}

/// The message a template passed to `raise_exception`, carried as the error's source so that
/// [`render_error`] can tell it from minijinja's own errors.
#[derive(Debug)]
struct RaisedException(String);

impl fmt::Display for RaisedException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedException {}

/// transformers' `raise_exception(message)`: fails the render with `message`.
fn raise_exception(message: JinjaValue) -> Result<JinjaValue, JinjaError> {
    let message = message.to_string();
    Err(
        JinjaError::new(ErrorKind::InvalidOperation, message.clone())
            .with_source(RaisedException(message)),
    )
}

fn syntax_error(err: JinjaError) -> TemplateError {
    TemplateError::Syntax {
        line: err.line().unwrap_or(0),
        message: error_message(&err),
    }
}

fn render_error(err: JinjaError) -> TemplateError {
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        if let Some(RaisedException(message)) = inner.downcast_ref::<RaisedException>() {
            return TemplateError::Raised(message.clone());
        }
        source = inner.source();
    }
    TemplateError::Render {
        line: err.line(),
        message: error_message(&err),
    }
}

/// minijinja's kind and detail ("undefined value: ..."), without its "(in chat_template:3)" suffix,
/// since our errors carry the line themselves.
fn error_message(err: &JinjaError) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

/// What transformers does to a message before the template sees it: keys whose value is null are
/// dropped (`_normalize_chat_messages`), and reasoning given under any of its names is copied to
/// `thinking` (first) and `reasoning_content` (`_alias_reasoning_fields`).
fn normalize_message(index: usize, message: &Value) -> Result<Map<String, Value>, TemplateError> {
    let Value::Object(fields) = message else {
        return Err(TemplateError::InvalidMessage { index });
    };
    let fields: Map<String, Value> = fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let Some(reasoning) = REASONING_FIELDS
        .iter()
        .find_map(|key| fields.get(*key))
        .cloned()
    else {
        return Ok(fields);
    };
    // Python: {"thinking": reasoning, **message, "reasoning_content": reasoning}
    let mut aliased = Map::new();
    aliased.insert("thinking".to_string(), reasoning.clone());
    aliased.extend(fields);
    aliased.insert("reasoning_content".to_string(), reasoning);
    Ok(aliased)
}

#[cfg(test)]
mod tests;
