//! The paged KV cache inside the whole model: on the tiny reference models of
//! tests/data (see golden.rs), [`PagedSeqCache`]s over one shared [`PagedKvStore`], read by
//! the CPU kernel and by the candle-ops path, must give the logits [`ContiguousCache`] gives
//! (and transformers' within 1e-4), for prefill and decode, chunked prefill, a
//! batch of sequences sharing the store, and a sequence that starts from another's
//! prefix blocks (whole blocks shared, or a partial block copied on write).

mod common;

use candor_models::{
    Checkpoint, ContiguousCache, DType, Device, KvCache, LoadOptions, LogitsFor, Model,
    PagedAttention, PagedKvStore, PagedSeqCache, SequenceInput, Tensor,
};
use common::{data_dir, max_abs_diff};
use std::sync::{Arc, Mutex};

/// llama: GQA and Llama 3 rope scaling; qwen3: head_dim 32 and q/k norms; gemma3: a
/// sliding window of 4 on layers 0 and 1; gemma3-softcap: attention soft-capping too.
const CASES: [&str; 4] = ["llama", "qwen3", "gemma3", "gemma3-softcap"];

/// Paged against contiguous: both run the same f32 arithmetic outside attention, and the
/// attention kernels differ only in summation order.
const TOL: f32 = 1e-5;

/// Against transformers, as in golden.rs.
const REFERENCE_TOL: f32 = 1e-4;

fn load(case: &str) -> Model {
    let dir = data_dir(case);
    Checkpoint::open(&dir)
        .and_then(|c| c.load(&LoadOptions::default()))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The 12 reference token ids and transformers' logits for them, (12, vocab).
fn reference(case: &str) -> (Vec<u32>, Tensor) {
    let path = data_dir(case).join("reference.safetensors");
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ids = t["input_ids"].to_vec1::<i64>().unwrap();
    let logits = t.remove("logits").expect("reference logits");
    (ids.into_iter().map(|i| i as u32).collect(), logits)
}

/// Every case on both paths of the CPU in f32: the kernel, and the candle ops a GPU runs.
fn cases() -> impl Iterator<Item = (&'static str, PagedAttention)> {
    CASES
        .into_iter()
        .flat_map(|c| [PagedAttention::CpuKernel, PagedAttention::Reference].map(|a| (c, a)))
}

fn store(
    model: &Model,
    attention: PagedAttention,
    block_size: usize,
    num_blocks: usize,
) -> Arc<Mutex<PagedKvStore>> {
    let c = model.config();
    let dims = [
        c.num_layers,
        c.num_kv_heads,
        c.head_dim,
        block_size,
        num_blocks,
    ];
    let s = PagedKvStore::with(attention, dims, DType::F32, &Device::Cpu).unwrap();
    Arc::new(Mutex::new(s))
}

/// Feeds `tokens` to one sequence in chunks of the given sizes, starting at the cache's
/// length; returns the logits of every token, (tokens, vocab).
fn run(model: &Model, cache: &mut dyn KvCache, tokens: &[u32], chunks: &[usize]) -> Tensor {
    assert_eq!(chunks.iter().sum::<usize>(), tokens.len());
    let mut out = Vec::new();
    let mut at = 0;
    for &n in chunks {
        let start_pos = cache.len();
        out.push(
            model
                .forward(&mut [SequenceInput {
                    tokens: &tokens[at..at + n],
                    start_pos,
                    cache: &mut *cache,
                    logits: LogitsFor::All,
                }])
                .unwrap(),
        );
        at += n;
    }
    Tensor::cat(&out, 0).unwrap()
}

/// Logits of `tokens` from an empty contiguous cache, in one pass.
fn from_scratch(model: &Model, tokens: &[u32]) -> Tensor {
    let mut cache = ContiguousCache::new(model.config().num_layers);
    run(model, &mut cache, tokens, &[tokens.len()])
}

fn report(what: &str, case: &str, diff: f32, tol: f32) {
    println!("{case} {what}: max |Δ| {diff:.2e}");
    assert!(diff <= tol, "{case} {what}: max |Δ| {diff} > {tol}");
}

/// Prefill 8 tokens, then decode 4 one by one, through blocks of 4 in scattered order.
#[test]
fn prefill_then_decode_matches_contiguous() {
    for (case, attention) in cases() {
        let model = load(case);
        let (ids, want) = reference(case);
        let chunks = [8, 1, 1, 1, 1];
        let mut paged = PagedSeqCache::new(store(&model, attention, 4, 10), &[5, 2, 9], 0);
        let ours = run(&model, &mut paged, &ids, &chunks);
        let mut contiguous = ContiguousCache::new(model.config().num_layers);
        let theirs = run(&model, &mut contiguous, &ids, &chunks);
        assert_eq!(paged.len(), ids.len());
        report(
            "paged vs contiguous",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&ours, &theirs),
            TOL,
        );
        report(
            "paged vs transformers",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&ours, &want),
            REFERENCE_TOL,
        );
    }
}

/// Prefill in chunks that start and end inside blocks of 3.
#[test]
fn chunked_prefill_matches_contiguous() {
    for (case, attention) in cases() {
        let model = load(case);
        let (ids, _) = reference(case);
        let chunks = [5, 3, 2, 1, 1];
        let mut paged = PagedSeqCache::new(store(&model, attention, 3, 6), &[4, 1, 5, 0], 0);
        let ours = run(&model, &mut paged, &ids, &chunks);
        let theirs = from_scratch(&model, &ids);
        report(
            "chunked prefill",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&ours, &theirs),
            TOL,
        );
    }
}

/// One sequence of the batch as the engine tracks it between steps.
struct Tracked {
    table: Vec<u32>,
    len: usize,
    contiguous: ContiguousCache,
}

/// Two sequences of different lengths in one store, batched, with their caches rebuilt
/// from block table and length before every step as the engine does: each step's logits
/// equal the same batch run on contiguous caches.
#[test]
fn batch_sharing_one_store() {
    for (case, attention) in cases() {
        let model = load(case);
        let (ids, _) = reference(case);
        let layers = model.config().num_layers;
        let store = store(&model, attention, 4, 8);
        // Interleaved, so that a write past a sequence's own blocks would hit the other's.
        let mut seqs = [
            Tracked {
                table: vec![1, 3, 5],
                len: 0,
                contiguous: ContiguousCache::new(layers),
            },
            Tracked {
                table: vec![6, 0, 2, 4, 7],
                len: 0,
                contiguous: ContiguousCache::new(layers),
            },
        ];
        let rev: Vec<u32> = ids.iter().rev().copied().collect();
        // (tokens of the short one, tokens of the long one) per step.
        let steps: [(&[u32], &[u32]); 4] = [
            (&ids[..5], &ids),
            (&ids[5..6], &rev[..1]),
            (&ids[6..9], &rev[1..2]),
            (&ids[9..10], &rev[2..5]),
        ];
        // The caches borrow the tables while the contiguous side borrows `seqs` mutably.
        let tables: Vec<Vec<u32>> = seqs.iter().map(|s| s.table.clone()).collect();
        let mut worst = 0f32;
        for (a, b) in steps {
            let tokens = [a, b];
            let mut paged: Vec<PagedSeqCache> = seqs
                .iter()
                .zip(&tables)
                .map(|(s, table)| PagedSeqCache::new(store.clone(), table, s.len))
                .collect();
            let mut batch: Vec<SequenceInput> = paged
                .iter_mut()
                .zip(tokens)
                .map(|(cache, tokens)| SequenceInput {
                    tokens,
                    start_pos: cache.len(),
                    cache,
                    logits: LogitsFor::All,
                })
                .collect();
            let ours = model.forward(&mut batch).unwrap();
            let mut batch: Vec<SequenceInput> = seqs
                .iter_mut()
                .zip(tokens)
                .map(|(s, tokens)| SequenceInput {
                    tokens,
                    start_pos: s.len,
                    cache: &mut s.contiguous,
                    logits: LogitsFor::All,
                })
                .collect();
            let theirs = model.forward(&mut batch).unwrap();
            worst = worst.max(max_abs_diff(&ours, &theirs));
            for (s, p) in seqs.iter_mut().zip(&paged) {
                s.len = p.len();
                assert_eq!(s.len, s.contiguous.len());
            }
        }
        report(
            "batch of two in one store",
            &format!("{case} ({attention:?})"),
            worst,
            TOL,
        );
    }
}

/// A continuation unlike the reference prompt's.
const OTHER: [u32; 4] = [250, 3, 77, 140];

/// A second sequence starts from the first one's two full blocks (8 tokens) and continues
/// with other tokens: its logits equal computing prefix + continuation from scratch, and
/// the first sequence's later steps are unaffected.
#[test]
fn shared_prefix_blocks() {
    for (case, attention) in cases() {
        let model = load(case);
        let (ids, _) = reference(case);
        let store = store(&model, attention, 4, 8);
        let mut first = PagedSeqCache::new(store.clone(), &[3, 0, 5], 0);
        run(&model, &mut first, &ids, &[12]);

        let mut second = PagedSeqCache::new(store.clone(), &[3, 0, 7], 8);
        let ours = run(&model, &mut second, &OTHER, &[3, 1]);
        let whole = [&ids[..8], &OTHER[..]].concat();
        let theirs = from_scratch(&model, &whole).narrow(0, 8, 4).unwrap();
        report(
            "shared prefix",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&ours, &theirs),
            TOL,
        );

        // The first sequence goes on as if alone.
        let mut first = PagedSeqCache::new(store.clone(), &[3, 0, 5, 1], 12);
        let next = run(&model, &mut first, &OTHER[..1], &[1]);
        let whole = [&ids[..], &OTHER[..1]].concat();
        let theirs = from_scratch(&model, &whole).narrow(0, 12, 1).unwrap();
        report(
            "prefix owner after sharing",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&next, &theirs),
            TOL,
        );
    }
}

/// A second sequence shares 6 tokens: one full block and half of the next. The engine
/// copies the partial block before the second sequence writes its slots 2 and 3; the first
/// sequence's copy of it stays intact.
#[test]
fn copy_on_write_of_a_partial_block() {
    for (case, attention) in cases() {
        let model = load(case);
        let (ids, _) = reference(case);
        let store = store(&model, attention, 4, 8);
        let mut first = PagedSeqCache::new(store.clone(), &[3, 0, 5], 0);
        run(&model, &mut first, &ids, &[12]);

        store.lock().unwrap().copy_block(0, 6).unwrap();
        let mut second = PagedSeqCache::new(store.clone(), &[3, 6, 2], 6);
        let ours = run(&model, &mut second, &OTHER, &[2, 1, 1]);
        let whole = [&ids[..6], &OTHER[..]].concat();
        let theirs = from_scratch(&model, &whole).narrow(0, 6, 4).unwrap();
        report(
            "copy-on-write prefix",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&ours, &theirs),
            TOL,
        );

        let mut first = PagedSeqCache::new(store.clone(), &[3, 0, 5, 1], 12);
        let next = run(&model, &mut first, &OTHER[..1], &[1]);
        let whole = [&ids[..], &OTHER[..1]].concat();
        let theirs = from_scratch(&model, &whole).narrow(0, 12, 1).unwrap();
        report(
            "partial block owner after copy",
            &format!("{case} ({attention:?})"),
            max_abs_diff(&next, &theirs),
            TOL,
        );
    }
}
