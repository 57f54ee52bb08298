//! candor: a local LLM inference server.
//!
//! Layout (dependencies point one way: cli -> prompt -> engine -> models):
//! - `cli`: clap arguments turned into plain config structs.
//! - `prompt`: chat templates (minijinja) and tokenizers (tokenizer.json or GGUF metadata).
//! - `engine`: sampling and the generation loop over a loaded model.
//! - `output`: incremental, UTF-8-safe detokenization and stop strings.
//!
//! Model architectures, configs and weight loading live in the `candor-models` crate.

pub mod output;
pub mod prompt;
