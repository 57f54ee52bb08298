//! Engine metrics, written by the engine thread and read by `GET /metrics` in Prometheus'
//! text format. Plain atomics: a scrape never waits for the engine.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram with fixed upper bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations <= each bound (not cumulative; summed when rendered), then +Inf.
    counts: Vec<AtomicU64>,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => format!("{b}"),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

const TTFT_BOUNDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const ITL_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Everything `/metrics` reports.
pub struct Metrics {
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    pub kv_blocks_total: AtomicU64,
    pub kv_blocks_used: AtomicU64,
    pub kv_blocks_cached: AtomicU64,
    pub kv_blocks_free: AtomicU64,
    /// Prompt tokens looked up in the prefix cache, and those found.
    pub prefix_queried_tokens: AtomicU64,
    pub prefix_hit_tokens: AtomicU64,
    pub preemptions: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub reasoning_tokens: AtomicU64,
    pub requests_finished: AtomicU64,
    pub steps: AtomicU64,
    pub time_to_first_token: Histogram,
    pub inter_token_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_blocks_total: AtomicU64::new(0),
            kv_blocks_used: AtomicU64::new(0),
            kv_blocks_cached: AtomicU64::new(0),
            kv_blocks_free: AtomicU64::new(0),
            prefix_queried_tokens: AtomicU64::new(0),
            prefix_hit_tokens: AtomicU64::new(0),
            preemptions: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            reasoning_tokens: AtomicU64::new(0),
            requests_finished: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            time_to_first_token: Histogram::new(TTFT_BOUNDS),
            inter_token_latency: Histogram::new(ITL_BOUNDS),
        }
    }
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl Metrics {
    pub fn add_prompt(&self, n: usize) {
        add(&self.prompt_tokens, n);
    }

    pub fn add_generated(&self, n: usize) {
        add(&self.generation_tokens, n);
    }

    pub fn add_reasoning(&self, n: usize) {
        add(&self.reasoning_tokens, n);
    }

    pub fn add_prefix_lookup(&self, queried: usize, hit: usize) {
        add(&self.prefix_queried_tokens, queried);
        add(&self.prefix_hit_tokens, hit);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, model: &str) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let queried = load(&self.prefix_queried_tokens);
        let hits = load(&self.prefix_hit_tokens);
        let hit_rate = if queried > 0.0 { hits / queried } else { 0.0 };
        const GAUGE: &str = "gauge";
        const COUNTER: &str = "counter";
        // (name, type, help, value), in the order they are printed.
        #[rustfmt::skip]
        let series: [(&str, &str, &str, f64); 15] = [
            ("candor_requests_running", GAUGE, "Sequences in the running batch.", load(&self.running)),
            ("candor_requests_waiting", GAUGE, "Sequences waiting to be admitted.", load(&self.waiting)),
            ("candor_kv_blocks_total", GAUGE, "KV cache blocks in the pool.", load(&self.kv_blocks_total)),
            ("candor_kv_blocks_used", GAUGE, "KV cache blocks held by sequences.", load(&self.kv_blocks_used)),
            ("candor_kv_blocks_cached", GAUGE, "Unheld KV cache blocks kept for prefix reuse (evictable).", load(&self.kv_blocks_cached)),
            ("candor_kv_blocks_free", GAUGE, "KV cache blocks neither held nor cached.", load(&self.kv_blocks_free)),
            ("candor_prefix_cache_queries_total", COUNTER, "Prompt tokens looked up in the prefix cache.", queried),
            ("candor_prefix_cache_hits_total", COUNTER, "Prompt tokens found in the prefix cache.", hits),
            ("candor_prefix_cache_hit_rate", GAUGE, "Prefix cache hits over queries, in tokens.", hit_rate),
            ("candor_preemptions_total", COUNTER, "Sequences preempted when the KV pool ran out.", load(&self.preemptions)),
            ("candor_prompt_tokens_total", COUNTER, "Prompt tokens of admitted sequences.", load(&self.prompt_tokens)),
            ("candor_generation_tokens_total", COUNTER, "Tokens generated.", load(&self.generation_tokens)),
            ("candor_reasoning_tokens_total", COUNTER, "Generated tokens spent thinking.", load(&self.reasoning_tokens)),
            ("candor_requests_finished_total", COUNTER, "Sequences finished (any reason).", load(&self.requests_finished)),
            ("candor_engine_steps_total", COUNTER, "Forward passes of the batching engine.", load(&self.steps)),
        ];
        let mut out = String::new();
        let _ = writeln!(out, "# candor metrics for model {model}");
        for (name, kind, help, v) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        self.time_to_first_token.render(
            &mut out,
            "candor_time_to_first_token_seconds",
            "From submission to the first generated token.",
        );
        self.inter_token_latency.render(
            &mut out,
            "candor_inter_token_latency_seconds",
            "Between consecutive tokens of a sequence.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.time_to_first_token.observe(Duration::from_millis(20));
        m.time_to_first_token.observe(Duration::from_millis(200));
        m.time_to_first_token.observe(Duration::from_secs(100));
        let text = m.render("x");
        assert!(text.contains("candor_time_to_first_token_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("candor_time_to_first_token_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("candor_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("candor_time_to_first_token_seconds_count 3"));
        assert!(text.contains("# TYPE candor_requests_running gauge\ncandor_requests_running 0"));
    }
}
