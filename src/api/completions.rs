//! POST /v1/completions: the legacy text-completion API. The prompt goes to the model as
//! it is (no chat template); `prompt` may be a list, each answered with `n` choices.

use crate::api::admission::ClientId;
use crate::api::blocking;
use crate::api::error::{parse_json, ApiError};
use crate::api::generation::{self, Envelope, Submission};
use crate::api::sse::{self, ChunkFormat, Delta, StreamShape};
use crate::api::state::AppState;
use crate::engine::sampler::TokenLogprobs;
use crate::openai::{self, CompletionRequest};
use crate::prompt::tokenizer::Tokenizer;
use crate::prompt::{self, PromptInput, PromptRequest};
use crate::validate::{self, CompletionPrompt, Input, Limits};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::collections::HashMap;
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

/// The legacy logprobs object over `lps`, the first token starting at `offset` in the
/// choice's text.
fn legacy_logprobs(
    lps: &[(TokenLogprobs, String)],
    tok: &Tokenizer,
    offset: usize,
) -> openai::CompletionLogprobs {
    let mut out = openai::CompletionLogprobs::default();
    let mut at = offset;
    for (l, piece) in lps {
        out.tokens.push(piece.clone());
        out.token_logprobs.push(openai::wire_logprob(l.logprob));
        out.top_logprobs.push(
            l.top
                .iter()
                .map(|&(id, lp)| (generation::token_text(tok, id), openai::wire_logprob(lp)))
                .collect(),
        );
        out.text_offset.push(at);
        at += piece.len();
    }
    out
}

async fn run(state: Arc<AppState>, client: ClientId, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    // Parsing, validating and tokenizing are CPU work: off the executor.
    let st = state.clone();
    let (valid, lm, prompts, built, constraint) = blocking::run(move || {
        let req: CompletionRequest = parse_json(&body)?;
        let lm = st.loaded()?.model.clone();
        let context = st.context_length(&lm);
        let limits = Limits {
            served_model_name: st.config.served_model_name.clone(),
            context_length: context,
            vocab_size: lm.vocab_size(),
            default_max_tokens: Some(validate::DEFAULT_COMPLETION_MAX_TOKENS),
        };
        let valid = validate::validate_completion(&req, &limits)?;
        let Input::Completion { prompts, .. } = &valid.input else {
            unreachable!("validate_completion returns completion input");
        };
        let several = prompts.len() > 1;
        let built = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let input = match p {
                    CompletionPrompt::Text(text) => PromptInput::Text(text.clone()),
                    CompletionPrompt::Tokens(ids) => PromptInput::Tokens(ids.clone()),
                };
                let request = PromptRequest {
                    input,
                    reasoning: None,
                    max_tokens: valid.max_tokens,
                    context,
                };
                let param = match several {
                    true => format!("prompt[{i}]"),
                    false => "prompt".into(),
                };
                prompt::build(lm.prompt_tools(), request).map_err(|e| ApiError::prompt(e, &param))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The prompts as text, for `echo`.
        let prompts = prompts
            .iter()
            .map(|p| match p {
                CompletionPrompt::Text(text) => Ok(text.clone()),
                CompletionPrompt::Tokens(ids) => lm
                    .tokenizer
                    .decode(ids, false)
                    .map_err(|e| ApiError::internal(e.to_string())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let constraint = generation::constraint(&lm, &valid)?;
        Ok((valid, lm, prompts, built, constraint))
    })
    .await?;
    let echo = matches!(valid.input, Input::Completion { echo: true, .. });
    let prompt_tokens = built.iter().map(|p| p.ids.len()).sum();
    let choices = generation::submit(
        &state,
        Submission {
            valid: &valid,
            prompts: built,
            param: "prompt",
            client: &client,
            started,
            constraint,
        },
    )?;
    let envelope = Envelope::new(
        openai::COMPLETION_ID_PREFIX,
        &state.config.served_model_name,
    );
    // With `echo`, a choice's text starts with its prompt.
    let echoed: Vec<String> = (0..prompts.len() * valid.n)
        .map(|index| match echo {
            true => prompts[index / valid.n].clone(),
            false => String::new(),
        })
        .collect();

    if valid.stream {
        let shape = StreamShape {
            id: envelope.id.clone(),
            show_reasoning: false,
            include_usage: valid.include_usage,
            prompt_tokens,
            started,
        };
        let format = CompletionChunks {
            envelope,
            include_usage: valid.include_usage,
            tokenizer: lm.tokenizer.clone(),
            echoed,
            offsets: HashMap::new(),
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
                let prefix = &echoed[r.index];
                openai::CompletionChoice {
                    text: format!("{prefix}{}", r.text),
                    index: r.index,
                    logprobs: valid
                        .logprobs
                        .map(|_| legacy_logprobs(&r.logprobs, &lm.tokenizer, prefix.len())),
                    finish_reason: Some(r.usage.finish.as_str()),
                }
            })
            .collect();
        Ok(openai::Completion {
            id: envelope.id,
            object: openai::TEXT_COMPLETION_OBJECT,
            created: envelope.created,
            model: envelope.model,
            system_fingerprint: openai::FINGERPRINT,
            choices,
            usage: Some(Some(usage)),
        })
    })
    .await)
}

/// The chunks of a streamed text completion.
struct CompletionChunks {
    envelope: Envelope,
    include_usage: bool,
    tokenizer: Arc<Tokenizer>,
    /// Each choice's echoed prompt (empty without `echo`), sent before its first token.
    echoed: Vec<String>,
    /// Where each choice's next token starts in its text, for `text_offset`.
    offsets: HashMap<usize, usize>,
}

impl CompletionChunks {
    fn wrap(
        &self,
        choices: Vec<openai::CompletionChoice>,
        usage: Option<openai::Usage>,
    ) -> openai::Completion {
        openai::Completion {
            id: self.envelope.id.clone(),
            object: openai::TEXT_COMPLETION_OBJECT,
            created: self.envelope.created,
            model: self.envelope.model.clone(),
            system_fingerprint: openai::FINGERPRINT,
            choices,
            usage: self.include_usage.then_some(usage),
        }
    }
}

impl ChunkFormat for CompletionChunks {
    type Chunk = openai::Completion;

    fn chunks(&mut self, delta: Delta) -> Vec<Self::Chunk> {
        let choice = match delta {
            Delta::Text {
                index,
                text,
                logprobs,
                first,
                ..
            } => {
                let echoed = &self.echoed[index];
                let text = match first {
                    true => format!("{echoed}{text}"),
                    false => text,
                };
                let offset = self.offsets.entry(index).or_insert(echoed.len());
                let logprobs = logprobs.map(|l| {
                    let lp = legacy_logprobs(std::slice::from_ref(&l), &self.tokenizer, *offset);
                    *offset += l.1.len();
                    lp
                });
                openai::CompletionChoice {
                    text,
                    index,
                    logprobs,
                    finish_reason: None,
                }
            }
            Delta::Finish { index, finish } => openai::CompletionChoice {
                text: String::new(),
                index,
                logprobs: None,
                finish_reason: Some(finish.as_str()),
            },
        };
        vec![self.wrap(vec![choice], None)]
    }

    fn usage_chunk(&self, usage: openai::Usage) -> Self::Chunk {
        self.wrap(Vec::new(), Some(usage))
    }
}
