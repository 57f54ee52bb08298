//! Real models against llama.cpp: SmolLM2-135M-Instruct (Q4_1) and Gemma 3 270M
//! (Q4_K_M), the GGUF files from PyPI (scripts/fetch-test-assets.sh).
//!
//! tests/fixtures/llamacpp/*.json (scripts/gen_llamacpp_reference.py) hold, for raw and
//! chat-templated prompts, the prompt ids llama.cpp was given and its greedy
//! continuation. candor must first produce the very same prompt ids from the same text
//! or messages (its tokenizer and chat template), then the same greedy tokens.
//!
//! Where the two engines pick different tokens, the test accepts it only at a near-tie:
//! both engines' top two logits within NEAR_TIE of each other at that step. After such a
//! point the continuations legitimately differ, so comparison of that case stops there.
//! Before it, the logits of llama.cpp's eight best tokens are compared at every step.

mod common;

use candor::loaded_model::{LoadConfig, LoadedModel};
use candor::prompt::template::RenderOptions;
use candor_models::{ContiguousCache, LogitsFor, SequenceInput};
use serde_json::Value;
use std::path::PathBuf;

/// How far the two engines' logits are apart, measured on these prompts (logits of 13 to
/// 37): up to 0.56 at the first generated token for SmolLM2, whether candor uses its
/// quantized matmuls or dequantizes every weight to f32 (CANDLE_DEQUANTIZE_ALL=1), so the
/// spread is in the order of rounding inside quantized inference, not in one engine's
/// arithmetic. Two tokens whose logits are closer than this in both engines are a tie
/// that either engine may break either way.
const NEAR_TIE: f32 = 0.75;
/// A real bug (a wrong rope, norm or mask) moves logits by several units: fail on it.
const MAX_ENGINE_DELTA: f32 = 2.5;
/// The issue asks for at least this many identical tokens unless a near-tie explains a split.
const REQUIRED: usize = 32;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/llamacpp/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn load(file: &str) -> LoadedModel {
    LoadedModel::load(&LoadConfig {
        model: common::asset(file),
        ..LoadConfig::default()
    })
    .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Greedy continuation with the top-1 / top-2 gap at each step.
fn greedy(lm: &LoadedModel, prompt: &[u32], steps: usize) -> Vec<(u32, f32, Vec<f32>)> {
    let model = &lm.model;
    let mut cache = ContiguousCache::new(model.config().num_layers);
    let mut out = Vec::new();
    let mut tokens = prompt.to_vec();
    let mut start = 0;
    for _ in 0..steps {
        let logits = model
            .forward(&mut [SequenceInput {
                tokens: &tokens[start..],
                start_pos: start,
                cache: &mut cache,
                logits: LogitsFor::Last,
            }])
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.select_nth_unstable_by(1, |&a, &b| logits[b].total_cmp(&logits[a]));
        let (best, second) = if logits[order[0]] >= logits[order[1]] {
            (order[0], order[1])
        } else {
            (order[1], order[0])
        };
        start = tokens.len();
        tokens.push(best as u32);
        out.push((best as u32, logits[best] - logits[second], logits));
    }
    out
}

fn compare(name: &str, file: &str) {
    let fx = fixture(name);
    let lm = load(file);
    let steps = fx["steps"].as_u64().unwrap() as usize;
    let mut report = Vec::new();
    let mut max_delta = 0f32;
    for (ci, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let expected_prompt = ids(&case["prompt_ids"]);
        let prompt = match case["kind"].as_str().unwrap() {
            "raw" => lm
                .tokenizer
                .encode(case["prompt"].as_str().unwrap(), true)
                .unwrap(),
            _ => {
                let messages = case["messages"].as_array().unwrap().clone();
                let opts = RenderOptions {
                    add_generation_prompt: true,
                    ..RenderOptions::default()
                };
                let text = lm
                    .template
                    .as_ref()
                    .unwrap()
                    .render(&messages, &opts)
                    .unwrap();
                assert_eq!(
                    text,
                    case["rendered"].as_str().unwrap(),
                    "{name} case {ci}: rendered prompt"
                );
                lm.tokenizer.encode(&text, false).unwrap()
            }
        };
        assert_eq!(
            prompt, expected_prompt,
            "{name} case {ci}: prompt ids differ from llama.cpp's input"
        );

        let theirs = ids(&case["continuation"]);
        // llama.cpp's best (id, logit) pairs at each step, best first.
        let their_top: Vec<Vec<(usize, f32)>> = case["top_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| {
                step.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p[0].as_u64().unwrap() as usize,
                            p[1].as_f64().unwrap() as f32,
                        )
                    })
                    .collect()
            })
            .collect();
        let ours = greedy(&lm, &prompt, steps);
        let mut agreed = steps;
        for (i, (tok, gap, logits)) in ours.iter().enumerate() {
            // How far apart the engines' logits are, on llama.cpp's best tokens.
            let mut step_delta = 0f32;
            for &(id, l) in &their_top[i] {
                step_delta = step_delta.max((logits[id] - l).abs());
            }
            max_delta = max_delta.max(step_delta);
            if *tok == theirs[i] {
                continue;
            }
            // Our logit margin between our pick and theirs, and theirs between their top two.
            let our_margin = logits[*tok as usize] - logits[theirs[i] as usize];
            let their_gap = their_top[i][0].1 - their_top[i][1].1;
            assert!(
                our_margin <= NEAR_TIE && their_gap <= NEAR_TIE,
                "{name} case {ci}: token {i} differs (candor {tok}, llama.cpp {}) and it is no near-tie: \
                 candor prefers its token by {our_margin:.4}, llama.cpp its own by {their_gap:.4} \
                 (our top-2 gap {gap:.4})",
                theirs[i]
            );
            agreed = i;
            report.push(format!(
                "{name} case {ci}: near-tie at token {i}: candor margin {our_margin:.4}, llama.cpp gap {their_gap:.4}"
            ));
            break;
        }
        if agreed == steps {
            report.push(format!("{name} case {ci}: all {steps} tokens identical"));
        } else if agreed < REQUIRED {
            report.push(format!(
                "{name} case {ci}: diverged before {REQUIRED} tokens, explained by the near-tie above"
            ));
        }
    }
    println!("{}", report.join("\n"));
    println!("{name}: max |logit difference| with llama.cpp on its top tokens while in step: {max_delta:.4}");
    assert!(
        max_delta <= MAX_ENGINE_DELTA,
        "{name}: logits differ from llama.cpp's by {max_delta} > {MAX_ENGINE_DELTA}"
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    compare("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf");
}

#[test]
fn gemma3_matches_llama_cpp() {
    compare("gemma3", "gemma-3-270m-q4_k_m.gguf");
}
