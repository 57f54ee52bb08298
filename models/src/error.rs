//! The error every public function of the models crate returns. Messages name the file
//! and the problem, so that the CLI and the server can show them to a user as they are.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a model: expected a .gguf file or a folder with config.json and *.safetensors"
    )]
    NotAModel { path: PathBuf },
    #[error("{path}: invalid GGUF file: {message}")]
    Gguf { path: PathBuf, message: String },
    #[error("{path}: invalid config.json: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("{path}: invalid safetensors: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("unsupported architecture `{name}`; supported: {supported}")]
    UnsupportedArchitecture {
        name: String,
        supported: &'static str,
    },
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("{file}: tensor `{name}` is missing")]
    MissingTensor { file: String, name: String },
    #[error("{file}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        file: String,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("invalid batch: {0}")]
    Batch(String),
    /// A paged KV cache used against its layout: wrong shapes or dtype, a block table too
    /// short for the tokens, a block id outside the pool.
    #[error("KV cache: {0}")]
    KvCache(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// A candle error's message without the backtrace candle appends when RUST_BACKTRACE is
/// set: users get one line that says what is wrong.
pub fn candle_message(e: &candle_core::Error) -> String {
    let text = e.to_string();
    match text.split_once("\n") {
        Some((first, _)) => first.to_string(),
        None => text,
    }
}
