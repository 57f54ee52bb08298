//! POST /v1/chat/completions: validate, render the chat template, tokenize, then answer
//! at once or as a stream of `chat.completion.chunk` events.

use crate::api::error::ApiError;
use crate::api::generation::{self, Delta};
use crate::api::server::AppState;
use crate::prompt::template::RenderOptions;
use crate::validate::{self, Input, Limits};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub const FINGERPRINT: &str = concat!("candor-", env!("CARGO_PKG_VERSION"));

pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| {
            let c = rng.random_range(0..36u8);
            (if c < 10 { b'0' + c } else { b'a' + c - 10 }) as char
        })
        .collect();
    format!("{prefix}-{tail}")
}

pub fn logprob_entry(
    lp: &crate::engine::sampler::TokenLogprobs,
    piece: &str,
    tok: &crate::prompt::tokenizer::Tokenizer,
) -> Value {
    let top: Vec<Value> = lp
        .top
        .iter()
        .map(|&(id, l)| {
            let t = generation::token_text(tok, id);
            json!({"token": t, "logprob": l, "bytes": t.as_bytes()})
        })
        .collect();
    json!({"token": piece, "logprob": lp.logprob, "bytes": piece.as_bytes(), "top_logprobs": top})
}

pub async fn handle(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match run(state, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(state: Arc<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    let req: crate::api::openai::ChatCompletionRequest = crate::api::error::parse_json(&body)?;
    let loaded = state.loaded()?;
    let rt = loaded.runtime.clone();
    let limits = Limits {
        served_model_name: state.config.served_model_name.clone(),
        context_length: state.context_length(&rt),
        vocab_size: rt.model.config().vocab_size,
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
    let Some(template) = &rt.template else {
        return Err(ApiError::bad_request(
            "this model has no chat template; start the server with --chat-template FILE, or use /v1/completions",
            Some("messages"),
        ));
    };
    let opts = RenderOptions {
        add_generation_prompt: true,
        tools: None,
        kwargs: chat_template_kwargs.clone(),
    };
    // Rendering and tokenizing are CPU work: keep them off the async runtime.
    let (messages, rt2) = (messages.clone(), rt.clone());
    let template_result = tokio::task::spawn_blocking(move || -> Result<Vec<u32>, ApiError> {
        let template = rt2.template.as_ref().expect("checked above");
        let text = template
            .render(&messages, &opts)
            .map_err(|e| ApiError::bad_request(format!("chat template: {e}"), Some("messages")))?;
        rt2.tokenizer
            .encode(&text, false)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let _ = template;
    let prompt = template_result?;
    let prompt_len = prompt.len();
    let choices = generation::submit(&state, loaded, &valid, prompt, 0, "messages")?;
    let id = new_id("chatcmpl");
    let created = crate::api::server::unix_now();
    let model = state.config.served_model_name.clone();

    if valid.stream {
        let tok = rt.tokenizer.clone();
        let (id2, model2) = (id.clone(), model.clone());
        let chunk = move |d: Delta| {
            let choice = match d {
                Delta::Text {
                    index,
                    text,
                    logprobs,
                    first,
                } => {
                    let mut delta = json!({"content": text});
                    if first {
                        delta = json!({"role": "assistant", "content": text});
                    }
                    let lp = logprobs
                        .map(|(l, piece)| json!({"content": [logprob_entry(&l, &piece, &tok)]}));
                    json!({"index": index, "delta": delta, "logprobs": lp, "finish_reason": null})
                }
                Delta::Finish { index, finish } => {
                    json!({"index": index, "delta": {}, "logprobs": null, "finish_reason": finish.as_str()})
                }
            };
            json!({"id": id2, "object": "chat.completion.chunk", "created": created, "model": model2,
                   "system_fingerprint": FINGERPRINT, "choices": [choice]})
        };
        let usage_chunk: Option<Box<dyn Fn(Value) -> Value + Send>> = if valid.include_usage {
            let (id3, model3) = (id.clone(), model.clone());
            Some(Box::new(move |usage: Value| {
                json!({"id": id3, "object": "chat.completion.chunk", "created": created, "model": model3,
                       "system_fingerprint": FINGERPRINT, "choices": [], "usage": usage})
            }))
        } else {
            None
        };
        return Ok(generation::stream_response(
            id,
            rt.tokenizer.clone(),
            choices,
            started,
            chunk,
            usage_chunk,
        ));
    }

    let results = generation::collect(&rt.tokenizer, choices).await?;
    let usages: Vec<_> = results.iter().map(|r| r.usage.clone()).collect();
    generation::log_request(&id, &usages, started);
    let choices: Vec<Value> = results
        .iter()
        .map(|r| {
            let lp = valid.logprobs.map(|_| {
                json!({"content": r.logprobs.iter().map(|(l, p)| logprob_entry(l, p, &rt.tokenizer)).collect::<Vec<_>>()})
            });
            json!({"index": r.index, "message": {"role": "assistant", "content": r.text},
                   "logprobs": lp, "finish_reason": r.usage.finish.as_str()})
        })
        .collect();
    let body = json!({"id": id, "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": FINGERPRINT, "choices": choices,
        "usage": generation::total_usage(&results, &[prompt_len])});
    Ok(Json(body).into_response())
}
