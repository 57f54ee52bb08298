//! POST /v1/chat/completions: validate, render the chat template, tokenize, then answer
//! at once or as a stream of `chat.completion.chunk` events.

use crate::api::error::ApiError;
use crate::api::generation::{self, Delta, Envelope, StreamShape};
use crate::api::openai;
use crate::api::server::AppState;
use crate::engine::params::ReasoningParams;
use crate::output::reasoning::{Markers, Phase};
use crate::prompt::template::RenderOptions;
use crate::reasoning::ReasoningPlan;
use crate::runtime::Runtime;
use crate::validate::{self, Input, Limits, ValidRequest};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

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
            json!({"token": t, "logprob": openai::wire_logprob(l), "bytes": t.as_bytes()})
        })
        .collect();
    json!({"token": piece, "logprob": openai::wire_logprob(lp.logprob), "bytes": piece.as_bytes(), "top_logprobs": top})
}

pub async fn handle(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match run(state, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A validated chat request with everything needed to render its prompt.
struct Prepared {
    valid: ValidRequest,
    rt: Arc<Runtime>,
    opts: RenderOptions,
    plan: ReasoningPlan,
}

fn prepare(state: &AppState, body: &Bytes) -> Result<Prepared, ApiError> {
    let req: crate::api::openai::ChatCompletionRequest = crate::api::error::parse_json(body)?;
    let rt = state.loaded()?.runtime.clone();
    let limits = Limits {
        served_model_name: state.config.served_model_name.clone(),
        context_length: state.context_length(&rt),
        vocab_size: rt.vocab_size(),
        default_max_tokens: None,
    };
    let valid = validate::validate_chat(&req, &limits)?;
    let Input::Chat {
        chat_template_kwargs,
        ..
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
    let mut kwargs = chat_template_kwargs.clone();
    let plan = state
        .config
        .reasoning
        .plan(&valid.reasoning, Some(template.source()), &mut kwargs);
    let opts = RenderOptions {
        add_generation_prompt: true,
        tools: None,
        kwargs,
    };
    Ok(Prepared {
        valid,
        rt,
        opts,
        plan,
    })
}

impl Prepared {
    fn messages(&self) -> Vec<Value> {
        match &self.valid.input {
            Input::Chat { messages, .. } => messages.clone(),
            Input::Completion { .. } => unreachable!("validate_chat returns chat input"),
        }
    }
}

/// POST /apply-template (llama-server): the prompt a chat request renders to, as text.
pub async fn apply_template(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let result = async {
        let p = prepare(&state, &body)?;
        let messages = p.messages();
        tokio::task::spawn_blocking(move || {
            let template = p.rt.template.as_ref().expect("checked in prepare");
            template
                .render(&template.prepare_messages(&messages), &p.opts)
                .map_err(|e| ApiError::bad_request(format!("chat template: {e}"), Some("messages")))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    }
    .await;
    match result {
        Ok(prompt) => Json(json!({ "prompt": prompt })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run(state: Arc<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    let prepared = prepare(&state, &body)?;
    let messages = prepared.messages();
    let Prepared {
        valid,
        rt,
        opts,
        plan,
    } = prepared;
    let loaded = state.loaded()?;
    // Rendering and tokenizing are CPU work: keep them off the async runtime.
    let (rt2, plan2) = (rt.clone(), plan.clone());
    let rendered = tokio::task::spawn_blocking(move || render(&rt2, &messages, &opts, &plan2))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (prompt, reasoning) = rendered?;
    let prompt_len = prompt.len();
    let separated = reasoning.is_some() && !plan.raw;
    let show_reasoning = separated && plan.show;
    let choices = generation::submit(
        &state, loaded, &valid, prompt, 0, "messages", reasoning, started,
    )?;
    let envelope = Envelope::new(
        openai::CHAT_COMPLETION_ID_PREFIX,
        &state.config.served_model_name,
    );

    if valid.stream {
        let tok = rt.tokenizer.clone();
        let choice = move |d: Delta| match d {
            Delta::Text {
                index,
                text,
                reasoning,
                logprobs,
                first,
            } => {
                let mut delta = Map::new();
                if first {
                    delta.insert("role".into(), json!("assistant"));
                }
                if !reasoning.is_empty() {
                    delta.insert("reasoning_content".into(), json!(reasoning));
                    delta.insert("reasoning".into(), json!(reasoning));
                }
                if !text.is_empty() || reasoning.is_empty() {
                    delta.insert("content".into(), json!(text));
                }
                let lp = logprobs
                    .map(|(l, piece)| json!({"content": [logprob_entry(&l, &piece, &tok)]}));
                json!({"index": index, "delta": delta, "logprobs": lp, "finish_reason": null})
            }
            Delta::Finish { index, finish } => {
                json!({"index": index, "delta": {}, "logprobs": null, "finish_reason": finish.as_str()})
            }
        };
        let shape = StreamShape {
            envelope,
            object: openai::CHAT_COMPLETION_CHUNK_OBJECT,
            show_reasoning,
            include_usage: valid.include_usage,
            prompt_tokens: prompt_len,
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
            let lp = valid.logprobs.map(|_| {
                json!({"content": r.logprobs.iter().map(|(l, p)| logprob_entry(l, p, &rt.tokenizer)).collect::<Vec<_>>()})
            });
            let mut message = json!({"role": "assistant", "content": r.text});
            if show_reasoning {
                let thought = (!r.reasoning.is_empty()).then(|| r.reasoning.clone());
                message["reasoning_content"] = json!(thought);
                message["reasoning"] = json!(thought);
            }
            json!({"index": r.index, "message": message,
                   "logprobs": lp, "finish_reason": r.usage.finish.as_str()})
        })
        .collect();
    let usage = generation::total_usage(&results, &[prompt_len]);
    Ok(Json(envelope.wrap(openai::CHAT_COMPLETION_OBJECT, choices, Some(usage))).into_response())
}

/// Renders the conversation, tokenizes it, and (for reasoning models) works out where the
/// prompt leaves the model and the tokens that would close its thinking.
fn render(
    rt: &Runtime,
    messages: &[Value],
    opts: &RenderOptions,
    plan: &ReasoningPlan,
) -> Result<(Vec<u32>, Option<ReasoningParams>), ApiError> {
    let template = rt.template.as_ref().expect("checked by the caller");
    let messages = template.prepare_messages(messages);
    let text = template
        .render(&messages, opts)
        .map_err(|e| ApiError::bad_request(format!("chat template: {e}"), Some("messages")))?;
    let prompt = rt
        .tokenizer
        .encode(&text, false)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let Some(markers) = &rt.reasoning_markers else {
        return Ok((prompt, None));
    };
    let encode = |t: &str| {
        rt.tokenizer
            .encode(t, false)
            .map_err(|e| ApiError::internal(e.to_string()))
    };
    // The end marker by its id where it has one: the splitter recognises it by id, and
    // tokenizing its text might not give that id back.
    let closing = match markers.end_id {
        Some(end_id) => {
            let (before, after) = Markers::closing_parts(plan.budget_message.as_deref());
            let mut ids = encode(&before)?;
            ids.push(end_id);
            ids.extend(encode(after)?);
            ids
        }
        None => encode(&markers.closing_text(plan.budget_message.as_deref()))?,
    };
    let params = ReasoningParams {
        markers: markers.clone(),
        phase: Phase::from_prompt(&text, markers),
        raw: plan.raw,
        budget: plan.budget,
        closing,
    };
    Ok((prompt, Some(params)))
}
