//! GET /v1/models, GET /v1/models/{id} (with candor's extensions: the context length and
//! how the model thinks), and llama-server's POST /tokenize and /detokenize.

use crate::api::blocking;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::openai;
use crate::reasoning::{Effort, Markers, ReasoningConfig};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

fn model_object(state: &AppState) -> openai::Model {
    let loaded = state.loaded().ok();
    openai::Model {
        id: state.config.served_model_name.clone(),
        object: openai::MODEL_OBJECT,
        created: state.started,
        owned_by: "candor",
        max_model_len: loaded.map(|l| state.context_length(&l.model)),
        reasoning: loaded
            .and_then(|l| l.model.reasoning_markers.as_ref())
            .map(|markers| model_reasoning(markers, &state.config.reasoning)),
    }
}

fn model_reasoning(markers: &Markers, config: &ReasoningConfig) -> openai::ModelReasoning {
    let budget = |effort| config.effort_budgets.get(effort);
    openai::ModelReasoning {
        start: markers.start.clone(),
        end: markers.end.clone(),
        format: config.format.to_string(),
        default_budget: config.budget,
        effort_budgets: openai::EffortBudgets {
            none: budget(Effort::None),
            minimal: budget(Effort::Minimal),
            low: budget(Effort::Low),
            medium: budget(Effort::Medium),
            high: budget(Effort::High),
            xhigh: budget(Effort::Xhigh),
        },
    }
}

pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    Json(openai::ModelList {
        object: openai::LIST_OBJECT,
        data: vec![model_object(&state)],
    })
    .into_response()
}

pub async fn get_one(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    if id == state.config.served_model_name {
        Json(model_object(&state)).into_response()
    } else {
        ApiError::model_not_found(&id).into_response()
    }
}

fn parse(body: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(&e))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object",
            None,
        ));
    }
    Ok(v)
}

/// Most tokens /tokenize answers with, and /detokenize takes: what a model can read is
/// far less; this bounds the size of the answer (about 10 MB of ids).
pub const MAX_TOKENS: usize = 1 << 20;
/// Most tokens /tokenize answers with when each comes with its text (`with_pieces`).
pub const MAX_PIECES: usize = 1 << 18;

pub async fn tokenize(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    blocking::respond(move || {
        let v = parse(&body)?;
        let lm = &state.loaded()?.model;
        let content = v
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("`content` must be a string", Some("content")))?;
        let add_special = match v.get("add_special") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "`add_special` must be a boolean",
                    Some("add_special"),
                ))
            }
        };
        let with_pieces = v
            .get("with_pieces")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ids = lm
            .tokenizer
            .encode(content, add_special)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let limit = if with_pieces { MAX_PIECES } else { MAX_TOKENS };
        if ids.len() > limit {
            return Err(ApiError::bad_request(
                format!(
                    "`content` is {} tokens; /tokenize answers with at most {limit}{}. Send \
                     it in parts.",
                    ids.len(),
                    if with_pieces {
                        " with `with_pieces`"
                    } else {
                        ""
                    }
                ),
                Some("content"),
            ));
        }
        let tokens = if with_pieces {
            openai::Tokens::WithPieces(
                ids.iter()
                    .map(|&id| openai::TokenPiece {
                        id,
                        piece: lm.tokenizer.decode(&[id], false).unwrap_or_default(),
                    })
                    .collect(),
            )
        } else {
            openai::Tokens::Ids(ids)
        };
        Ok(openai::TokenizeResponse { tokens })
    })
    .await
}

pub async fn detokenize(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    blocking::respond(move || {
        let v = parse(&body)?;
        let lm = &state.loaded()?.model;
        let vocab = lm.vocab_size() as u64;
        let tokens = v.get("tokens").and_then(Value::as_array).ok_or_else(|| {
            ApiError::bad_request("`tokens` must be a list of token ids", Some("tokens"))
        })?;
        if tokens.len() > MAX_TOKENS {
            return Err(ApiError::bad_request(
                format!(
                    "`tokens` holds {} ids; /detokenize takes at most {MAX_TOKENS}. Send them \
                     in parts.",
                    tokens.len()
                ),
                Some("tokens"),
            ));
        }
        let ids = tokens
            .iter()
            .map(|t| t.as_u64().filter(|&id| id < vocab).map(|id| id as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| {
                ApiError::bad_request(
                    format!("`tokens` must hold token ids below {vocab}"),
                    Some("tokens"),
                )
            })?;
        let content = lm
            .tokenizer
            .decode(&ids, false)
            .map_err(|e| ApiError::bad_request(e.to_string(), Some("tokens")))?;
        Ok(openai::DetokenizeResponse { content })
    })
    .await
}
