//! `qwen3` (dense): no attention biases, but q and k are RMS-normalised per head before
//! the rotation, and head_dim is set explicitly (often hidden / heads does not hold).

use crate::config::{Arch, HfConfig, ModelConfig};
use crate::error::Result;
use crate::gguf::GgufMeta;

pub fn from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let mut cfg = hf.base(Arch::Qwen3)?;
    cfg.qk_norm = true;
    Ok(cfg)
}

pub fn from_gguf(meta: &GgufMeta) -> Result<ModelConfig> {
    let mut cfg = meta.base_config(Arch::Qwen3)?;
    cfg.qk_norm = true;
    Ok(cfg)
}
