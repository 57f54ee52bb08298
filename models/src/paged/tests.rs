//! Tests of the paged KV cache and its attention kernel against the contiguous cache.

use super::*;
use crate::kv_cache::ContiguousCache;

/// Deterministic values in [-1, 1) (xorshift64), so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }

    fn tensor(&mut self, shape: (usize, usize, usize)) -> Tensor {
        let v = self.vec(shape.0 * shape.1 * shape.2);
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.flatten_all().unwrap(), b.flatten_all().unwrap());
    let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A run of forward steps through one sequence's cache.
struct Case {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    block_size: usize,
    num_blocks: usize,
    table: Vec<u32>,
    /// New tokens per step.
    steps: Vec<usize>,
    scale: f64,
    softcap: Option<f64>,
    window: Option<usize>,
}

impl Default for Case {
    fn default() -> Self {
        Self {
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            block_size: 4,
            num_blocks: 8,
            table: (0..8).collect(),
            steps: vec![11],
            scale: 0.25,
            softcap: None,
            window: None,
        }
    }
}

const LAYERS: usize = 2;

/// Which store a case runs through.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// The CPU f32 kernel.
    Kernel,
    /// The candle-ops reference path, on the CPU in this dtype.
    Reference(DType),
}

impl Path {
    fn dtype(self) -> DType {
        match self {
            Path::Kernel => DType::F32,
            Path::Reference(dt) => dt,
        }
    }

    fn store(self, case: &Case) -> PagedKvStore {
        let (kvh, d, bs, nb) = (
            case.kv_heads,
            case.head_dim,
            case.block_size,
            case.num_blocks,
        );
        match self {
            Path::Kernel => PagedKvStore::new(LAYERS, kvh, d, bs, nb),
            Path::Reference(dt) => PagedKvStore::with(
                PagedAttention::Reference,
                [LAYERS, kvh, d, bs, nb],
                dt,
                &Device::Cpu,
            ),
        }
        .unwrap()
    }
}

/// Runs `case` through `cache`, two layers each with different data, in `dtype`: the
/// outputs of every step and layer in f32.
fn run(case: &Case, cache: &mut dyn KvCache, dtype: DType) -> Vec<Tensor> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (h, kvh, d) = (case.heads, case.kv_heads, case.head_dim);
    let mut outs = Vec::new();
    let mut pos = 0;
    for &n in &case.steps {
        for layer in 0..LAYERS {
            let mut t = |shape| rng.tensor(shape).to_dtype(dtype).unwrap();
            let (q, k, v) = (t((h, n, d)), t((kvh, n, d)), t((kvh, n, d)));
            let params = AttentionParams {
                scale: case.scale,
                softcap: case.softcap,
                window: case.window,
                start_pos: pos,
            };
            let out = cache.attend(layer, &q, &k, &v, &params).unwrap();
            assert_eq!(out.dims(), &[n, h * d]);
            assert_eq!(out.dtype(), dtype);
            outs.push(out.to_dtype(DType::F32).unwrap());
        }
        pos += n;
        assert_eq!(cache.len(), pos);
    }
    outs
}

/// Runs `case` through a [`PagedSeqCache`] on `path`; outputs as [`run`].
fn run_paged(case: &Case, path: Path) -> Vec<Tensor> {
    let store = Arc::new(Mutex::new(path.store(case)));
    run(
        case,
        &mut PagedSeqCache::new(store, &case.table, 0),
        path.dtype(),
    )
}

fn worst(a: &[Tensor], b: &[Tensor]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0, f32::max)
}

/// Checks `case` on every path against the contiguous cache (which uses
/// `layers::attention`) in the same dtype, and the two f32 paths against each other.
/// Tolerances: f32 rounding; in f16/bf16 one unit in the last place of outputs below 1
/// (the reference path and the contiguous cache attend with the same function over the
/// same values, and on this CPU agree exactly).
fn check(name: &str, case: Case) {
    let contiguous = |dtype| run(&case, &mut ContiguousCache::new(LAYERS), dtype);
    let kernel = run_paged(&case, Path::Kernel);
    let reference = run_paged(&case, Path::Reference(DType::F32));
    let want = contiguous(DType::F32);
    for (what, got, tol) in [
        ("kernel vs contiguous", &kernel, 1e-5),
        ("reference vs contiguous", &reference, 1e-5),
        ("reference vs kernel", &reference, 1e-5),
    ] {
        let other = if what.ends_with("kernel") {
            &kernel
        } else {
            &want
        };
        let w = worst(got, other);
        println!("{name}: {what} (f32): max |Δ| {w:.2e}");
        assert!(w <= tol, "{name}: {what} (f32): max |Δ| {w} > {tol}");
    }
    for (dtype, tol) in [(DType::F16, 1e-3), (DType::BF16, 8e-3)] {
        let w = worst(
            &run_paged(&case, Path::Reference(dtype)),
            &contiguous(dtype),
        );
        println!("{name}: reference vs contiguous ({dtype:?}): max |Δ| {w:.2e}");
        assert!(w <= tol, "{name}: {dtype:?}: max |Δ| {w} > {tol}");
    }
}

#[test]
fn prefill_over_several_blocks() {
    check("block 4", Case::default());
    check(
        "block 16",
        Case {
            block_size: 16,
            steps: vec![40],
            ..Case::default()
        },
    );
}

#[test]
fn decode_steps() {
    check(
        "decode",
        Case {
            steps: vec![3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            ..Case::default()
        },
    );
    // From an empty cache, one token at a time.
    check(
        "decode from empty",
        Case {
            steps: vec![1; 9],
            ..Case::default()
        },
    );
}

#[test]
fn chunked_prefill() {
    check(
        "chunks",
        Case {
            steps: vec![5, 6, 7, 1, 2],
            num_blocks: 6,
            table: (0..6).collect(),
            ..Case::default()
        },
    );
}

#[test]
fn grouped_query_attention() {
    for (heads, kv_heads) in [(4, 2), (8, 2), (3, 3), (6, 1)] {
        check(
            &format!("{heads} heads, {kv_heads} kv heads"),
            Case {
                heads,
                kv_heads,
                steps: vec![7, 1, 3],
                ..Case::default()
            },
        );
    }
}

#[test]
fn sliding_window() {
    for window in [1, 3, 5, 8] {
        check(
            &format!("window {window}"),
            Case {
                window: Some(window),
                steps: vec![9, 1, 1, 6, 1],
                ..Case::default()
            },
        );
    }
}

#[test]
fn softcap() {
    // Scores up to about 16 with scale 1, so a cap of 5 bends most of them.
    check(
        "softcap",
        Case {
            scale: 1.0,
            softcap: Some(5.0),
            steps: vec![10, 1, 4],
            ..Case::default()
        },
    );
    check(
        "softcap and window",
        Case {
            scale: 1.0,
            softcap: Some(5.0),
            window: Some(6),
            steps: vec![10, 1, 4],
            ..Case::default()
        },
    );
}

#[test]
fn block_table_out_of_order() {
    check(
        "[5, 2, 9]",
        Case {
            num_blocks: 10,
            table: vec![5, 2, 9],
            steps: vec![6, 1, 1, 1, 1, 1, 1],
            ..Case::default()
        },
    );
}

#[test]
fn head_dim_not_a_multiple_of_the_lanes() {
    for head_dim in [1, 20, 40] {
        check(
            &format!("head_dim {head_dim}"),
            Case {
                head_dim,
                steps: vec![6, 1, 3],
                ..Case::default()
            },
        );
    }
}

#[test]
fn large_call_runs_in_parallel() {
    // 8 heads x 64 queries x 64 keys x 64 dims is far above PARALLEL_MIN_FMAS.
    let case = Case {
        heads: 8,
        kv_heads: 4,
        head_dim: 64,
        block_size: 16,
        steps: vec![64, 1],
        num_blocks: 5,
        table: vec![4, 0, 3, 1, 2],
        ..Case::default()
    };
    check("parallel", case);
}

/// The kernel on hand-filled blocks against attention written out in f64, with and
/// without AVX2, for head dims below and above [`LANES`] and the vector paths (multiples
/// of 8 and of 32).
#[test]
fn kernel_against_naive_attention() {
    let variants: &[bool] = if crate::cpu::has_avx2_fma() {
        &[false, true]
    } else {
        &[false]
    };
    for &avx2 in variants {
        for d in [8, 40, 64, 96] {
            let worst = kernel_vs_f64(d, avx2);
            println!("kernel (head_dim {d}, avx2 {avx2}) vs f64: max |Δ| {worst:.2e}");
            assert!(worst < 1e-6, "head_dim {d}, avx2 {avx2}: max |Δ| {worst}");
        }
    }
}

fn kernel_vs_f64(d: usize, avx2: bool) -> f64 {
    let (heads, kvh, bs) = (4, 2, 3);
    let table = [2u32, 0, 3];
    let (start, n, len) = (5, 3, 8);
    let (scale, cap, window) = (0.5, 3.0, 4);
    let mut rng = Rng(7);
    let q = rng.vec(heads * n * d);
    // Keys and values by position, (len, kv_heads, d), then scattered into blocks; the
    // slots no position maps to hold NaN, which would show if the kernel read them.
    let (keys, values) = (rng.vec(len * kvh * d), rng.vec(len * kvh * d));
    let block_len = kvh * bs * d;
    let (mut kb, mut vb) = (vec![f32::NAN; 4 * block_len], vec![f32::NAN; 4 * block_len]);
    for p in 0..len {
        for g in 0..kvh {
            let at = ((table[p / bs] as usize * kvh + g) * bs + p % bs) * d;
            let from = (p * kvh + g) * d;
            kb[at..at + d].copy_from_slice(&keys[from..from + d]);
            vb[at..at + d].copy_from_slice(&values[from..from + d]);
        }
    }
    let blocks = LayerBlocks {
        k: &kb,
        v: &vb,
        kv_heads: kvh,
        head_dim: d,
        block_size: bs,
    };
    let params = AttentionParams {
        scale,
        softcap: Some(cap),
        window: Some(window),
        start_pos: start,
    };
    let out = attention_with(&q, heads, blocks, &table, &params, avx2);
    let mut worst = 0f64;
    for i in 0..n {
        for h in 0..heads {
            let g = h / (heads / kvh);
            let pos = start + i;
            let visible: Vec<usize> = (0..=pos).filter(|&p| p + window > pos).collect();
            let scores: Vec<f64> = visible
                .iter()
                .map(|&p| {
                    let s: f64 = (0..d)
                        .map(|x| q[(h * n + i) * d + x] as f64 * keys[(p * kvh + g) * d + x] as f64)
                        .sum();
                    (s * scale / cap).tanh() * cap
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for x in 0..d {
                let want: f64 = visible
                    .iter()
                    .zip(&e)
                    .map(|(&p, w)| w / sum * values[(p * kvh + g) * d + x] as f64)
                    .sum();
                let got = out[(i * heads + h) * d + x] as f64;
                worst = worst.max((got - want).abs());
            }
        }
    }
    worst
}

#[test]
fn copy_block_copies_every_layer() {
    let mut store = PagedKvStore::new(2, 1, 2, 2, 3).unwrap();
    store.write_host(0, &[1], 0, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]);
    store.write_host(1, &[1], 0, &[9.0, 9.0], &[8.0, 8.0]);
    store.copy_block(1, 2).unwrap();
    let l0 = store.layer(0).unwrap();
    assert_eq!(&l0.k[8..12], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(&l0.v[8..12], &[5.0, 6.0, 7.0, 8.0]);
    let l1 = store.layer(1).unwrap();
    assert_eq!(&l1.k[8..12], &[9.0, 9.0, 0.0, 0.0]);
    assert_eq!(&l1.v[8..12], &[8.0, 8.0, 0.0, 0.0]);
    // Block 0 is untouched.
    assert!(l0.k[..4].iter().all(|&x| x == 0.0));
    let e = store.copy_block(1, 3).unwrap_err().to_string();
    assert_eq!(e, "KV cache: copy_block(1, 3): the store has 3 blocks");
}

#[test]
fn copy_block_copies_every_layer_of_a_store_of_tensors() {
    // Two layers, one kv head of dimension 2, blocks of 2 slots: a block is 2 rows.
    let mut store = PagedKvStore::with(
        PagedAttention::Reference,
        [2, 1, 2, 2, 3],
        DType::F16,
        &Device::Cpu,
    )
    .unwrap();
    let fill = |t: &Tensor, at: usize, x: &[f32]| {
        let rows = Tensor::from_slice(x, (x.len() / 2, 2), &Device::Cpu).unwrap();
        t.slice_set(&rows.to_dtype(DType::F16).unwrap(), 0, at)
            .unwrap();
    };
    for layer in 0..2 {
        let (k, v) = store.layer_tensors(layer).unwrap();
        let base = 10.0 * layer as f32;
        fill(k, 2, &[base + 1.0, base + 2.0, base + 3.0, base + 4.0]);
        fill(v, 2, &[base + 5.0, base + 6.0]);
    }
    store.copy_block(1, 2).unwrap();
    let rows = |t: &Tensor, at: usize| {
        let t = t.narrow(0, at, 2).unwrap().to_dtype(DType::F32).unwrap();
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    for layer in 0..2 {
        let (k, v) = store.layer_tensors(layer).unwrap();
        let base = 10.0 * layer as f32;
        assert_eq!(rows(k, 4), [base + 1.0, base + 2.0, base + 3.0, base + 4.0]);
        assert_eq!(rows(v, 4), [base + 5.0, base + 6.0, 0.0, 0.0]);
        // Block 0 is untouched.
        assert_eq!(rows(k, 0), [0.0; 4]);
    }
    let e = store.copy_block(3, 1).unwrap_err().to_string();
    assert_eq!(e, "KV cache: copy_block(3, 1): the store has 3 blocks");
}

#[test]
fn a_store_of_tensors_takes_only_its_own_dtype() {
    let store = PagedKvStore::with(
        PagedAttention::Reference,
        [1, 2, 4, 4, 3],
        DType::BF16,
        &Device::Cpu,
    )
    .unwrap();
    let table = [0u32];
    let mut cache = PagedSeqCache::new(Arc::new(Mutex::new(store)), &table, 0);
    let t = |h| Tensor::zeros((h, 1, 4), DType::F16, &Device::Cpu).unwrap();
    let e = cache.attend(0, &t(4), &t(2), &t(2), &at(0)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "KV cache: the store holds BF16 on Cpu; q is F16 on Cpu"
    );
    // And the CPU kernel's store only f32 on the CPU.
    let e = PagedKvStore::with(
        PagedAttention::CpuKernel,
        [1, 1, 1, 1, 1],
        DType::F16,
        &Device::Cpu,
    );
    assert!(e.is_err());
}

#[test]
fn bytes_per_block() {
    // 2 (k, v) x 2 layers x 4 kv heads x 8 dims x 16 slots x 4 bytes.
    assert_eq!(PagedKvStore::bytes_per_block(2, 4, 8, 16, DType::F32), 8192);
    assert_eq!(
        PagedKvStore::bytes_per_block(2, 4, 8, 16, DType::BF16),
        4096
    );
    let store = PagedKvStore::new(2, 4, 8, 16, 3).unwrap();
    let Storage::Host { k, v } = &store.storage else {
        panic!("a host store")
    };
    let floats: usize = k.iter().chain(v).map(Vec::len).sum();
    assert_eq!(floats * 4, 3 * 8192);
    let store = PagedKvStore::with(
        PagedAttention::Reference,
        [2, 4, 8, 16, 3],
        DType::BF16,
        &Device::Cpu,
    )
    .unwrap();
    let (k, v) = store.layer_tensors(1).unwrap();
    assert_eq!((k.dims(), v.dtype()), (&[48, 32][..], DType::BF16));
}

#[test]
fn zero_sizes_are_refused() {
    assert!(PagedKvStore::new(1, 1, 1, 0, 4).is_err());
    assert!(PagedKvStore::new(0, 1, 1, 4, 4).is_err());
}

/// One attend call of a (4 heads, 2 kv heads, d 4) layer; returns the error message.
fn attend_err(
    table: Vec<u32>,
    len: usize,
    n: usize,
    dtype: DType,
    params: AttentionParams,
) -> String {
    let store = PagedKvStore::new(1, 2, 4, 4, 3).unwrap();
    let mut cache = PagedSeqCache::new(Arc::new(Mutex::new(store)), &table, len);
    let t = |h| Tensor::zeros((h, n, 4), dtype, &Device::Cpu).unwrap();
    cache
        .attend(0, &t(4), &t(2), &t(2), &params)
        .unwrap_err()
        .to_string()
}

fn at(start_pos: usize) -> AttentionParams {
    AttentionParams {
        scale: 1.0,
        softcap: None,
        window: None,
        start_pos,
    }
}

#[test]
fn misuse_is_a_clear_error() {
    assert_eq!(
        attend_err(vec![0, 1], 6, 3, DType::F32, at(6)),
        "KV cache: 9 tokens need 3 blocks of 4; the block table has 2"
    );
    assert_eq!(
        attend_err(vec![0, 7], 0, 5, DType::F32, at(0)),
        "KV cache: block 7 in the block table; the store has 3"
    );
    assert_eq!(
        attend_err(vec![0], 0, 1, DType::F16, at(0)),
        "KV cache: the CPU kernel's store takes f32 tensors on the CPU; q is F16 on Cpu"
    );
    assert_eq!(
        attend_err(vec![0], 1, 1, DType::F32, at(0)),
        "KV cache: attention starts at position 0 but layer 0 holds 1 tokens"
    );
}
