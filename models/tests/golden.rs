//! Golden logits: tiny random-weight models of every family, made and run by transformers
//! (scripts/gen_reference_models.py), must give the same logits through candor's
//! safetensors and GGUF paths, for a prompt prefilled at once and then for single-token
//! decode steps through the KV cache.

use candor_models::{Checkpoint, ContiguousCache, Device, LoadOptions, LogitsFor, Model, Sequence, Tensor};
use std::path::PathBuf;

fn data_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(case)
}

struct Reference {
    ids: Vec<u32>,
    prompt_len: usize,
    /// Keyed by the reference name: `logits` (original weights) or `logits_<type>`.
    logits: Tensor,
}

fn reference(case: &str, key: &str) -> Reference {
    let path = data_dir(case).join("reference.safetensors");
    let t = candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ids = t["input_ids"].to_vec1::<i64>().unwrap();
    let prompt_len = t["prompt_len"].to_vec1::<i64>().unwrap()[0] as usize;
    let logits = t
        .get(key)
        .unwrap_or_else(|| panic!("{}: no tensor `{key}`", path.display()))
        .clone();
    Reference {
        ids: ids.into_iter().map(|i| i as u32).collect(),
        prompt_len,
        logits,
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn load(case: &str, file: Option<&str>) -> Model {
    let dir = data_dir(case);
    let path = match file {
        Some(f) => dir.join(f),
        None => dir,
    };
    Checkpoint::open(&path)
        .and_then(|c| c.load(&LoadOptions::default()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Prefill the prompt, then decode the rest token by token; returns the max |Δ| over
/// every position.
fn prefill_then_decode(model: &Model, r: &Reference) -> f32 {
    let mut cache = ContiguousCache::new(model.config().num_layers);
    let p = r.prompt_len;
    let prefill = model
        .forward(&mut [Sequence {
            tokens: &r.ids[..p],
            start_pos: 0,
            cache: &mut cache,
            logits: LogitsFor::All,
        }])
        .unwrap();
    let mut worst = max_abs_diff(&prefill, &r.logits.narrow(0, 0, p).unwrap());
    for i in p..r.ids.len() {
        let step = model
            .forward(&mut [Sequence {
                tokens: &r.ids[i..i + 1],
                start_pos: i,
                cache: &mut cache,
                logits: LogitsFor::Last,
            }])
            .unwrap();
        worst = worst.max(max_abs_diff(&step, &r.logits.narrow(0, i, 1).unwrap()));
    }
    worst
}

/// Two sequences of different lengths in one batch, each in its own cache, give the same
/// logits as the reference: batching must not mix sequences.
fn batched(model: &Model, r: &Reference) -> f32 {
    let layers = model.config().num_layers;
    let (mut a, mut b) = (ContiguousCache::new(layers), ContiguousCache::new(layers));
    let short = r.prompt_len - 3;
    let out = model
        .forward(&mut [
            Sequence {
                tokens: &r.ids[..short],
                start_pos: 0,
                cache: &mut a,
                logits: LogitsFor::Last,
            },
            Sequence {
                tokens: &r.ids,
                start_pos: 0,
                cache: &mut b,
                logits: LogitsFor::All,
            },
        ])
        .unwrap();
    let first = max_abs_diff(
        &out.narrow(0, 0, 1).unwrap(),
        &r.logits.narrow(0, short - 1, 1).unwrap(),
    );
    let rest = max_abs_diff(&out.narrow(0, 1, r.ids.len()).unwrap(), &r.logits);
    // Continue the short one by a decode step while the long one decodes too.
    let next = model
        .forward(&mut [
            Sequence {
                tokens: &r.ids[short..short + 1],
                start_pos: short,
                cache: &mut a,
                logits: LogitsFor::Last,
            },
            Sequence {
                tokens: &r.ids[..1],
                start_pos: r.ids.len(),
                cache: &mut b,
                logits: LogitsFor::None,
            },
        ])
        .unwrap();
    let step = max_abs_diff(&next, &r.logits.narrow(0, short, 1).unwrap());
    first.max(rest).max(step)
}

fn check(case: &str, file: Option<&str>, key: &str, tol: f32) {
    let r = reference(case, key);
    let model = load(case, file);
    let seq = prefill_then_decode(&model, &r);
    let bat = batched(&model, &r);
    let what = file.unwrap_or("safetensors");
    println!("{case} {what} vs {key}: max |Δ| sequential {seq:.3e}, batched {bat:.3e}");
    assert!(seq <= tol, "{case} {what}: max |Δ| {seq} > {tol}");
    assert!(bat <= tol, "{case} {what} batched: max |Δ| {bat} > {tol}");
}

const F32_TOL: f32 = 1e-4;

macro_rules! golden {
    ($name:ident, $case:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn safetensors_f32() {
                check($case, None, "logits", F32_TOL);
            }
            #[test]
            fn gguf_f32() {
                check($case, Some("model-f32.gguf"), "logits", F32_TOL);
            }
        }
    };
}

golden!(llama, "llama");
golden!(llama_tied, "llama-tied");
golden!(qwen2, "qwen2");
golden!(qwen3, "qwen3");
golden!(gemma3, "gemma3");

#[test]
fn gemma3_softcap_safetensors() {
    check("gemma3-softcap", None, "logits", F32_TOL);
}
