//! candor: a local LLM inference server.
//!
//! A chat request goes through one module per stage: `api` (route, parse) ->
//! `validate` -> `prompt::build` -> `engine` (schedule, run the model, sample; per
//! sequence the `output` detokenizer and the `reasoning` splitter) -> `api::sse` or a
//! whole response. The modules, each importing only from those below it
//! (`scripts/module-graph.py` prints the graph and fails on a circle):
//! - `api`: HTTP. `router` (routes, auth, CORS), `state` (what handlers share), one file
//!   per endpoint (`chat`, `completions`, `models`), `generation` (submit choices, collect
//!   answers), `sse` (stream framing), `error` (every mapping to an HTTP error), `web`
//!   (the chat page of `web/`, embedded by `build.rs`).
//! - `validate`: a request's fields checked by subject, defaults applied: a
//!   `ValidRequest`.
//! - `engine`: the engine thread. `scheduler` (pure: admission, chunking, preemption,
//!   prefix reuse over `blocks`), `runner` (the forward pass and the KV memory), `worker`
//!   (the loop), per sequence an `output_processor` (sampling, detokenizing, stop
//!   strings, the reasoning split).
//! - `loaded_model`: a model with its tokenizer, chat template and end-of-turn tokens,
//!   loaded from one path.
//! - `output`: incremental, UTF-8-safe detokenization and stop strings.
//! - `prompt`: `prompt::build` renders the chat template, tokenizes, checks the context
//!   and finds where the thinking starts, for the server and the CLI alike.
//! - `reasoning`: `policy` (formats, budgets, the effort table) and `splitter` (the
//!   token-level state machine that separates thinking from answer).
//! - `openai`: the wire types (requests, responses, errors); `api` and `validate` use
//!   them, they use nothing of the crate.
//! - `cli`, `model_source` (a path, a hub id or the default model), `inspect`, `device`:
//!   what the binary needs around the server.
//!
//! Model architectures, configs and weight loading live in the `candor-models` crate.

pub mod api;
pub mod bench;
pub mod cli;
pub mod constraint;
pub mod device;
pub mod engine;
pub mod inspect;
pub mod loaded_model;
pub mod model_source;
pub mod openai;
pub mod output;
pub mod prompt;
pub mod reasoning;
pub mod tools;
pub mod validate;
