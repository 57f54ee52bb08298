//! `qwen2`: Qwen2 / Qwen2.5 and the DeepSeek-R1-Distill-Qwen models. Llama with biases on
//! the q, k and v projections.

use crate::config::{Arch, HfConfig, ModelConfig};
use crate::error::Result;
use crate::gguf::GgufMeta;

pub fn from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let mut cfg = hf.base(Arch::Qwen2)?;
    cfg.attention_bias = true;
    Ok(cfg)
}

pub fn from_gguf(meta: &GgufMeta) -> Result<ModelConfig> {
    let mut cfg = meta.base_config(Arch::Qwen2)?;
    cfg.attention_bias = true;
    Ok(cfg)
}
