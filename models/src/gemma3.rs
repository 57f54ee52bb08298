//! `gemma3` (text): sandwich norms around attention and MLP, RMSNorm scaling by (1 + w),
//! q/k norms, embeddings scaled by sqrt(hidden), GELU-tanh, and interleaved local
//! (sliding-window, own rope base) and global attention layers.

use crate::config::{Activation, Arch, HfConfig, ModelConfig, RopeConfig};
use crate::error::{ModelError, Result};
use crate::gguf::GgufMeta;

/// transformers' default: every sixth layer is global.
const DEFAULT_PATTERN: usize = 6;
const DEFAULT_LOCAL_BASE: f64 = 10_000.0;

fn pattern_layers(num_layers: usize, pattern: usize) -> Vec<bool> {
    (0..num_layers)
        .map(|i| pattern == 0 || (i + 1) % pattern != 0)
        .collect()
}

fn gemma_common(cfg: &mut ModelConfig) {
    cfg.qk_norm = true;
    cfg.sandwich_norms = true;
    cfg.norm_weight_offset = 1.0;
    cfg.embedding_scale = Some((cfg.hidden_size as f64).sqrt());
}

pub fn from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let mut cfg = hf.base(Arch::Gemma3)?;
    gemma_common(&mut cfg);
    if hf.hidden_activation.is_none() && hf.hidden_act.is_none() {
        cfg.activation = Activation::GeluTanh;
    }
    cfg.tie_word_embeddings = hf.tie_word_embeddings.unwrap_or(true);
    if hf.head_dim.is_none() {
        cfg.head_dim = 256;
    }
    cfg.attention_scale = 1.0 / hf.query_pre_attn_scalar.unwrap_or(256.0).sqrt();
    cfg.rope = hf.rope_for(Some("full_attention"))?.unwrap_or(RopeConfig {
        theta: 1_000_000.0,
        scaling: None,
    });
    cfg.rope_local = Some(match hf.rope_for(Some("sliding_attention"))? {
        Some(r) => r,
        None => RopeConfig {
            theta: hf.rope_local_base_freq.unwrap_or(DEFAULT_LOCAL_BASE),
            scaling: None,
        },
    });
    cfg.sliding_window = Some(hf.sliding_window.unwrap_or(4096));
    cfg.sliding_layers = match &hf.layer_types {
        Some(types) => {
            if types.len() != cfg.num_layers {
                return Err(ModelError::Config(format!(
                    "layer_types has {} entries for {} layers",
                    types.len(),
                    cfg.num_layers
                )));
            }
            types.iter().map(|t| t == "sliding_attention").collect()
        }
        None => pattern_layers(
            cfg.num_layers,
            hf.sliding_window_pattern.unwrap_or(DEFAULT_PATTERN),
        ),
    };
    // transformers' Gemma 3 (unlike Gemma 2) never applies attn_logit_softcapping, and
    // llama.cpp refuses to convert a Gemma 3 that sets it: follow the reference.
    cfg.attn_logit_softcapping = None;
    cfg.final_logit_softcapping = hf.final_logit_softcapping;
    Ok(cfg)
}

pub fn from_gguf(meta: &GgufMeta) -> Result<ModelConfig> {
    let mut cfg = meta.base_config(Arch::Gemma3)?;
    gemma_common(&mut cfg);
    cfg.activation = Activation::GeluTanh;
    cfg.tie_word_embeddings = true;
    // llama.cpp keeps Gemma 3's local/global layout and local rope base as constants of
    // the architecture rather than metadata; follow it (src/llama-model.cpp, LLM_ARCH_GEMMA3).
    cfg.rope_local = Some(RopeConfig {
        theta: meta
            .opt_f64("rope.freq_base_swa")?
            .unwrap_or(DEFAULT_LOCAL_BASE),
        scaling: None,
    });
    // No window (or 0) means no sliding layers at all.
    cfg.sliding_window = meta
        .opt_usize("attention.sliding_window")?
        .filter(|&w| w > 0);
    // The pattern is a per-layer bool array or a period n; absent means 6.
    cfg.sliding_layers = match meta.bool_array("attention.sliding_window_pattern") {
        Some(layers) => layers,
        None => pattern_layers(
            cfg.num_layers,
            meta.opt_usize("attention.sliding_window_pattern")?
                .unwrap_or(DEFAULT_PATTERN),
        ),
    };
    // Gemma 3 27B scales by hidden / heads (its query_pre_attn_scalar); the others by head_dim.
    if cfg.num_layers == 62 {
        cfg.attention_scale = 1.0 / ((cfg.hidden_size / cfg.num_heads) as f64).sqrt();
    }
    cfg.final_logit_softcapping = meta.opt_f64("final_logit_softcapping")?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sixth_layer_is_global() {
        let l = pattern_layers(12, 6);
        assert_eq!(l.iter().filter(|s| !**s).count(), 2);
        assert!(!l[5] && !l[11] && l[0] && l[6]);
    }
}
