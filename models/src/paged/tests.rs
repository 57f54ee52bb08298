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
const TOL: f32 = 1e-5;

/// Runs `case` through a [`PagedSeqCache`] and a [`ContiguousCache`] (which uses
/// `layers::attention`), two layers each with different data; returns the max |Δ|.
fn paged_vs_contiguous(case: &Case) -> f32 {
    let store = PagedKvStore::new(
        LAYERS,
        case.kv_heads,
        case.head_dim,
        case.block_size,
        case.num_blocks,
    )
    .unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut paged = PagedSeqCache::new(store, &case.table, 0);
    let mut contiguous = ContiguousCache::new(LAYERS);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (h, kvh, d) = (case.heads, case.kv_heads, case.head_dim);
    let mut worst = 0f32;
    let mut pos = 0;
    for &n in &case.steps {
        for layer in 0..LAYERS {
            let q = rng.tensor((h, n, d));
            let k = rng.tensor((kvh, n, d));
            let v = rng.tensor((kvh, n, d));
            let params = AttentionParams {
                scale: case.scale,
                softcap: case.softcap,
                window: case.window,
                start_pos: pos,
            };
            let ours = paged.attend(layer, &q, &k, &v, &params).unwrap();
            let want = contiguous.attend(layer, &q, &k, &v, &params).unwrap();
            assert_eq!(ours.dims(), &[n, h * d]);
            worst = worst.max(max_abs_diff(&ours, &want));
        }
        pos += n;
        assert_eq!(paged.len(), pos);
    }
    worst
}

fn check(name: &str, case: Case) {
    let worst = paged_vs_contiguous(&case);
    println!("{name}: max |Δ| {worst:.2e}");
    assert!(worst <= TOL, "{name}: max |Δ| {worst} > {TOL}");
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
    store.write(0, &[1], 0, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]);
    store.write(1, &[1], 0, &[9.0, 9.0], &[8.0, 8.0]);
    store.copy_block(1, 2).unwrap();
    let l0 = store.layer(0);
    assert_eq!(&l0.k[8..12], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(&l0.v[8..12], &[5.0, 6.0, 7.0, 8.0]);
    let l1 = store.layer(1);
    assert_eq!(&l1.k[8..12], &[9.0, 9.0, 0.0, 0.0]);
    assert_eq!(&l1.v[8..12], &[8.0, 8.0, 0.0, 0.0]);
    // Block 0 is untouched.
    assert!(l0.k[..4].iter().all(|&x| x == 0.0));
    let e = store.copy_block(1, 3).unwrap_err().to_string();
    assert_eq!(e, "KV cache: copy_block(1, 3): the store has 3 blocks");
}

#[test]
fn bytes_per_block() {
    // 2 (k, v) x 2 layers x 4 kv heads x 8 dims x 16 slots x 4 bytes.
    assert_eq!(PagedKvStore::bytes_per_block(2, 4, 8, 16), 8192);
    let store = PagedKvStore::new(2, 4, 8, 16, 3).unwrap();
    let floats: usize = store.k.iter().chain(&store.v).map(Vec::len).sum();
    assert_eq!(floats * 4, 3 * 8192);
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
        "KV cache: the paged cache takes f32 tensors on the CPU; q is F16 on Cpu"
    );
    assert_eq!(
        attend_err(vec![0], 1, 1, DType::F32, at(0)),
        "KV cache: attention starts at position 0 but layer 0 holds 1 tokens"
    );
}
