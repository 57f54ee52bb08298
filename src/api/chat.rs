//! POST /v1/chat/completions: validate, plan the reasoning, build the prompt, submit,
//! then answer at once or as a stream of `chat.completion.chunk` events. Also
//! llama-server's POST /apply-template, the prompt a chat request renders to.

use crate::api::admission::ClientId;
use crate::api::blocking;
use crate::api::error::{parse_json, ApiError};
use crate::api::generation::{self, Collected, Envelope, Submission};
use crate::api::sse::{self, ChunkFormat, Delta, StreamShape};
use crate::api::state::AppState;
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
        let prompt = prompt::render(p.lm.prompt_tools(), &p.messages, p.kwargs)
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
}

fn prepare(state: &AppState, body: &Bytes) -> Result<Prepared, ApiError> {
    let req: ChatCompletionRequest = parse_json(body)?;
    let lm = state.loaded()?.model.clone();
    let limits = Limits {
        served_model_name: state.config.served_model_name.clone(),
        context_length: state.context_length(&lm),
        vocab_size: lm.vocab_size(),
        default_max_tokens: None,
    };
    let valid = validate::validate_chat(&req, &limits)?;
    let Input::Chat {
        messages,
        chat_template_kwargs,
    } = &valid.input
    else {
        unreachable!("validate_chat returns chat input");
    };
    let (messages, mut kwargs) = (messages.clone(), chat_template_kwargs.clone());
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
    })
}

async fn run(state: Arc<AppState>, client: ClientId, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    // Parsing, validating, rendering and tokenizing are CPU work: off the executor.
    let st = state.clone();
    let (valid, lm, plan, prompt, constraint) = blocking::run(move || {
        let p = prepare(&st, &body)?;
        let request = PromptRequest {
            input: PromptInput::Chat {
                messages: p.messages,
                kwargs: p.kwargs,
            },
            reasoning: Some(p.plan.clone()),
            max_tokens: p.valid.max_tokens,
            context: st.context_length(&p.lm),
        };
        let prompt = prompt::build(p.lm.prompt_tools(), request)
            .map_err(|e| ApiError::prompt(e, "messages"))?;
        let constraint = generation::constraint(&p.lm, &p.valid)?;
        Ok((p.valid, p.lm, p.plan, prompt, constraint))
    })
    .await?;
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
            .map(|r| choice(r, valid.logprobs.is_some(), show_reasoning, &lm.tokenizer))
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
    tok: &Tokenizer,
) -> openai::ChatChoice {
    openai::ChatChoice {
        index: r.index,
        message: openai::ChatMessage {
            role: openai::ASSISTANT,
            content: Some(r.text.clone()),
            refusal: None,
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
        finish_reason: r.usage.finish.as_str(),
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

impl ChunkFormat for ChatChunks {
    type Chunk = openai::ChatCompletionChunk;

    fn chunk(&mut self, delta: Delta) -> Self::Chunk {
        let choice = match delta {
            Delta::Text {
                index,
                text,
                reasoning,
                logprobs,
                first,
            } => {
                let thought = (!reasoning.is_empty()).then_some(reasoning);
                openai::ChunkChoice {
                    index,
                    delta: openai::ChatDelta {
                        role: first.then_some(openai::ASSISTANT),
                        // A delta always says something: content unless it carries thinking.
                        content: (!text.is_empty() || thought.is_none()).then_some(text),
                        reasoning_content: thought.clone(),
                        reasoning: thought,
                    },
                    logprobs: logprobs.map(|(l, piece)| {
                        openai::ChatLogprobs::new(vec![token_logprob(&l, &piece, &self.tokenizer)])
                    }),
                    finish_reason: None,
                }
            }
            Delta::Finish { index, finish } => openai::ChunkChoice {
                index,
                delta: openai::ChatDelta::default(),
                logprobs: None,
                finish_reason: Some(finish.as_str()),
            },
        };
        self.wrap(vec![choice], None)
    }

    fn usage_chunk(&self, usage: openai::Usage) -> Self::Chunk {
        self.wrap(Vec::new(), Some(usage))
    }
}
