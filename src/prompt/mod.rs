//! Everything between a request's messages and token ids: [`build`] (render, tokenize,
//! check the context, find where the thinking starts), over chat templates
//! ([`template`], minijinja) and tokenizers ([`tokenizer`], tokenizer.json or GGUF
//! metadata).

mod build;
pub mod template;
pub mod tokenizer;

pub use build::{build, render, Prompt, PromptError, PromptInput, PromptRequest, PromptTools};
