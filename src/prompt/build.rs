//! [`build`]: from what a request asks for to the token ids the engine runs. Messages are
//! rendered with the model's chat template (text prompts go as they are), tokenized,
//! checked against the context, and, for a reasoning model, followed to the point where
//! the prompt leaves the model (inside a thinking block, after one, or undecided) with
//! the tokens that would close its thinking when a budget runs out.
//!
//! The server and the CLI both build their prompts here. This is CPU work: the server
//! calls it off the async runtime.

use crate::prompt::template::{ChatTemplate, RenderOptions, TemplateError};
use crate::prompt::tokenizer::{Tokenizer, TokenizerError};
use crate::reasoning::{Markers, ReasoningParams, ReasoningPlan};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What building a prompt needs of a model: its tokenizer, its chat template and the
/// markers of its thinking (`LoadedModel::prompt_tools` lends them).
#[derive(Clone, Copy)]
pub struct PromptTools<'a> {
    pub tokenizer: &'a Tokenizer,
    pub template: Option<&'a ChatTemplate>,
    /// None for models that do not think.
    pub markers: Option<&'a Arc<Markers>>,
}

/// What the prompt is made of.
#[derive(Debug, Clone)]
pub enum PromptInput {
    /// Chat messages for the template, and extra template variables (`enable_thinking`).
    Chat {
        messages: Vec<Value>,
        kwargs: Map<String, Value>,
        /// The request's tools, for the template's `tools` variable.
        tools: Option<Vec<Value>>,
    },
    /// Text sent as it is, with the model's BOS where it wants one.
    Text(String),
    /// Token ids sent as they are (no BOS added).
    Tokens(Vec<u32>),
}

/// One prompt to build.
#[derive(Debug, Clone)]
pub struct PromptRequest {
    pub input: PromptInput,
    /// Follow the thinking (chat with a reasoning model): how to show and bound it.
    /// `None` leaves the thinking in the text, as generated.
    pub reasoning: Option<ReasoningPlan>,
    /// The completion tokens asked for; with them the prompt must fit the context.
    /// `None`: only the prompt must fit, leaving room for one token.
    pub max_tokens: Option<usize>,
    /// Tokens a prompt plus its completion may use.
    pub context: usize,
}

/// A prompt ready for the engine.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Vec<u32>,
    /// Set when the model thinks and the request follows it.
    pub reasoning: Option<ReasoningParams>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "this model has no chat template; start the server with --chat-template FILE, or use \
         /v1/completions"
    )]
    NoTemplate,
    #[error("chat template: {0}")]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(
        "the prompt has {prompt_tokens} tokens{} but the context holds {context}",
        max_tokens.map(|m| format!(" and the completion asks for {m}")).unwrap_or_default()
    )]
    ContextLengthExceeded {
        prompt_tokens: usize,
        max_tokens: Option<usize>,
        context: usize,
    },
    #[error("token id {id} (at {index}) is not in the vocabulary of {vocab} tokens")]
    UnknownToken { index: usize, id: u32, vocab: usize },
}

/// The text a conversation renders to (what `POST /apply-template` shows).
pub fn render(
    tools: PromptTools,
    messages: &[Value],
    kwargs: Map<String, Value>,
    tool_defs: Option<Vec<Value>>,
) -> Result<String, PromptError> {
    let template = tools.template.ok_or(PromptError::NoTemplate)?;
    let opts = RenderOptions {
        add_generation_prompt: true,
        tools: tool_defs,
        kwargs,
    };
    Ok(template.render(&template.prepare_messages(messages), &opts)?)
}

/// Renders, tokenizes and checks one prompt.
pub fn build(tools: PromptTools, req: PromptRequest) -> Result<Prompt, PromptError> {
    let (text, ids) = match req.input {
        PromptInput::Chat {
            messages,
            kwargs,
            tools: tool_defs,
        } => {
            let text = render(tools, &messages, kwargs, tool_defs)?;
            // The template writes BOS itself where the model wants it.
            let ids = tools.tokenizer.encode(&text, false)?;
            (Some(text), ids)
        }
        PromptInput::Text(text) => (None, tools.tokenizer.encode(&text, true)?),
        PromptInput::Tokens(ids) => {
            let vocab = tools.tokenizer.vocab_size();
            if let Some((index, &id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= vocab)
            {
                return Err(PromptError::UnknownToken { index, id, vocab });
            }
            (None, ids)
        }
    };
    let wanted = ids.len() + req.max_tokens.unwrap_or(1);
    if ids.len() >= req.context || wanted > req.context {
        return Err(PromptError::ContextLengthExceeded {
            prompt_tokens: ids.len(),
            max_tokens: req.max_tokens,
            context: req.context,
        });
    }
    let reasoning = match (&text, &req.reasoning, tools.markers) {
        (Some(text), Some(plan), Some(markers)) => {
            Some(ReasoningParams::new(markers, text, plan, |t: &str| {
                tools.tokenizer.encode(t, false)
            })?)
        }
        _ => None,
    };
    Ok(Prompt { ids, reasoning })
}
