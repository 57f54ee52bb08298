//! A streamed response: server-sent events with an `event:` line naming each typed
//! payload and a `sequence_number` counting from 0. `response.created` and
//! `response.in_progress` first; then, item by item, what [`super::output::Output`]
//! says; then `response.completed` (or `response.incomplete` when cut by
//! `max_output_tokens`) with the whole response, stored before it is sent so that a
//! follow-up may name it at once. A failure is an `error` event and `response.failed`.
//! Dropping the stream (the client went away) cancels the generation.

use super::output::Output;
use super::Pending;
use crate::api::generation::ChoiceStream;
use crate::api::sse;
use crate::api::state::AppState;
use crate::engine::Event as EngineEvent;
use crate::openai::responses::{Event, Status, StreamEvent};
use axum::response::sse::Event as SseEvent;
use axum::response::Response;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Numbers the events and sends them; false once the client is gone.
struct Sender {
    tx: UnboundedSender<SseEvent>,
    next: u64,
}

impl Sender {
    fn send(&mut self, event: Event) -> bool {
        let name = event.name();
        let payload = StreamEvent {
            event,
            sequence_number: self.next,
        };
        self.next += 1;
        let data = serde_json::to_string(&payload).expect("an event serializes");
        self.tx
            .send(SseEvent::default().event(name).data(data))
            .is_ok()
    }

    fn send_all(&mut self, events: Vec<Event>) -> bool {
        events.into_iter().all(|e| self.send(e))
    }
}

/// Streams the response of `choice`.
pub fn respond(state: Arc<AppState>, pending: Pending, choice: ChoiceStream) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Held until the end: the client's place in the queue and the sequence itself.
        let ChoiceStream {
            mut events, held, ..
        } = choice;
        let _held = held;
        let mut out = Sender { tx, next: 0 };
        let start = Box::new(pending.in_progress());
        if !out.send(Event::Created {
            response: start.clone(),
        }) || !out.send(Event::InProgress { response: start })
        {
            return;
        }
        let mut output = Output::new(pending.tools);
        loop {
            let sent = match events.recv().await {
                Some(EngineEvent::Token {
                    text, reasoning, ..
                }) => {
                    let mut said = Vec::new();
                    if pending.show_reasoning {
                        said = output.reasoning(&reasoning);
                    }
                    said.extend(output.answer(&text));
                    out.send_all(said)
                }
                // Responses never score their prompt.
                Some(EngineEvent::PromptLogprobs(_)) => true,
                Some(EngineEvent::Done(usage)) => {
                    let said = output.finish(usage.finish);
                    if !out.send_all(said) {
                        return;
                    }
                    let response = Box::new(pending.finish(&state, output, &usage));
                    let _ = match response.status {
                        Status::Completed => out.send(Event::Completed { response }),
                        _ => out.send(Event::Incomplete { response }),
                    };
                    return;
                }
                failure => {
                    let message = match failure {
                        Some(EngineEvent::Error(e)) => e,
                        _ => "the engine dropped the request".to_string(),
                    };
                    let _ = out.send(Event::Error {
                        code: Some("server_error".into()),
                        message: message.clone(),
                        param: None,
                    });
                    let response = Box::new(pending.failed(output.into_items(), message));
                    let _ = out.send(Event::Failed { response });
                    return;
                }
            };
            if !sent {
                // The client went away: dropping `events` cancels the sequence.
                return;
            }
        }
    });
    sse::respond(sse::from_channel(rx))
}
