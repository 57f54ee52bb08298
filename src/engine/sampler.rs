//! Choosing the next token from a row of logits.
//!
//! One [`Sampler`] per sequence: it owns the sequence's seeded RNG, the token counts the
//! penalties need and scratch buffers reused across steps, so sampling a token allocates
//! nothing. Order of operations follows vLLM: logit bias, repetition / presence /
//! frequency penalties, temperature, then the top-k, min-p and top-p filters.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// Per-request sampling settings, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 disables.
    pub top_k: usize,
    /// 1.0 disables.
    pub top_p: f32,
    /// 0.0 disables.
    pub min_p: f32,
    /// 1.0 disables; applies to prompt and generated tokens (as in vLLM and llama.cpp).
    pub repetition_penalty: f32,
    /// OpenAI semantics: applies to generated tokens only.
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Added to the logit of a token id before anything else.
    pub logit_bias: Vec<(u32, f32)>,
    /// Makes sampled output reproducible; None draws a seed from the OS.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
            seed: None,
        }
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 1e-6
    }
}

pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    /// Generated-token counts, for presence and frequency penalties.
    output_counts: HashMap<u32, u32>,
    /// Prompt tokens, for the repetition penalty (generated ones are in output_counts).
    prompt_tokens: Vec<u32>,
    /// Scratch: (token, value) candidates.
    candidates: Vec<(u32, f32)>,
    /// Scratch: the penalised logits.
    logits: Vec<f32>,
}

impl Sampler {
    pub fn new(params: SamplingParams, prompt: &[u32]) -> Self {
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut prompt_tokens = if params.repetition_penalty != 1.0 {
            prompt.to_vec()
        } else {
            Vec::new()
        };
        prompt_tokens.sort_unstable();
        prompt_tokens.dedup();
        Self {
            params,
            rng,
            output_counts: HashMap::new(),
            prompt_tokens,
            candidates: Vec::new(),
            logits: Vec::new(),
        }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Records a generated token (call for every token appended to the output).
    pub fn accept(&mut self, token: u32) {
        *self.output_counts.entry(token).or_insert(0) += 1;
    }

    /// Applies bias and penalties; the result stays in `self.logits`.
    fn process(&mut self, logits: &[f32]) {
        let p = &self.params;
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        let l = &mut self.logits;
        for &(id, bias) in &p.logit_bias {
            if let Some(x) = l.get_mut(id as usize) {
                *x += bias;
            }
        }
        if p.repetition_penalty != 1.0 {
            let rp = p.repetition_penalty;
            let penalise = |x: &mut f32| *x = if *x > 0.0 { *x / rp } else { *x * rp };
            for &id in &self.prompt_tokens {
                if !self.output_counts.contains_key(&id) {
                    if let Some(x) = l.get_mut(id as usize) {
                        penalise(x);
                    }
                }
            }
            for &id in self.output_counts.keys() {
                if let Some(x) = l.get_mut(id as usize) {
                    penalise(x);
                }
            }
        }
        if p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
            for (&id, &count) in &self.output_counts {
                if let Some(x) = l.get_mut(id as usize) {
                    *x -= p.presence_penalty + p.frequency_penalty * count as f32;
                }
            }
        }
    }

    /// Picks the next token.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        self.process(logits);
        if self.params.is_greedy() {
            return argmax(&self.logits);
        }
        let p = &self.params;
        let inv_t = 1.0 / p.temperature;
        let max = self
            .logits
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        self.candidates.clear();
        // Unnormalised probabilities exp((l - max) / t); min-p compares against the top one (1.0).
        for (i, &x) in self.logits.iter().enumerate() {
            let w = ((x - max) * inv_t).exp();
            if w > 0.0 && w >= p.min_p {
                self.candidates.push((i as u32, w));
            }
        }
        if self.candidates.is_empty() {
            return argmax(&self.logits);
        }
        let by_weight_desc =
            |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < self.candidates.len() {
            self.candidates
                .select_nth_unstable_by(p.top_k - 1, by_weight_desc);
            self.candidates.truncate(p.top_k);
        }
        if p.top_p < 1.0 {
            let total: f32 = self.candidates.iter().map(|c| c.1).sum();
            let target = p.top_p * total;
            // Sort only as much of the head as the nucleus needs: grow k until the k
            // heaviest candidates hold top_p of the mass.
            let mut k = 64.min(self.candidates.len());
            loop {
                if k < self.candidates.len() {
                    self.candidates
                        .select_nth_unstable_by(k - 1, by_weight_desc);
                }
                self.candidates[..k].sort_unstable_by(by_weight_desc);
                let mut acc = 0.0;
                let mut cut = None;
                for (i, c) in self.candidates[..k].iter().enumerate() {
                    acc += c.1;
                    if acc >= target {
                        cut = Some(i + 1);
                        break;
                    }
                }
                match cut {
                    Some(n) => {
                        self.candidates.truncate(n);
                        break;
                    }
                    None if k == self.candidates.len() => break,
                    None => k = (k * 4).min(self.candidates.len()),
                }
            }
        }
        let total: f32 = self.candidates.iter().map(|c| c.1).sum();
        let mut r = self.rng.random::<f32>() * total;
        for &(id, w) in &self.candidates {
            if r < w {
                return id;
            }
            r -= w;
        }
        self.candidates
            .last()
            .map(|c| c.0)
            .expect("candidates is not empty")
    }
}

/// Log-probabilities of a token and of the `top` most likely tokens, from raw logits
/// (before penalties and temperature, as OpenAI reports them).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprobs {
    pub token: u32,
    pub logprob: f32,
    /// Most likely first.
    pub top: Vec<(u32, f32)>,
}

pub fn logprobs(logits: &[f32], token: u32, top: usize) -> TokenLogprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|&x| (x - max).exp()).sum::<f32>().ln() + max;
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(top + 1);
    if top > 0 {
        for (i, &x) in logits.iter().enumerate() {
            if best.len() < top || x > best[best.len() - 1].1 {
                let at = best.partition_point(|b| b.1 >= x);
                best.insert(at, (i as u32, x));
                best.truncate(top);
            }
        }
    }
    TokenLogprobs {
        token,
        logprob: logits
            .get(token as usize)
            .map_or(f32::NEG_INFINITY, |&x| x - log_sum),
        top: best.into_iter().map(|(i, x)| (i, x - log_sum)).collect(),
    }
}

/// Index of the largest value; the lowest index wins ties.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &x) in xs.iter().enumerate() {
        if x > best_v {
            best = i;
            best_v = x;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
        let mut p = SamplingParams {
            seed: Some(7),
            ..SamplingParams::default()
        };
        f(&mut p);
        p
    }

    #[test]
    fn logprobs_are_normalised_and_sorted() {
        let l = logprobs(&[1.0, 3.0, 2.0, 0.0], 2, 2);
        let expect = |x: f32| x - (1f32.exp() + 3f32.exp() + 2f32.exp() + 1.0).ln();
        assert!((l.logprob - expect(2.0)).abs() < 1e-6);
        assert_eq!(l.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((l.top[0].1 - expect(3.0)).abs() < 1e-6);
        assert!(logprobs(&[0.0, 0.0], 1, 0).top.is_empty());
    }

    #[test]
    fn greedy_picks_the_largest_logit() {
        let mut s = Sampler::new(SamplingParams::greedy(), &[]);
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 1);
    }

    #[test]
    fn logit_bias_changes_the_greedy_choice() {
        let mut s = Sampler::new(
            SamplingParams {
                logit_bias: vec![(3, 0.5)],
                ..SamplingParams::greedy()
            },
            &[],
        );
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 3);
    }

    #[test]
    fn repetition_penalty_covers_the_prompt() {
        let p = SamplingParams {
            repetition_penalty: 2.0,
            ..SamplingParams::greedy()
        };
        let mut s = Sampler::new(p, &[1]);
        // 3.0 / 2 = 1.5 < 2.9
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 3);
    }

    #[test]
    fn frequency_penalty_counts_generated_tokens() {
        let p = SamplingParams {
            frequency_penalty: 0.1,
            ..SamplingParams::greedy()
        };
        let mut s = Sampler::new(p, &[]);
        let logits = [0.0, 1.0, 0.75];
        assert_eq!(s.sample(&logits), 1);
        s.accept(1);
        s.accept(1);
        assert_eq!(s.sample(&logits), 1); // 0.8 > 0.75
        s.accept(1);
        assert_eq!(s.sample(&logits), 2); // 0.7 < 0.75
    }

    #[test]
    fn presence_penalty_is_flat() {
        let p = SamplingParams {
            presence_penalty: 0.5,
            ..SamplingParams::greedy()
        };
        let mut s = Sampler::new(p, &[]);
        s.accept(0);
        s.accept(0);
        s.accept(0);
        assert_eq!(s.sample(&[1.0, 0.6]), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut s = Sampler::new(params(|p| p.seed = Some(seed)), &[]);
            (0..20).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 1.3).cos()).collect();
        let mut s = Sampler::new(params(|p| p.top_k = 1), &[]);
        let best = argmax(&logits);
        for _ in 0..20 {
            assert_eq!(s.sample(&logits), best);
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // probabilities ~ 0.5, 0.3, 0.2 (and tiny rest): top_p 0.6 keeps the two heaviest.
        let mut logits = vec![-30.0f32; 300];
        logits[10] = (0.5f32).ln();
        logits[20] = (0.3f32).ln();
        logits[30] = (0.2f32).ln();
        let mut s = Sampler::new(params(|p| p.top_p = 0.6), &[]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            seen.insert(s.sample(&logits));
        }
        assert_eq!(seen, [10, 20].into_iter().collect());
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        let logits = [0.0f32, -0.5, -5.0];
        let mut s = Sampler::new(params(|p| p.min_p = 0.1), &[]);
        for _ in 0..200 {
            assert_ne!(s.sample(&logits), 2);
        }
    }

    #[test]
    fn temperature_sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()]; // 25% / 75%
        let mut s = Sampler::new(params(|_| {}), &[]);
        let ones = (0..4000).filter(|_| s.sample(&logits) == 1).count();
        assert!((2800..3200).contains(&ones), "{ones}");
    }
}
