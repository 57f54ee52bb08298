//! The HTTP API: OpenAI-compatible wire types ([`openai`]) and the one error type every
//! handler answers with ([`error`]). Checking a request's values is left to
//! [`crate::validate`]; nothing here knows the model.

pub mod error;
pub mod openai;
