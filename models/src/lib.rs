//! candor-models: turns a checkpoint on disk into a model that computes logits.
//!
//! - [`checkpoint`]: what a path holds (GGUF file or Hugging Face folder), its config,
//!   and loading the weights.
//! - [`config`]: one [`ModelConfig`] for every family; `llama.rs`, `qwen2.rs`, `qwen3.rs`
//!   and `gemma3.rs` fill it from config.json or GGUF metadata ([`gguf`]).
//! - [`weights`]: tensors by name from either format, quantized where the file is.
//! - [`quant`]: candor's CPU matrix product for Q4_1, Q5_0, Q5_1 and Q8_0 weights;
//!   [`gated`]: the feed-forward's act(gate) * up in one pass; [`cpu`]: what the CPU
//!   runs and the SIMD helpers the kernels share.
//! - [`layers`] and [`transformer`]: the shared decoder, whose forward pass takes a batch
//!   of [`SequenceInput`]s with caller-owned KV caches ([`kv_cache`]).
//! - [`paged`]: a block-paged KV cache shared by a batch on any device and dtype, and the
//!   attention that reads its blocks (in place on the CPU in f32).
//!
//! This crate knows nothing of tokenizers, requests or scheduling.

pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod error;
pub mod gated;
pub mod gemma3;
pub mod gguf;
pub mod kv_cache;
pub mod layers;
pub mod llama;
pub mod paged;
pub mod quant;
pub mod qwen2;
pub mod qwen3;
pub mod transformer;
pub mod weights;

pub use checkpoint::{Checkpoint, Format, LoadOptions};
pub use config::{Arch, ModelConfig};
pub use error::{ModelError, Result};
pub use kv_cache::{ContiguousCache, KvCache};
pub use paged::{PagedAttention, PagedKvStore, PagedSeqCache};
pub use transformer::{LogitsFor, Model, SequenceInput};

pub use candle_core::{DType, Device, Tensor};
