//! `candor bench`: prompt processing and text generation speed of one model, as
//! llama.cpp's `llama-bench` measures them. Each repetition feeds a prompt of `-p` tokens
//! drawn at random from the vocabulary (a different one each time, so the prefix cache
//! never helps) and generates `-n` tokens greedily past any end-of-sequence token; prompt
//! speed is the prompt's tokens over the time to the first generated token, generation
//! speed the tokens after the first over the time they took. One unmeasured repetition
//! warms the caches first. The summary is the mean and standard deviation over the
//! repetitions, with the load time and the process's peak resident memory.

use crate::engine::params::GenerateParams;
use crate::engine::sampler::SamplingParams;
use crate::engine::{EngineError, EngineHandle, Event, Usage};
use crate::loaded_model::LoadedModel;
use serde::Serialize;

/// What one bench run measures.
#[derive(Debug, Clone, Copy)]
pub struct BenchSpec {
    pub prompt_tokens: usize,
    pub generate_tokens: usize,
    pub repetitions: usize,
}

/// A mean and standard deviation over repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub stddev: f64,
}

impl Spread {
    /// Sample standard deviation (0 for a single value).
    pub fn of(values: &[f64]) -> Spread {
        let n = values.len() as f64;
        if values.is_empty() {
            return Spread {
                mean: 0.0,
                stddev: 0.0,
            };
        }
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Spread {
            mean,
            stddev: var.sqrt(),
        }
    }
}

/// The results, as `--json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub threads: usize,
    pub prompt_tokens: usize,
    pub generate_tokens: usize,
    pub repetitions: usize,
    pub load_seconds: f64,
    /// Prompt processing, tokens/s.
    pub pp: Spread,
    /// Text generation, tokens/s.
    pub tg: Spread,
    /// Every repetition's (pp, tg).
    pub runs: Vec<(f64, f64)>,
    /// Peak resident memory of the process, bytes (None where the OS does not say).
    pub peak_rss_bytes: Option<u64>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} threads, loaded in {:.2} s, peak RSS {}",
            self.model,
            self.threads,
            self.load_seconds,
            self.peak_rss_bytes
                .map(|b| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64))
                .unwrap_or_else(|| "unknown".into())
        )?;
        writeln!(f, "| test | tokens/s | ± |")?;
        writeln!(f, "|---|---|---|")?;
        writeln!(
            f,
            "| pp{} | {:.2} | {:.2} |",
            self.prompt_tokens, self.pp.mean, self.pp.stddev
        )?;
        write!(
            f,
            "| tg{} | {:.2} | {:.2} |",
            self.generate_tokens, self.tg.mean, self.tg.stddev
        )
    }
}

/// `len` token ids drawn from the vocabulary's ordinary (not special) tokens, the same
/// for the same `seed`.
pub fn random_prompt(lm: &LoadedModel, len: usize, seed: u64) -> Vec<u32> {
    let vocab = lm.tokenizer.vocab_size() as u64;
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let id = (s % vocab) as u32;
        if !lm.tokenizer.is_special(id) {
            out.push(id);
        }
    }
    out
}

/// Runs the repetitions on `engine` (one sequence at a time).
pub fn run(
    lm: &LoadedModel,
    engine: &EngineHandle,
    spec: BenchSpec,
    mut progress: impl FnMut(usize, &Usage),
) -> Result<Vec<(f64, f64)>, String> {
    let mut params = GenerateParams::new(
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        spec.generate_tokens.max(1),
    );
    params.ignore_eos = true;
    let mut runs = Vec::with_capacity(spec.repetitions);
    for rep in 0..=spec.repetitions {
        let prompt = random_prompt(lm, spec.prompt_tokens.max(1), rep as u64 + 1);
        let usage = one(engine, prompt, &params)?;
        if rep > 0 {
            progress(rep, &usage);
            let pp = usage.prompt_tokens as f64 / usage.time_to_first_token.as_secs_f64();
            runs.push((pp, usage.decode_tokens_per_s));
        }
    }
    Ok(runs)
}

fn one(engine: &EngineHandle, prompt: Vec<u32>, params: &GenerateParams) -> Result<Usage, String> {
    let tokens = prompt.len();
    let mut events = match engine.submit(prompt, vec![params.clone()], true) {
        Ok(mut r) => r.remove(0),
        Err(EngineError::TooLarge { capacity, .. }) => {
            return Err(format!(
                "{tokens} prompt tokens and the generated ones do not fit: the model's context \
                 (or the memory for its KV cache) holds {capacity}; lower -p or -n"
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Token { .. } | Event::PromptLogprobs(_) => {}
            Event::Done(usage) => return Ok(usage),
            Event::Error(e) => return Err(e.to_string()),
        }
    }
    Err("the engine stopped".into())
}

/// The process's peak resident memory (`VmHWM` in /proc/self/status), where there is one.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_sample_mean_and_deviation() {
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.mean, 5.0);
        assert!((s.stddev - 2.138_089_935).abs() < 1e-9, "{}", s.stddev);
        assert_eq!(Spread::of(&[3.0]).stddev, 0.0);
        assert_eq!(Spread::of(&[]).mean, 0.0);
    }
}
