//! OpenAI's Responses API: `POST /v1/responses` (a response at once, or as typed
//! events), `GET` and `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.
//!
//! A request is read into the chat request candor already runs ([`request`], with its
//! input items turned into messages by [`items`]) and goes the chat path: validation,
//! reasoning plan, tools and grammar, `prompt::build`, the engine ([`super::chat::build`],
//! [`super::generation`]). The answer is shaped into output items by [`output`]: the
//! thinking as a `reasoning` item, then `message` and `function_call` items; streamed by
//! [`stream`]. Finished responses are kept in [`super::response_store`] for
//! `previous_response_id`, whose conversation is rendered again in front of the new input
//! (the prefix cache finds its blocks).

pub mod items;
pub mod output;
pub mod request;
pub mod stream;

use crate::api::admission::ClientId;
use crate::api::blocking;
use crate::api::chat::{self, Built};
use crate::api::error::{parse_json, ApiError};
use crate::api::generation::{self, Submission};
use crate::api::response_store::{Owner, StoredResponse};
use crate::api::state::AppState;
use crate::api::tool_calls::ToolPlan;
use crate::engine::params::FinishReason;
use crate::engine::{Event as EngineEvent, Usage};
use crate::openai::responses::{
    new_id, CreateResponseRequest, DeletedResponse, IncompleteDetails, InputTokensDetails, Item,
    ItemList, OutputTokensDetails, Response, ResponseError, ResponseUsage, Status,
    RESPONSE_ID_PREFIX, RESPONSE_OBJECT,
};
use crate::openai::{unix_now, LIST_OBJECT};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Extension;
use output::Output;
use request::Settings;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Most items one page of `input_items` lists.
const MAX_LIST_LIMIT: usize = 100;

/// POST /v1/responses.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientId>,
    body: Bytes,
) -> HttpResponse {
    match run(state, client, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// GET /v1/responses/{id}.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientId>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResponse {
    if query.get("stream").is_some_and(|s| s != "false") {
        return items::unsupported(
            "stream",
            "'stream' is not supported when retrieving a response: it is returned whole.",
        )
        .into_response();
    }
    if query.contains_key("include") || query.contains_key("include[]") {
        return items::unsupported(
            "include",
            "'include' is not supported: candor has no extra output to include.",
        )
        .into_response();
    }
    match state.responses.get(&id, Owner::of(&client)) {
        Some(stored) => blocking::respond(move || Ok(stored.response.clone())).await,
        None => not_found(&id).into_response(),
    }
}

/// DELETE /v1/responses/{id}.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientId>,
    Path(id): Path<String>,
) -> HttpResponse {
    if !state.responses.remove(&id, Owner::of(&client)) {
        return not_found(&id).into_response();
    }
    blocking::respond(move || {
        Ok(DeletedResponse {
            id,
            object: RESPONSE_OBJECT,
            deleted: true,
        })
    })
    .await
}

/// GET /v1/responses/{id}/input_items: the request's input items, newest first unless
/// `order=asc`, `limit` (1-100, default 20) at a time after the item `after`.
pub async fn input_items(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientId>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(stored) = state.responses.get(&id, Owner::of(&client)) else {
        return not_found(&id).into_response();
    };
    match page(&stored.input, &query) {
        Ok(list) => blocking::respond(move || Ok(list)).await,
        Err(e) => e.into_response(),
    }
}

fn page(input: &[Item], query: &HashMap<String, String>) -> Result<ItemList, ApiError> {
    let limit = match query.get("limit") {
        None => 20,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    format!("Invalid 'limit': '{s}'. Expected an integer from 1 to 100."),
                    Some("limit"),
                ))
            }
        },
    };
    let mut items: Vec<&Item> = match query.get("order").map(String::as_str) {
        None | Some("desc") => input.iter().rev().collect(),
        Some("asc") => input.iter().collect(),
        Some(other) => {
            return Err(ApiError::bad_request(
                format!("Invalid 'order': '{other}'. Supported values are: 'asc' and 'desc'."),
                Some("order"),
            ))
        }
    };
    if let Some(after) = query.get("after") {
        let Some(at) = items.iter().position(|i| i.id() == after) else {
            return Err(ApiError::bad_request(
                format!("No input item '{after}' in this response."),
                Some("after"),
            ));
        };
        items.drain(..=at);
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    Ok(ItemList {
        object: LIST_OBJECT,
        first_id: items
            .first()
            .map(|i| i.id().to_string())
            .unwrap_or_default(),
        last_id: items.last().map(|i| i.id().to_string()).unwrap_or_default(),
        data: items.into_iter().cloned().collect(),
        has_more,
    })
}

fn not_found(id: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Response with id '{id}' not found."),
    );
    e.param = Some("response_id".into());
    e
}

/// A request read, checked and built, with what its response will say.
struct Prepared {
    built: Built,
    settings: Settings,
    input: Vec<Item>,
    /// The stored conversation it continues.
    history: Vec<Item>,
}

fn prepare(state: &AppState, owner: Owner, body: &[u8]) -> Result<Prepared, ApiError> {
    let req: CreateResponseRequest = parse_json(body)?;
    let head = request::head(&req)?;
    let input = items::parse(req.input.as_ref())?;
    let history = match &head.previous_response_id {
        None => Vec::new(),
        Some(_) if !state.responses.enabled() => {
            return Err(items::unsupported(
                "previous_response_id",
                "'previous_response_id' cannot be used: this server keeps no responses \
                 (--responses-store 0). Send the whole conversation in 'input'.",
            ))
        }
        Some(id) => match state.responses.get(id, owner) {
            Some(stored) => stored.conversation.clone(),
            None => {
                let mut e = ApiError::bad_request(
                    format!("Previous response with id '{id}' not found."),
                    Some("previous_response_id"),
                );
                e.code = Some("previous_response_not_found".into());
                return Err(e);
            }
        },
    };
    let mut conversation = history.clone();
    conversation.extend(input.iter().cloned());
    let (chat_request, mut settings) = request::to_chat(&req, &head, &conversation)?;
    settings.store &= state.responses.enabled();
    let built = chat::build(state, &chat_request).map_err(request::renamed)?;
    Ok(Prepared {
        built,
        settings,
        input,
        history,
    })
}

async fn run(
    state: Arc<AppState>,
    client: ClientId,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let owner = Owner::of(&client);
    let st = state.clone();
    let Prepared {
        built,
        settings,
        input,
        history,
    } = blocking::run(move || prepare(&st, owner, &body)).await?;
    let Built {
        valid,
        plan,
        prompt,
        constraint,
        tools,
        ..
    } = built;
    let pending = Pending {
        id: new_id(RESPONSE_ID_PREFIX),
        created_at: unix_now(),
        model: state.config.served_model_name.clone(),
        prompt_tokens: prompt.ids.len(),
        show_reasoning: prompt.reasoning.is_some() && !plan.raw && plan.show,
        tools,
        settings,
        input,
        history,
        owner,
        started,
    };
    let mut choices = generation::submit(
        &state,
        Submission {
            valid: &valid,
            prompts: vec![prompt],
            param: "input",
            client: &client,
            started,
            constraint,
        },
    )
    .map_err(request::renamed)?;
    let choice = choices
        .pop()
        .ok_or_else(|| ApiError::internal("the engine returned no sequence"))?;
    if valid.stream {
        return Ok(stream::respond(state, pending, choice));
    }

    let mut events = choice.events;
    let mut output = Output::new(pending.tools);
    let usage = loop {
        match events.recv().await {
            Some(EngineEvent::Token {
                text, reasoning, ..
            }) => {
                if pending.show_reasoning {
                    output.reasoning(&reasoning);
                }
                output.answer(&text);
            }
            Some(EngineEvent::Done(usage)) => {
                output.finish(usage.finish);
                break usage;
            }
            Some(EngineEvent::Error(e)) => return Err(ApiError::internal(e)),
            // Responses never score their prompt.
            Some(EngineEvent::PromptLogprobs(_)) => {}
            None => return Err(ApiError::internal("the engine dropped the request")),
        }
    };
    let response = pending.finish(&state, output, &usage);
    Ok(blocking::respond(move || Ok(response)).await)
}

/// A response under way: what it will say besides its output.
pub struct Pending {
    id: String,
    created_at: u64,
    model: String,
    prompt_tokens: usize,
    /// Thinking goes into a reasoning item (else it is dropped; still counted).
    show_reasoning: bool,
    tools: Option<ToolPlan>,
    settings: Settings,
    input: Vec<Item>,
    history: Vec<Item>,
    owner: Owner,
    started: Instant,
}

impl Pending {
    /// The response object in a given state.
    fn response(
        &self,
        status: Status,
        output: Vec<Item>,
        usage: Option<ResponseUsage>,
        error: Option<ResponseError>,
    ) -> Response {
        let s = &self.settings;
        Response {
            id: self.id.clone(),
            object: RESPONSE_OBJECT,
            created_at: self.created_at,
            status,
            completed_at: (status == Status::Completed).then(unix_now),
            error,
            incomplete_details: (status == Status::Incomplete).then_some(IncompleteDetails {
                reason: "max_output_tokens",
            }),
            instructions: s.instructions.clone(),
            max_output_tokens: s.max_output_tokens,
            model: self.model.clone(),
            output_text: output::output_text(&output),
            output,
            parallel_tool_calls: s.parallel_tool_calls,
            previous_response_id: s.previous_response_id.clone(),
            reasoning: s.reasoning.clone(),
            store: s.store,
            temperature: s.temperature,
            text: s.text.clone(),
            tool_choice: s.tool_choice.clone(),
            tools: s.tools.clone(),
            top_p: s.top_p,
            truncation: "disabled",
            usage,
            user: s.user.clone(),
            safety_identifier: s.safety_identifier.clone(),
            metadata: s.metadata.clone(),
            background: false,
        }
    }

    /// The response as it starts (`response.created`, `response.in_progress`).
    fn in_progress(&self) -> Response {
        self.response(Status::InProgress, Vec::new(), None, None)
    }

    /// The finished response: logged, and kept when the request asked to store it.
    fn finish(&self, state: &AppState, output: Output, usage: &Usage) -> Response {
        generation::log_request(&self.id, &[usage], self.started);
        let status = match usage.finish {
            FinishReason::Stop => Status::Completed,
            _ => Status::Incomplete,
        };
        let u = generation::total_usage(self.prompt_tokens, &[usage]);
        let usage = ResponseUsage {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u.prompt_tokens_details.cached_tokens,
                cache_write_tokens: 0,
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: u.completion_tokens_details.reasoning_tokens,
            },
            total_tokens: u.total_tokens,
        };
        let items = output.into_items();
        let response = self.response(status, items.clone(), Some(usage), None);
        if self.settings.store {
            let mut conversation = self.history.clone();
            conversation.extend(self.input.iter().cloned());
            conversation.extend(items);
            state.responses.insert(
                self.owner,
                StoredResponse {
                    response: response.clone(),
                    input: self.input.clone(),
                    conversation,
                },
            );
        }
        response
    }

    /// The response of a generation that failed, with what it had written.
    fn failed(&self, output: Vec<Item>, message: String) -> Response {
        self.response(
            Status::Failed,
            output,
            None,
            Some(ResponseError {
                code: "server_error",
                message,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::responses::{Content, Message};

    fn message(id: &str) -> Item {
        Item::Message(Message {
            id: id.into(),
            role: "user".into(),
            status: Status::Completed,
            content: vec![Content::InputText { text: id.into() }],
        })
    }

    #[test]
    fn input_items_pages() {
        let input: Vec<Item> = (0..5).map(|i| message(&format!("msg_{i}"))).collect();
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let all = page(&input, &q(&[])).unwrap();
        assert_eq!(
            (all.first_id.as_str(), all.last_id.as_str()),
            ("msg_4", "msg_0")
        );
        assert!(!all.has_more);
        let first = page(&input, &q(&[("order", "asc"), ("limit", "2")])).unwrap();
        assert_eq!(
            (first.first_id.as_str(), first.last_id.as_str()),
            ("msg_0", "msg_1")
        );
        assert!(first.has_more);
        let next = page(
            &input,
            &q(&[("order", "asc"), ("limit", "2"), ("after", "msg_1")]),
        )
        .unwrap();
        assert_eq!(next.first_id, "msg_2");
        for bad in [
            ("limit", "0"),
            ("limit", "x"),
            ("order", "up"),
            ("after", "msg_9"),
        ] {
            let e = page(&input, &q(&[bad])).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(bad.0));
        }
    }
}
