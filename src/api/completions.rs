//! POST /v1/completions: the legacy text-completion API. The prompt goes to the model as
//! it is (no chat template); `prompt` may be a list, each answered with `n` choices.

use crate::api::error::ApiError;
use crate::api::generation::{self, Delta, Envelope, StreamShape};
use crate::api::openai;
use crate::api::server::AppState;
use crate::engine::sampler::TokenLogprobs;
use crate::prompt::tokenizer::Tokenizer;
use crate::validate::{self, Input, Limits};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub async fn handle(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match run(state, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The legacy logprobs object: parallel lists over tokens.
fn legacy_logprobs(lps: &[(TokenLogprobs, String)], tok: &Tokenizer, offset0: usize) -> Value {
    let mut offset = offset0;
    let mut offsets = Vec::new();
    for (_, piece) in lps {
        offsets.push(offset);
        offset += piece.len();
    }
    json!({
        "tokens": lps.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        "token_logprobs": lps.iter().map(|(l, _)| openai::wire_logprob(l.logprob)).collect::<Vec<_>>(),
        "top_logprobs": lps.iter().map(|(l, _)| {
            l.top.iter().map(|&(id, lp)| (generation::token_text(tok, id), json!(openai::wire_logprob(lp)))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

async fn run(state: Arc<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    let req: crate::api::openai::CompletionRequest = crate::api::error::parse_json(&body)?;
    let loaded = state.loaded()?;
    let rt = loaded.runtime.clone();
    let limits = Limits {
        served_model_name: state.config.served_model_name.clone(),
        context_length: state.context_length(&rt),
        vocab_size: rt.vocab_size(),
        default_max_tokens: Some(16),
    };
    let valid = validate::validate_completion(&req, &limits)?;
    let Input::Completion { prompts, echo } = &valid.input else {
        unreachable!("validate_completion returns completion input");
    };
    let mut choices = Vec::new();
    let mut prompt_lens = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let (tok, text) = (rt.tokenizer.clone(), p.clone());
        let ids = tokio::task::spawn_blocking(move || tok.encode(&text, true))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        prompt_lens.push(ids.len());
        choices.extend(generation::submit(
            &state,
            loaded,
            &valid,
            ids,
            i * valid.n,
            "prompt",
            None,
            started,
        )?);
    }
    let envelope = Envelope::new(
        openai::COMPLETION_ID_PREFIX,
        &state.config.served_model_name,
    );
    let echo_prefix = |index: usize| {
        if *echo {
            prompts[index / valid.n].clone()
        } else {
            String::new()
        }
    };

    if valid.stream {
        let tok = rt.tokenizer.clone();
        let prompts2 = prompts.clone();
        let (echo2, n) = (*echo, valid.n);
        let choice = move |d: Delta| match d {
            Delta::Text {
                index,
                text,
                logprobs,
                first,
                ..
            } => {
                let text = if first && echo2 {
                    format!("{}{text}", prompts2[index / n])
                } else {
                    text
                };
                let lp = logprobs.map(|l| legacy_logprobs(&[l], &tok, 0));
                json!({"text": text, "index": index, "logprobs": lp, "finish_reason": null})
            }
            Delta::Finish { index, finish } => {
                json!({"text": "", "index": index, "logprobs": null, "finish_reason": finish.as_str()})
            }
        };
        let shape = StreamShape {
            envelope,
            object: openai::TEXT_COMPLETION_OBJECT,
            show_reasoning: false,
            include_usage: valid.include_usage,
            prompt_tokens: prompt_lens.iter().sum(),
        };
        return Ok(generation::stream_response(
            shape,
            rt.tokenizer.clone(),
            choices,
            started,
            choice,
        ));
    }

    let results = generation::collect(&rt.tokenizer, choices).await?;
    let usages: Vec<_> = results.iter().map(|r| r.usage.clone()).collect();
    generation::log_request(&envelope.id, &usages, started);
    let choices: Vec<Value> = results
        .iter()
        .map(|r| {
            let prefix = echo_prefix(r.index);
            let lp = valid
                .logprobs
                .map(|_| legacy_logprobs(&r.logprobs, &rt.tokenizer, prefix.len()));
            json!({"text": format!("{prefix}{}", r.text), "index": r.index, "logprobs": lp,
                   "finish_reason": r.usage.finish.as_str()})
        })
        .collect();
    let usage = generation::total_usage(&results, &prompt_lens);
    let body = envelope.wrap(openai::TEXT_COMPLETION_OBJECT, choices, Some(usage));
    Ok(Json(body).into_response())
}
