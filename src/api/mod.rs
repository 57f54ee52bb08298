//! The HTTP API: OpenAI-compatible wire types ([`openai`]). Checking a request's values
//! is left to `validate`; nothing here knows the model.

pub mod openai;
