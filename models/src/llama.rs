//! `llama`: Llama 2 / 3.x (Llama 3 rope scaling), SmolLM2, DeepSeek-R1-Distill-Llama.
//! The plainest member of the family; the others are described relative to it.

use crate::config::{Arch, HfConfig, ModelConfig};
use crate::error::Result;
use crate::gguf::GgufMeta;

pub fn from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    hf.base(Arch::Llama)
}

pub fn from_gguf(meta: &GgufMeta) -> Result<ModelConfig> {
    let mut cfg = meta.base_config(Arch::Llama)?;
    // llama.cpp's converter permutes q/k rows of llama checkpoints so that ggml's
    // "normal" rope (adjacent pairs) reproduces transformers' half-split rotation.
    cfg.rope_interleaved = true;
    Ok(cfg)
}
