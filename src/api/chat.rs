//! POST /v1/chat/completions: validate, plan the reasoning, build the prompt, submit,
//! then answer at once or as a stream of `chat.completion.chunk` events. Also
//! llama-server's POST /apply-template, the prompt a chat request renders to.

use crate::api::admission::ClientId;
use crate::api::blocking;
use crate::api::error::{parse_json, ApiError};
use crate::api::generation::{self, Collected, Envelope, Submission};
use crate::api::sse::{self, ChunkFormat, Delta, StreamShape};
use crate::api::state::AppState;
use crate::api::tool_calls::{self, StreamPiece, ToolPlan, ToolStream};
use crate::constraint::Constraint;
use crate::engine::params::FinishReason;
use crate::engine::sampler::TokenLogprobs;
use crate::loaded_model::LoadedModel;
use crate::openai::{self, ChatCompletionRequest};
use crate::prompt::tokenizer::Tokenizer;
use crate::prompt::{self, PromptInput, PromptRequest};
use crate::reasoning::ReasoningPlan;
use crate::validate::{self, Input, Limits, ValidRequest};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

pub async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientId>,
    body: Bytes,
) -> Response {
    match run(state, client, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// POST /apply-template (llama-server): the prompt a chat request renders to, as text.
pub async fn apply_template(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    blocking::respond(move || {
        let p = prepare(&state, &body)?;
        let prompt = prompt::render(p.lm.prompt_tools(), &p.messages, p.kwargs, p.tool_defs)
            .map_err(|e| ApiError::prompt(e, "messages"))?;
        Ok(openai::ApplyTemplateResponse { prompt })
    })
    .await
}

/// A validated chat request with what its prompt needs.
struct Prepared {
    valid: ValidRequest,
    lm: Arc<LoadedModel>,
    messages: Vec<Value>,
    /// Template variables, `enable_thinking` added by the reasoning plan.
    kwargs: Map<String, Value>,
    plan: ReasoningPlan,
    /// How the answer is read for tool calls, if the request offers tools.
    tools: Option<ToolPlan>,
    /// A forced call's grammar.
    forced_call: Option<Constraint>,
    /// The tools as the template's `tools` variable shows them.
    tool_defs: Option<Vec<Value>>,
}

fn prepare(state: &AppState, body: &Bytes) -> Result<Prepared, ApiError> {
    prepare_request(state, &parse_json(body)?)
}

fn prepare_request(state: &AppState, req: &ChatCompletionRequest) -> Result<Prepared, ApiError> {
    let lm = state.loaded()?.model.clone();
    let limits = Limits {
        served_model_name: state.config.served_model_name.clone(),
        context_length: state.context_length(&lm),
        vocab_size: lm.vocab_size(),
        default_max_tokens: None,
    };
    let valid = validate::validate_chat(req, &limits)?;
    let Input::Chat {
        messages,
        chat_template_kwargs,
    } = &valid.input
    else {
        unreachable!("validate_chat returns chat input");
    };
    let (mut messages, mut kwargs) = (messages.clone(), chat_template_kwargs.clone());
    let (tools, forced_call) = tool_calls::prepare(&lm, valid.tools.as_ref(), &mut messages)?;
    let tool_defs = tools.and(valid.tools.as_ref()).map(|t| t.raw.clone());
    let Some(template) = &lm.template else {
        return Err(ApiError::prompt(
            prompt::PromptError::NoTemplate,
            "messages",
        ));
    };
    let plan = state
        .config
        .reasoning
        .plan(&valid.reasoning, Some(template.source()), &mut kwargs);
    Ok(Prepared {
        valid,
        lm,
        messages,
        kwargs,
        plan,
        tools,
        forced_call,
        tool_defs,
    })
}

/// A chat request made ready to submit: validated, its reasoning planned, its prompt
/// built and its grammar compiled. The Responses API builds its requests here too.
pub struct Built {
    pub valid: ValidRequest,
    pub lm: Arc<LoadedModel>,
    pub plan: ReasoningPlan,
    pub prompt: prompt::Prompt,
    /// The grammar every choice starts from (a forced call, or structured output).
    pub constraint: Option<Constraint>,
    /// How the answer is read for tool calls, if the request offers tools.
    pub tools: Option<ToolPlan>,
}

/// Validates a chat request and builds its prompt (CPU work: call it off the executor).
pub fn build(state: &AppState, req: &ChatCompletionRequest) -> Result<Built, ApiError> {
    let p = prepare_request(state, req)?;
    let request = PromptRequest {
        input: PromptInput::Chat {
            messages: p.messages,
            kwargs: p.kwargs,
            tools: p.tool_defs,
        },
        reasoning: Some(p.plan.clone()),
        max_tokens: p.valid.max_tokens,
        context: state.context_length(&p.lm),
    };
    let prompt =
        prompt::build(p.lm.prompt_tools(), request).map_err(|e| ApiError::prompt(e, "messages"))?;
    let constraint = match p.forced_call {
        Some(c) => Some(c),
        None => generation::constraint(&p.lm, &p.valid)?,
    };
    Ok(Built {
        valid: p.valid,
        lm: p.lm,
        plan: p.plan,
        prompt,
        constraint,
        tools: p.tools,
    })
}

async fn run(state: Arc<AppState>, client: ClientId, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    // Parsing, validating, rendering and tokenizing are CPU work: off the executor.
    let st = state.clone();
    let Built {
        valid,
        lm,
        plan,
        prompt,
        constraint,
        tools,
    } = blocking::run(move || build(&st, &parse_json(&body)?)).await?;
    let prompt_tokens = prompt.ids.len();
    let show_reasoning = prompt.reasoning.is_some() && !plan.raw && plan.show;
    let choices = generation::submit(
        &state,
        Submission {
            valid: &valid,
            prompts: vec![prompt],
            param: "messages",
            client: &client,
            started,
            constraint,
        },
    )?;
    let envelope = Envelope::new(
        openai::CHAT_COMPLETION_ID_PREFIX,
        &state.config.served_model_name,
    );

    if valid.stream {
        let shape = StreamShape {
            id: envelope.id.clone(),
            show_reasoning,
            include_usage: valid.include_usage,
            prompt_tokens,
            started,
        };
        let format = ChatChunks {
            envelope,
            include_usage: valid.include_usage,
            tokenizer: lm.tokenizer.clone(),
            tools,
            tool_streams: HashMap::new(),
            role_sent: HashSet::new(),
        };
        return Ok(sse::stream(format, shape, lm.tokenizer.clone(), choices));
    }

    let results = generation::collect(&lm.tokenizer, choices).await?;
    Ok(blocking::respond(move || {
        let usages: Vec<_> = results.iter().map(|r| &r.usage).collect();
        generation::log_request(&envelope.id, &usages, started);
        let usage = generation::total_usage(prompt_tokens, &usages);
        let choices = results
            .iter()
            .map(|r| {
                choice(
                    r,
                    valid.logprobs.is_some(),
                    show_reasoning,
                    tools,
                    &lm.tokenizer,
                )
            })
            .collect();
        Ok(openai::ChatCompletion {
            id: envelope.id,
            object: openai::CHAT_COMPLETION_OBJECT,
            created: envelope.created,
            model: envelope.model,
            system_fingerprint: openai::FINGERPRINT,
            choices,
            usage,
        })
    })
    .await)
}

/// One finished choice of a non-streamed answer.
fn choice(
    r: &Collected,
    logprobs: bool,
    show_reasoning: bool,
    tools: Option<ToolPlan>,
    tok: &Tokenizer,
) -> openai::ChatChoice {
    let (content, calls) = match tools {
        Some(plan) => tool_calls::split(plan, &r.text),
        None => (Some(r.text.clone()), Vec::new()),
    };
    let finish = match r.usage.finish {
        FinishReason::Stop if !calls.is_empty() => "tool_calls",
        f => f.as_str(),
    };
    openai::ChatChoice {
        index: r.index,
        message: openai::ChatMessage {
            role: openai::ASSISTANT,
            content,
            refusal: None,
            tool_calls: (!calls.is_empty()).then_some(calls),
            reasoning: show_reasoning.then(|| {
                openai::ReasoningFields::new((!r.reasoning.is_empty()).then(|| r.reasoning.clone()))
            }),
        },
        logprobs: logprobs.then(|| {
            openai::ChatLogprobs::new(
                r.logprobs
                    .iter()
                    .map(|(l, piece)| token_logprob(l, piece, tok))
                    .collect(),
            )
        }),
        finish_reason: finish,
    }
}

/// A chosen token's logprob and its alternatives, as the chat API writes them.
pub fn token_logprob(lp: &TokenLogprobs, piece: &str, tok: &Tokenizer) -> openai::TokenLogprob {
    let top_logprobs = lp
        .top
        .iter()
        .map(|&(id, l)| {
            let token = generation::token_text(tok, id);
            openai::TopLogprob {
                bytes: token.as_bytes().to_vec(),
                token,
                logprob: openai::wire_logprob(l),
            }
        })
        .collect();
    openai::TokenLogprob {
        token: piece.to_string(),
        logprob: openai::wire_logprob(lp.logprob),
        bytes: piece.as_bytes().to_vec(),
        top_logprobs,
    }
}

/// The chunks of a streamed chat completion.
struct ChatChunks {
    envelope: Envelope,
    include_usage: bool,
    tokenizer: Arc<Tokenizer>,
    /// How each choice's answer is read for tool calls.
    tools: Option<ToolPlan>,
    tool_streams: HashMap<usize, ToolStream>,
    /// Choices whose first chunk (the one with `role`) has gone out.
    role_sent: HashSet<usize>,
}

impl ChatChunks {
    fn wrap(
        &self,
        choices: Vec<openai::ChunkChoice>,
        usage: Option<openai::Usage>,
    ) -> openai::ChatCompletionChunk {
        openai::ChatCompletionChunk {
            id: self.envelope.id.clone(),
            object: openai::CHAT_COMPLETION_CHUNK_OBJECT,
            created: self.envelope.created,
            model: self.envelope.model.clone(),
            system_fingerprint: openai::FINGERPRINT,
            choices,
            // With include_usage every chunk has the field: null until the last.
            usage: self.include_usage.then_some(usage),
        }
    }
}

impl ChatChunks {
    /// One choice's chunk: `role` in the choice's first one.
    fn choice_chunk(
        &mut self,
        index: usize,
        delta: openai::ChatDelta,
    ) -> openai::ChatCompletionChunk {
        self.choice_chunk_with(index, delta, None, None)
    }

    fn choice_chunk_with(
        &mut self,
        index: usize,
        mut delta: openai::ChatDelta,
        logprobs: Option<openai::ChatLogprobs>,
        finish_reason: Option<&'static str>,
    ) -> openai::ChatCompletionChunk {
        if finish_reason.is_none() && self.role_sent.insert(index) {
            delta.role = Some(openai::ASSISTANT);
        }
        let choice = openai::ChunkChoice {
            index,
            delta,
            logprobs,
            finish_reason,
        };
        self.wrap(vec![choice], None)
    }

    /// Content and call pieces as chunks.
    fn pieces(
        &mut self,
        index: usize,
        pieces: Vec<StreamPiece>,
    ) -> Vec<openai::ChatCompletionChunk> {
        pieces
            .into_iter()
            .map(|p| match p {
                StreamPiece::Content(text) => self.choice_chunk(
                    index,
                    openai::ChatDelta {
                        content: Some(text),
                        ..Default::default()
                    },
                ),
                StreamPiece::Call(call) => self.choice_chunk(
                    index,
                    openai::ChatDelta {
                        tool_calls: Some(vec![call]),
                        ..Default::default()
                    },
                ),
            })
            .collect()
    }
}

impl ChunkFormat for ChatChunks {
    type Chunk = openai::ChatCompletionChunk;

    fn chunks(&mut self, delta: Delta) -> Vec<Self::Chunk> {
        match delta {
            Delta::Text {
                index,
                text,
                reasoning,
                logprobs,
                ..
            } => {
                let thought = (!reasoning.is_empty()).then_some(reasoning);
                let logprobs = logprobs.map(|(l, piece)| {
                    openai::ChatLogprobs::new(vec![token_logprob(&l, &piece, &self.tokenizer)])
                });
                let Some(plan) = self.tools else {
                    // A delta always says something: content unless it carries thinking.
                    let content = (!text.is_empty() || thought.is_none()).then_some(text);
                    let delta = openai::ChatDelta {
                        content,
                        reasoning_content: thought.clone(),
                        reasoning: thought,
                        ..Default::default()
                    };
                    return vec![self.choice_chunk_with(index, delta, logprobs, None)];
                };
                let pieces = self
                    .tool_streams
                    .entry(index)
                    .or_insert_with(|| ToolStream::new(plan))
                    .push(&text);
                let mut out = Vec::new();
                if thought.is_some() || logprobs.is_some() {
                    let delta = openai::ChatDelta {
                        reasoning_content: thought.clone(),
                        reasoning: thought,
                        ..Default::default()
                    };
                    out.push(self.choice_chunk_with(index, delta, logprobs, None));
                }
                out.extend(self.pieces(index, pieces));
                out
            }
            Delta::Finish { index, finish } => {
                let (rest, calls) = match self.tool_streams.get_mut(&index) {
                    Some(t) => (t.finish(), t.calls()),
                    None => (Vec::new(), 0),
                };
                let mut out = self.pieces(index, rest);
                let reason = match finish {
                    FinishReason::Stop if calls > 0 => "tool_calls",
                    f => f.as_str(),
                };
                out.push(self.choice_chunk_with(
                    index,
                    openai::ChatDelta::default(),
                    None,
                    Some(reason),
                ));
                out
            }
            // Chat requests never score their prompt.
            Delta::Prompt { .. } => Vec::new(),
        }
    }

    fn usage_chunk(&self, usage: openai::Usage) -> Self::Chunk {
        self.wrap(Vec::new(), Some(usage))
    }
}
