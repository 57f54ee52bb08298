//! candor: a local LLM inference server.
//!
//! Layout (dependencies point one way: api -> validate, cli -> prompt -> engine -> models):
//! - `api`: OpenAI-compatible wire types and the error every handler answers with.
//! - `validate`: checks a request's fields and applies defaults, giving a `ValidRequest`.
//! - `cli`: clap arguments turned into plain config structs.
//! - `runtime`: a model, its tokenizer, chat template and end-of-turn tokens, loaded from one path.
//! - `prompt`: chat templates (minijinja) and tokenizers (tokenizer.json or GGUF metadata).
//! - `engine`: sampling, the per-sequence decoder, and the continuous-batching scheduler over a
//!   paged KV cache with prefix reuse (and the single-sequence loop the CLI uses).
//! - `output`: incremental, UTF-8-safe detokenization, stop strings and the reasoning splitter.
//! - `reasoning`: the server's reasoning settings and each request's reasoning plan.
//! - `model_source`: where `--model` points: a path, a Hugging Face hub id, or the default model.
//! - `inspect`, `device`: the `inspect` command's report and `--device` parsing.
//!
//! Model architectures, configs and weight loading live in the `candor-models` crate.

pub mod api;
pub mod cli;
pub mod device;
pub mod engine;
pub mod inspect;
pub mod model_source;
pub mod openai;
pub mod output;
pub mod prompt;
pub mod reasoning;
pub mod runtime;
pub mod validate;
