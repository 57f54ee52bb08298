//! Everything between a request's messages and token ids: chat templates and tokenizers.

pub mod template;
pub mod tokenizer;
