//! The HTTP API. [`mod@serve`] accepts connections and shuts down, [`mod@router`] holds the
//! routes and middleware, [`state`] what every handler shares, [`admission`] each
//! client's share of the queue, [`blocking`] the CPU work kept off the executor, [`error`] the one error every handler answers with (including the
//! mapping of validation, prompt and engine errors). Each endpoint has its file:
//! [`chat`], [`completions`], [`models`] (with /tokenize and /detokenize), [`responses`]
//! (OpenAI's Responses API, over chat's path; its stored responses in
//! [`response_store`]), and [`web`] serves the chat page. Between a built
//! prompt and a response, [`generation`] submits choices and collects answers and [`sse`]
//! frames streams. The wire types are [`crate::openai`]'s; checking a request's values is
//! [`crate::validate`]'s, building its prompt [`crate::prompt`]'s.

pub mod admission;
pub mod blocking;
pub mod chat;
pub mod completions;
pub mod error;
pub mod generation;
pub mod models;
pub mod response_store;
pub mod responses;
pub mod router;
pub mod serve;
pub mod sse;
pub mod state;
pub mod tool_calls;
pub mod web;

pub use router::router;
pub use serve::{serve, ServeOptions};
pub use state::{AppState, Loaded, ServerConfig};
