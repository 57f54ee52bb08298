//! The HTTP API: OpenAI-compatible wire types ([`openai`]), the one error type every
//! handler answers with ([`error`]), the router and shared state ([`server`]), and the
//! endpoints: [`chat`], [`completions`], [`models`] (with /tokenize and /detokenize).
//! [`generation`] holds what chat and text completions share (engine submissions,
//! collecting answers, SSE streams). Checking a request's values is left to
//! [`crate::validate`].

pub mod chat;
pub mod completions;
pub mod error;
pub mod generation;
pub mod models;
pub mod openai;
pub mod server;
