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

/// The legacy logprobs object, built token by token.
struct LegacyLogprobs<'t> {
    out: openai::CompletionLogprobs,
    tokenizer: &'t Tokenizer,
}

impl<'t> LegacyLogprobs<'t> {
    fn new(tokenizer: &'t Tokenizer) -> Self {
        Self {
            out: openai::CompletionLogprobs::default(),
            tokenizer,
        }
    }

    /// An echoed prompt from offset 0: its first token with no logprob (nothing predicts
    /// it), then each scored one.
    fn prompt(&mut self, ids: &[u32], scored: &[TokenLogprobs]) {
        let mut at = 0;
        for (i, &id) in ids.iter().enumerate() {
            let piece = generation::token_text(self.tokenizer, id);
            let lp = i.checked_sub(1).and_then(|j| scored.get(j));
            let next = at + piece.len();
            self.push(piece, lp, at);
            at = next;
        }
    }

    /// One token whose text starts at `at` in the choice's text.
    fn push(&mut self, piece: String, lp: Option<&TokenLogprobs>, at: usize) {
        self.out.tokens.push(piece);
        self.out
            .token_logprobs
            .push(lp.map(|l| openai::wire_logprob(l.logprob)));
        self.out.top_logprobs.push(lp.map(|l| {
            l.top
                .iter()
                .map(|&(id, x)| {
                    let text = generation::token_text(self.tokenizer, id);
                    (text, openai::wire_logprob(x))
                })
                .collect()
        }));
        self.out.text_offset.push(at);
    }

    /// Generated tokens, the first starting at `at`.
    fn generated(&mut self, lps: &[(TokenLogprobs, String)], mut at: usize) {
        for (l, piece) in lps {
            self.push(piece.clone(), Some(l), at);
            at += piece.len();
        }
    }
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
    let prompt_ids: Vec<Vec<u32>> = built.iter().map(|p| p.ids.clone()).collect();
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
            logprobs: valid.logprobs.is_some(),
            echoed,
            prompt_ids,
            n: valid.n,
            scored: HashMap::new(),
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
                let logprobs = valid.logprobs.map(|_| {
                    let mut lp = LegacyLogprobs::new(&lm.tokenizer);
                    if echo {
                        lp.prompt(&prompt_ids[r.index / valid.n], &r.prompt_logprobs);
                    }
                    lp.generated(&r.logprobs, prefix.len());
                    lp.out
                });
                openai::CompletionChoice {
                    text: format!("{prefix}{}", r.text),
                    index: r.index,
                    logprobs,
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
    /// The request asked for logprobs.
    logprobs: bool,
    /// Each choice's echoed prompt (empty without `echo`), sent with its first chunk.
    echoed: Vec<String>,
    /// Each prompt's tokens (choice `i` answers prompt `i / n`), for their logprobs.
    prompt_ids: Vec<Vec<u32>>,
    n: usize,
    /// The prompt logprobs received for a choice whose first chunk is not sent yet.
    scored: HashMap<usize, Vec<TokenLogprobs>>,
    /// Where each started choice's next token starts in its text, for `text_offset`.
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

    /// What a choice's chunk starts with: on its first chunk, the echoed prompt (and,
    /// with logprobs, the prompt's); later, nothing.
    fn start(&mut self, index: usize) -> (String, Option<openai::CompletionLogprobs>) {
        let mut lp = self.logprobs.then(|| LegacyLogprobs::new(&self.tokenizer));
        if self.offsets.contains_key(&index) {
            return (String::new(), lp.map(|l| l.out));
        }
        let echoed = self.echoed[index].clone();
        self.offsets.insert(index, echoed.len());
        let scored = self.scored.remove(&index).unwrap_or_default();
        if let (Some(lp), false) = (&mut lp, echoed.is_empty()) {
            lp.prompt(&self.prompt_ids[index / self.n], &scored);
        }
        (echoed, lp.map(|l| l.out))
    }
}

impl ChunkFormat for CompletionChunks {
    type Chunk = openai::Completion;

    fn chunks(&mut self, delta: Delta) -> Vec<Self::Chunk> {
        let choice = match delta {
            Delta::Prompt { index, logprobs } => {
                self.scored.entry(index).or_default().extend(logprobs);
                return Vec::new();
            }
            Delta::Text {
                index,
                text: piece,
                logprobs,
                ..
            } => {
                let (mut text, mut out) = self.start(index);
                text.push_str(&piece);
                let at = self.offsets.entry(index).or_default();
                if let (Some(out), Some(l)) = (&mut out, logprobs) {
                    let mut lp = LegacyLogprobs {
                        out: std::mem::take(out),
                        tokenizer: &self.tokenizer,
                    };
                    lp.generated(std::slice::from_ref(&l), *at);
                    *out = lp.out;
                    *at += l.1.len();
                }
                openai::CompletionChoice {
                    text,
                    index,
                    logprobs: out.filter(|l| !l.tokens.is_empty()),
                    finish_reason: None,
                }
            }
            Delta::Finish { index, finish } => {
                let (text, lp) = self.start(index);
                openai::CompletionChoice {
                    text,
                    index,
                    logprobs: lp.filter(|lp| !lp.tokens.is_empty()),
                    finish_reason: Some(finish.as_str()),
                }
            }
        };
        vec![self.wrap(vec![choice], None)]
    }

    fn usage_chunk(&self, usage: openai::Usage) -> Self::Chunk {
        self.wrap(Vec::new(), Some(usage))
    }
}
