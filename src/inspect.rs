//! `candor inspect`: what a checkpoint holds, read from its headers only.

use candle_core::quantized::gguf_file::Value;
use candor_models::checkpoint::{Checkpoint, Format};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A human-readable report of a checkpoint. One function on purpose: the report reads
/// top to bottom as it prints, section after section.
pub fn report(ckpt: &Checkpoint) -> String {
    let c = &ckpt.config;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "path:            {}", ckpt.path.display());
    let _ = writeln!(w, "architecture:    {}", c.arch.name());
    match ckpt.parameter_count() {
        Ok(n) => {
            let _ = writeln!(w, "parameters:      {} ({n})", human(n as f64));
        }
        Err(e) => {
            let _ = writeln!(w, "parameters:      unknown ({e})");
        }
    }
    let _ = writeln!(
        w,
        "weights:         {:.1} MiB",
        ckpt.weight_bytes() as f64 / (1 << 20) as f64
    );
    let _ = writeln!(
        w,
        "layers:          {} (hidden {}, mlp {}, heads {} / kv {}, head_dim {})",
        c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim
    );
    let _ = writeln!(w, "vocabulary:      {}", c.vocab_size);
    let _ = writeln!(w, "context length:  {}", c.max_position_embeddings);
    let _ = writeln!(
        w,
        "rope:            theta {}{}",
        c.rope.theta,
        match &c.rope.scaling {
            Some(s) => format!(", scaling {s:?}"),
            None => String::new(),
        }
    );
    if let (Some(win), Some(local)) = (c.sliding_window, &c.rope_local) {
        let sliding = c.sliding_layers.iter().filter(|s| **s).count();
        let _ = writeln!(
            w,
            "sliding window:  {win} tokens on {sliding} of {} layers (local rope theta {})",
            c.num_layers, local.theta
        );
    }
    let _ = writeln!(w, "tied embeddings: {}", c.tie_word_embeddings);
    match &ckpt.format {
        Format::Gguf { content } => {
            let mut types: BTreeMap<String, usize> = BTreeMap::new();
            for t in content.tensor_infos.values() {
                *types.entry(format!("{:?}", t.ggml_dtype)).or_default() += 1;
            }
            let types: Vec<String> = types.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            let _ = writeln!(w, "format:          GGUF {:?}", content.magic);
            let _ = writeln!(w, "tensor types:    {}", types.join(", "));
            let md = &content.metadata;
            let s = |k: &str| md.get(k).and_then(|v| v.to_string().ok()).cloned();
            let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
            let token = |i: Option<u32>| -> String {
                let Some(i) = i else { return "-".into() };
                let text = md
                    .get("tokenizer.ggml.tokens")
                    .and_then(|v| v.to_vec().ok())
                    .and_then(|v| v.get(i as usize))
                    .and_then(|v| v.to_string().ok())
                    .cloned()
                    .unwrap_or_default();
                format!("{i} {text:?}")
            };
            if let Some(name) = s("general.name") {
                let _ = writeln!(w, "name:            {name}");
            }
            let _ = writeln!(
                w,
                "tokenizer:       {} (pre {})",
                s("tokenizer.ggml.model").unwrap_or_else(|| "none".into()),
                s("tokenizer.ggml.pre").unwrap_or_else(|| "-".into())
            );
            let _ = writeln!(
                w,
                "bos token:       {}",
                token(id("tokenizer.ggml.bos_token_id"))
            );
            let _ = writeln!(
                w,
                "eos token:       {}",
                token(id("tokenizer.ggml.eos_token_id"))
            );
            if md.contains_key("tokenizer.ggml.eot_token_id") {
                let _ = writeln!(
                    w,
                    "eot token:       {}",
                    token(id("tokenizer.ggml.eot_token_id"))
                );
            }
            let template = match md.get("tokenizer.chat_template") {
                Some(Value::String(t)) => format!("present ({} characters)", t.len()),
                _ => "none in the file (the family's known template will be used)".into(),
            };
            let _ = writeln!(w, "chat template:   {template}");
        }
        Format::HfFolder { weight_files, .. } => {
            let _ = writeln!(
                w,
                "format:          safetensors ({} file(s))",
                weight_files.len()
            );
            let dir = &ckpt.path;
            let has = |f: &str| if dir.join(f).exists() { "yes" } else { "no" };
            let _ = writeln!(w, "tokenizer.json:  {}", has("tokenizer.json"));
            let template = std::fs::read_to_string(dir.join("tokenizer_config.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .map(|v| {
                    v.get("chat_template").is_some() || dir.join("chat_template.jinja").exists()
                })
                .unwrap_or(false);
            let _ = writeln!(
                w,
                "chat template:   {}",
                if template { "present" } else { "none" }
            );
            let _ = writeln!(w, "eos ids:         {:?}", c.eos_token_ids);
        }
    }
    out
}

fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else {
        format!("{:.1}K", n / 1e3)
    }
}
