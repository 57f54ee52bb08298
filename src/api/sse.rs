//! Server-sent events: the choices' engine events merged into one stream of chunks,
//! then the usage chunk when asked for, then `data: [DONE]`. A failure mid-stream is one
//! event with OpenAI's error body. What a chunk looks like is the endpoint's
//! ([`ChunkFormat`]); dropping the stream (the client went away) cancels every choice.

use crate::api::error::ApiError;
use crate::api::generation::{log_request, token_text, total_usage, ChoiceStream};
use crate::engine::params::FinishReason;
use crate::engine::sampler::TokenLogprobs;
use crate::engine::{Event, Usage};
use crate::openai;
use crate::prompt::tokenizer::Tokenizer;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// A piece of a streamed choice, for the endpoint to shape into its chunk type.
pub enum Delta {
    Text {
        index: usize,
        text: String,
        /// Thinking text (empty unless the sequence separates it and it is shown).
        reasoning: String,
        /// The token's logprobs and its text, when asked for.
        logprobs: Option<(TokenLogprobs, String)>,
        /// The choice's first chunk.
        first: bool,
    },
    /// Logprobs of prompt tokens (`echo` with `logprobs`), before the choice's text.
    Prompt {
        index: usize,
        logprobs: Vec<TokenLogprobs>,
    },
    Finish {
        index: usize,
        finish: FinishReason,
    },
}

/// How an endpoint writes its chunks.
pub trait ChunkFormat: Send + 'static {
    type Chunk: Serialize;
    /// The chunks carrying one delta of one choice (none when the endpoint holds the
    /// text back, e.g. what may be the start of a tool call).
    fn chunks(&mut self, delta: Delta) -> Vec<Self::Chunk>;
    /// The last chunk: no choices, the request's usage.
    fn usage_chunk(&self, usage: openai::Usage) -> Self::Chunk;
}

/// What the stream needs besides the chunk format.
pub struct StreamShape {
    /// The response id, for the log line.
    pub id: String,
    /// Send the thinking (else it is dropped; it still counts in usage).
    pub show_reasoning: bool,
    /// End with a chunk of `usage` (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Prompt tokens of the request (each prompt counted once).
    pub prompt_tokens: usize,
    pub started: Instant,
}

/// Streams the choices as SSE.
pub fn stream(
    format: impl ChunkFormat,
    shape: StreamShape,
    tokenizer: Arc<Tokenizer>,
    choices: Vec<ChoiceStream>,
) -> Response {
    let streams = choices.into_iter().map(|c| {
        let ChoiceStream {
            index,
            events,
            held,
        } = c;
        // The client's places are held until the stream is done or dropped.
        stream::unfold((events, held), move |(mut rx, held)| async move {
            let ev = rx.recv().await?;
            Some(((index, ev), (rx, held)))
        })
        .boxed()
    });
    let merged = stream::select_all(streams);
    respond(events(format, shape, tokenizer, merged))
}

/// An SSE answer with keep-alive comments, which proxies are told not to buffer (the
/// framing every streaming endpoint shares).
pub fn respond(
    body: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Tells reverse proxies (nginx) not to hold back the stream.
    let h = response.headers_mut();
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The events an unbounded channel receives, as an SSE body: a producer task sends them,
/// and stops when the receiver (the client) is gone.
pub fn from_channel(
    rx: tokio::sync::mpsc::UnboundedReceiver<SseEvent>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

fn data(value: &impl Serialize) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(value).expect("a chunk serializes"))
}

fn events(
    mut format: impl ChunkFormat,
    shape: StreamShape,
    tokenizer: Arc<Tokenizer>,
    mut merged: impl Stream<Item = (usize, Event)> + Unpin + Send + 'static,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
    tokio::spawn(async move {
        let mut usages = Vec::new();
        let mut started_choices = std::collections::HashSet::new();
        while let Some((index, ev)) = merged.next().await {
            let events: Vec<SseEvent> = match ev {
                Event::Token {
                    text,
                    mut reasoning,
                    logprobs,
                    ..
                } => {
                    let logprobs = logprobs.map(|l| {
                        let piece = token_text(&tokenizer, l.token);
                        (l, piece)
                    });
                    if !shape.show_reasoning {
                        reasoning.clear();
                    }
                    if text.is_empty() && reasoning.is_empty() && logprobs.is_none() {
                        continue;
                    }
                    let first = started_choices.insert(index);
                    let delta = Delta::Text {
                        index,
                        text,
                        reasoning,
                        logprobs,
                        first,
                    };
                    format.chunks(delta).iter().map(data).collect()
                }
                Event::PromptLogprobs(logprobs) => format
                    .chunks(Delta::Prompt { index, logprobs })
                    .iter()
                    .map(data)
                    .collect(),
                Event::Done(usage) => {
                    let finish = usage.finish;
                    usages.push((index, usage));
                    let delta = Delta::Finish { index, finish };
                    format.chunks(delta).iter().map(data).collect()
                }
                Event::Error(e) => vec![data(&ApiError::internal(e).body())],
            };
            for event in events {
                if tx.send(event).is_err() {
                    // The client went away: dropping `merged` cancels every choice.
                    return;
                }
            }
        }
        usages.sort_by_key(|(i, _)| *i);
        let usages: Vec<&Usage> = usages.iter().map(|(_, u)| u).collect();
        if shape.include_usage {
            let usage = total_usage(shape.prompt_tokens, &usages);
            let _ = tx.send(data(&format.usage_chunk(usage)));
        }
        let _ = tx.send(SseEvent::default().data("[DONE]"));
        log_request(&shape.id, &usages, shape.started);
    });
    from_channel(rx)
}
