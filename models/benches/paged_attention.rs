//! Attention through the paged cache against the contiguous cache (candle's matmul path,
//! `layers::attention`), one layer, for a decode step at context 512 and a prefill of 512
//! tokens, on the attention shapes of a few model sizes. The paged cache's time includes
//! writing the step's keys and values into their blocks, as the contiguous one's includes
//! its append.
//!
//!     cargo bench -p candor-models --bench paged_attention
//!
//! or, without a release build (the dev profile optimizes this crate and its
//! dependencies at opt-level 3 too): `cargo test -p candor-models --bench paged_attention`.
//!
//! The machines we run on are shared: compare the columns, not runs.

use candle_core::{Device, Tensor};
use candor_models::layers::AttentionParams;
use candor_models::{ContiguousCache, KvCache, PagedKvStore, PagedSeqCache};
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let mut reps = 0;
        while t.elapsed().as_secs_f64() < 0.1 {
            f();
            reps += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    best
}

fn params(start_pos: usize) -> AttentionParams {
    AttentionParams {
        scale: 0.1,
        softcap: None,
        window: None,
        start_pos,
    }
}

const CONTEXT: usize = 512;
const BLOCK_SIZE: usize = 16;

fn main() {
    let dev = Device::Cpu;
    // (what, heads, kv heads, head_dim)
    let shapes = [
        ("SmolLM2-135M", 9, 3, 64),
        ("Gemma 3 270M", 4, 1, 256),
        ("Llama 3 8B", 32, 8, 128),
    ];
    println!(
        "threads: {}; block size {BLOCK_SIZE}",
        candle_core::utils::barrier_pool().n_workers() + 1
    );
    println!("| shape | step | contiguous µs | paged µs | contiguous / paged |");
    println!("|---|---|---|---|---|");
    for (what, heads, kvh, d) in shapes {
        let rand = |h, n| Tensor::randn(0f32, 1.0, (h, n, d), &dev).unwrap();
        let blocks = CONTEXT / BLOCK_SIZE;
        // Every other block, backwards: a table that is not in order.
        let table: Vec<u32> = (0..blocks as u32).rev().map(|b| 2 * b).collect();
        let store = PagedKvStore::new(1, kvh, d, BLOCK_SIZE, 2 * blocks).unwrap();
        let store = Arc::new(Mutex::new(store));
        let mut contiguous = ContiguousCache::new(1);

        // Prefill of the whole context, from empty caches.
        let (q, k, v) = (rand(heads, CONTEXT), rand(kvh, CONTEXT), rand(kvh, CONTEXT));
        let tc = time(|| {
            contiguous.clear();
            contiguous.attend(0, &q, &k, &v, &params(0)).unwrap();
        });
        let tp = time(|| {
            let mut paged = PagedSeqCache::new(store.clone(), &table, 0);
            paged.attend(0, &q, &k, &v, &params(0)).unwrap();
        });
        println!(
            "| {what} ({heads}/{kvh} heads, d {d}) | prefill {CONTEXT} | {:.1} | {:.1} | {:.2}x |",
            tc * 1e6,
            tp * 1e6,
            tc / tp
        );

        // A decode step at position CONTEXT - 1, over caches that hold the positions before.
        let pos = CONTEXT - 1;
        let (q, k, v) = (rand(heads, 1), rand(kvh, 1), rand(kvh, 1));
        let tc = time(|| {
            contiguous.truncate(pos);
            contiguous.attend(0, &q, &k, &v, &params(pos)).unwrap();
        });
        let tp = time(|| {
            let mut paged = PagedSeqCache::new(store.clone(), &table, pos);
            paged.attend(0, &q, &k, &v, &params(pos)).unwrap();
        });
        println!(
            "| {what} ({heads}/{kvh} heads, d {d}) | decode at {CONTEXT} | {:.1} | {:.1} | {:.2}x |",
            tc * 1e6,
            tp * 1e6,
            tc / tp
        );
    }
}
