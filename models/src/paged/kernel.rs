//! The attention kernel of the CPU f32 store: reads a layer's keys and values in place,
//! block by block, with AVX2 and FMA where the CPU has them, spread over candle's thread
//! pool for large calls. The reference path for every other device and dtype is
//! [`super::reference`].

use crate::layers::AttentionParams;

/// One layer of a CPU f32 [`super::PagedKvStore`], as [`paged_attention`] reads it.
#[derive(Clone, Copy)]
pub struct LayerBlocks<'a> {
    /// (num_blocks, kv_heads, block_size, head_dim)
    pub k: &'a [f32],
    /// (num_blocks, kv_heads, block_size, head_dim)
    pub v: &'a [f32],
    pub kv_heads: usize,
    pub head_dim: usize,
    pub block_size: usize,
}

/// Below this many multiply-adds (q·k and p·v together) one thread does the whole call:
/// handing rows to the pool's threads would cost more than it saves.
const PARALLEL_MIN_FMAS: usize = 1 << 16;

/// Causal attention of n queries at positions `params.start_pos..+n` over the keys and
/// values at positions `0..params.start_pos + n`, read from `blocks` through `block_table`.
///
/// q: (heads, n, head_dim), row-major; query head h reads kv head `h / (heads / kv_heads)`.
/// Honours `params.scale`, `params.softcap` and `params.window` as
/// [`crate::layers::attention`] does; the softmax runs in f32 with the maximum subtracted.
/// Returns (n, heads * head_dim), row-major.
///
/// Panics if the shapes disagree, the window is 0, or the table does not cover every
/// position with blocks of the store: callers ([`super::PagedSeqCache`]) check these first.
pub fn paged_attention(
    q: &[f32],
    heads: usize,
    blocks: LayerBlocks<'_>,
    block_table: &[u32],
    params: &AttentionParams,
) -> Vec<f32> {
    attention_with(
        q,
        heads,
        blocks,
        block_table,
        params,
        crate::cpu::has_avx2_fma(),
    )
}

/// [`paged_attention`], with AVX2 on or off (tests run both).
pub(super) fn attention_with(
    q: &[f32],
    heads: usize,
    blocks: LayerBlocks<'_>,
    block_table: &[u32],
    params: &AttentionParams,
    avx2: bool,
) -> Vec<f32> {
    let d = blocks.head_dim;
    assert!(
        heads > 0 && heads.is_multiple_of(blocks.kv_heads) && q.len().is_multiple_of(heads * d),
        "q holds {} floats, not (heads {heads}, n, head_dim {d}) with heads a multiple of \
         kv_heads {}",
        q.len(),
        blocks.kv_heads
    );
    assert_ne!(params.window, Some(0), "a sliding window of 0 sees no key");
    let n = q.len() / (heads * d);
    let len = params.start_pos + n;
    assert!(
        block_table.len() * blocks.block_size >= len,
        "a block table of {} blocks of {} cannot hold {len} positions",
        block_table.len(),
        blocks.block_size
    );
    let kernel = Kernel {
        q,
        n,
        heads,
        rep: heads / blocks.kv_heads,
        blocks,
        table: block_table,
        start: params.start_pos,
        scale: params.scale as f32,
        softcap: params.softcap.map(|c| c as f32),
        window: params.window,
        avx2,
    };
    let mut out = vec![0f32; n * heads * d];
    // Each key is read twice (k and v) by each query of each head; a window caps it.
    let keys = params.window.map_or(len, |w| w.min(len));
    let pool = candle_core::utils::barrier_pool();
    let parallel = heads * n * keys * d * 2 >= PARALLEL_MIN_FMAS && pool.n_workers() > 0;
    // Work items: the query heads of one kv head for one query, split into as many
    // groups as it takes to give every thread work. A group reads each block of keys
    // and values once for all its heads, where head by head read them `rep` times.
    let threads = if parallel { pool.n_workers() + 1 } else { 1 };
    let splits = threads.div_ceil(n * blocks.kv_heads).clamp(1, kernel.rep);
    let per_item = kernel.rep.div_ceil(splits);
    let splits = kernel.rep.div_ceil(per_item);
    let items = n * blocks.kv_heads * splits;
    // Item -> its output rows (i * heads + h, consecutive h of one kv head).
    let rows_of = |item: usize| {
        let (ig, c) = (item / splits, item % splits);
        let first = ig * kernel.rep + c * per_item;
        first..(ig * kernel.rep + kernel.rep).min(first + per_item)
    };
    if parallel {
        // candle's barrier pool (workers spin before parking): a decode step runs one of
        // these per layer, too short to pay a thread wake-up each time.
        let ptr = RowsPtr(out.as_mut_ptr());
        let ptr = &ptr;
        pool.execute_chunked(items, |range| {
            let mut scratch = Scratch::default();
            for item in range {
                let rows = rows_of(item);
                // SAFETY: every item's rows are handed out once, and they are a disjoint
                // run of d-element rows of `out`, which outlives the call.
                let o = unsafe {
                    std::slice::from_raw_parts_mut(ptr.0.add(rows.start * d), rows.len() * d)
                };
                kernel.rows(rows, &mut scratch, o);
            }
        });
    } else {
        let mut scratch = Scratch::default();
        for item in 0..items {
            let rows = rows_of(item);
            kernel.rows(
                rows.clone(),
                &mut scratch,
                &mut out[rows.start * d..rows.end * d],
            );
        }
    }
    out
}

/// The output buffer, shared by the threads that fill its disjoint rows.
struct RowsPtr(*mut f32);

// SAFETY: threads only write rows handed to them alone (see `paged_attention`).
unsafe impl Sync for RowsPtr {}

/// What every output row of one [`paged_attention`] call shares.
struct Kernel<'a> {
    /// (heads, n, d)
    q: &'a [f32],
    n: usize,
    heads: usize,
    /// Query heads per kv head.
    rep: usize,
    blocks: LayerBlocks<'a>,
    table: &'a [u32],
    /// Position of the first query.
    start: usize,
    scale: f32,
    softcap: Option<f32>,
    window: Option<usize>,
    /// The CPU has AVX2 and FMA (checked at run time): rows run in [`Kernel::row_avx2`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    avx2: bool,
}

/// Scratch space of one thread, reused across work items.
#[derive(Default)]
struct Scratch {
    /// Per head of the item: its scores, then its softmax weights.
    scores: Vec<Vec<f32>>,
    /// Per head: the sum of its weights.
    sums: Vec<f32>,
}

impl Kernel<'_> {
    /// Output rows `rows` (i * heads + h for one query i and consecutive heads h of one kv
    /// head), written to `out` (rows.len() * head_dim).
    fn rows(&self, rows: std::ops::Range<usize>, scratch: &mut Scratch, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only where has_avx2_fma() found both features.
            unsafe { self.rows_avx2(rows, scratch, out) };
            return;
        }
        self.rows_with::<false>(rows, scratch, out);
    }

    /// [`Kernel::rows_with`] compiled for AVX2 with fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_avx2(
        &self,
        rows: std::ops::Range<usize>,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) {
        self.rows_with::<true>(rows, scratch, out);
    }

    /// Inlined into each caller, so that it is compiled with the caller's target features;
    /// FMA: use `mul_add`, which only a CPU with FMA does in one instruction. Each block
    /// of keys (and of values) is read once and used by every head of the group while it
    /// is in L1; per head, the operations and their order are those of one head alone.
    #[inline(always)]
    fn rows_with<const FMA: bool>(
        &self,
        rows: std::ops::Range<usize>,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) {
        let d = self.blocks.head_dim;
        let (i, h0) = (rows.start / self.heads, rows.start % self.heads);
        let m = rows.len();
        let g = h0 / self.rep;
        debug_assert!((h0 + m - 1) / self.rep == g, "one kv head per item");
        let q = |k: usize| &self.q[((h0 + k) * self.n + i) * d..][..d];
        let pos = self.start + i;
        let hi = pos + 1;
        let lo = self.window.map_or(0, |w| hi.saturating_sub(w));
        if scratch.scores.len() < m {
            scratch.scores.resize_with(m, Vec::new);
        }
        let scores = &mut scratch.scores[..m];
        scores.iter_mut().for_each(Vec::clear);

        // 1. Scores, scaled and soft-capped as layers::attention does.
        for keys in self.runs(self.blocks.k, g, lo, hi) {
            for (k, scores) in scores.iter_mut().enumerate() {
                let q = q(k);
                #[cfg(target_arch = "x86_64")]
                if FMA && d.is_multiple_of(8) {
                    // SAFETY: FMA is true only in rows_avx2, compiled for AVX2 and FMA and
                    // called where the CPU has both.
                    unsafe { vector::scores(q, keys, self.scale, scores) };
                    continue;
                }
                for key in keys.chunks_exact(d) {
                    scores.push(dot::<FMA>(q, key) * self.scale);
                }
            }
        }

        // 2. Softmax weights, unnormalised, with the maximum subtracted.
        scratch.sums.clear();
        for scores in scores.iter_mut() {
            if let Some(cap) = self.softcap {
                for s in scores.iter_mut() {
                    *s = (*s / cap).tanh() * cap;
                }
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if FMA {
                // SAFETY: as above.
                (done, sum) = unsafe { vector::weights(scores, max) };
            }
            for s in scores[done..].iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            scratch.sums.push(sum);
        }

        // 3. The weighted sum of the values, normalised once at the end.
        out.fill(0.0);
        let mut at = 0;
        for values in self.runs(self.blocks.v, g, lo, hi) {
            let run = values.len() / d;
            for (scores, out) in scores.iter().zip(out.chunks_exact_mut(d)) {
                let weights = &scores[at..at + run];
                #[cfg(target_arch = "x86_64")]
                if FMA && d.is_multiple_of(32) {
                    // SAFETY: as above.
                    unsafe { vector::accumulate(weights, values, out) };
                    continue;
                }
                for (v, &w) in values.chunks_exact(d).zip(weights) {
                    axpy::<FMA>(w, v, out);
                }
            }
            at += run;
        }
        for (out, &sum) in out.chunks_exact_mut(d).zip(&scratch.sums) {
            let inv = 1.0 / sum;
            for o in out.iter_mut() {
                *o *= inv;
            }
        }
    }

    /// The rows of `buf` (keys or values of kv head `g`) for positions lo..hi: one
    /// contiguous run of (slots, head_dim) per block, in position order.
    #[inline(always)]
    fn runs<'b>(&'b self, buf: &'b [f32], g: usize, lo: usize, hi: usize) -> Runs<'b> {
        Runs {
            kernel: self,
            buf,
            g,
            pos: lo,
            hi,
        }
    }
}

/// Iterator of [`Kernel::runs`].
struct Runs<'a> {
    kernel: &'a Kernel<'a>,
    buf: &'a [f32],
    g: usize,
    pos: usize,
    hi: usize,
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a [f32];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [f32]> {
        if self.pos >= self.hi {
            return None;
        }
        let LayerBlocks {
            kv_heads,
            head_dim: d,
            block_size: bs,
            ..
        } = self.kernel.blocks;
        let (b, first) = (self.pos / bs, self.pos % bs);
        let last = bs.min(first + (self.hi - self.pos));
        let base = (self.kernel.table[b] as usize * kv_heads + self.g) * bs * d;
        self.pos += last - first;
        Some(&self.buf[base + first * d..base + last * d])
    }
}

/// AVX2 parts of the row kernel: scores four keys at a time with the query in registers,
/// and the softmax's exponentials eight at a time.
#[cfg(target_arch = "x86_64")]
mod vector {
    use std::arch::x86_64::*;

    /// Appends `q · k * scale` for every key (rows of `keys`, `q.len()` floats each, a
    /// multiple of 8) to `scores`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scores(q: &[f32], keys: &[f32], scale: f32, scores: &mut Vec<f32>) {
        let d = q.len();
        let m = keys.len() / d;
        let lanes = d / 8;
        let load = |x: &[f32], i: usize| {
            // SAFETY: callers pass i + 8 <= x.len().
            unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) }
        };
        let scale4 = _mm_set1_ps(scale);
        let mut j = 0;
        while j + 4 <= m {
            let k = &keys[j * d..(j + 4) * d];
            let mut acc = [_mm256_setzero_ps(); 4];
            for c in 0..lanes {
                let qv = load(q, 8 * c);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(qv, load(k, r * d + 8 * c), *a);
                }
            }
            // Four horizontal sums at once: [s0, s1, s2, s3].
            let s01 = _mm256_hadd_ps(acc[0], acc[1]);
            let s23 = _mm256_hadd_ps(acc[2], acc[3]);
            let s = _mm256_hadd_ps(s01, s23);
            let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            let mut out = [0f32; 4];
            // SAFETY: a 4-float store into a 4-float array.
            unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm_mul_ps(s, scale4)) };
            scores.extend_from_slice(&out);
            j += 4;
        }
        for k in keys[j * d..].chunks_exact(d) {
            let mut acc = _mm256_setzero_ps();
            for c in 0..lanes {
                acc = _mm256_fmadd_ps(load(q, 8 * c), load(k, 8 * c), acc);
            }
            let h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
            let h = _mm_hadd_ps(h, h);
            let h = _mm_hadd_ps(h, h);
            scores.push(_mm_cvtss_f32(h) * scale);
        }
    }

    /// `out += Σ_j weights[j] * values[j]` (rows of `out.len()` floats, a multiple of 32),
    /// four registers of `out` at a time held through all the rows.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn accumulate(weights: &[f32], values: &[f32], out: &mut [f32]) {
        let d = out.len();
        for c in (0..d).step_by(32) {
            // SAFETY (loads and stores): c + 32 <= d, and every row of `values` has d floats.
            let o = unsafe { out.as_mut_ptr().add(c) };
            let mut acc: [__m256; 4] =
                std::array::from_fn(|i| unsafe { _mm256_loadu_ps(o.add(8 * i)) });
            for (j, &w) in weights.iter().enumerate() {
                let wv = _mm256_set1_ps(w);
                let v = unsafe { values.as_ptr().add(j * d + c) };
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(wv, unsafe { _mm256_loadu_ps(v.add(8 * i)) }, *a);
                }
            }
            for (i, a) in acc.iter().enumerate() {
                unsafe { _mm256_storeu_ps(o.add(8 * i), *a) };
            }
        }
    }

    /// Replaces the first multiple of 8 scores by `e^(s - max)`; returns how many it did
    /// and their sum.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weights(scores: &mut [f32], max: f32) -> (usize, f32) {
        let n = scores.len() / 8 * 8;
        let m = _mm256_set1_ps(max);
        let mut sum = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            // SAFETY: i + 8 <= n <= scores.len().
            let p = unsafe { scores.as_mut_ptr().add(i) };
            // SAFETY: as above.
            let w = crate::cpu::avx2::exp(_mm256_sub_ps(unsafe { _mm256_loadu_ps(p) }, m));
            sum = _mm256_add_ps(sum, w);
            // SAFETY: as above.
            unsafe { _mm256_storeu_ps(p, w) };
        }
        let h = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
        let h = _mm_hadd_ps(h, h);
        let h = _mm_hadd_ps(h, h);
        (n, _mm_cvtss_f32(h))
    }
}

/// Lanes of independent accumulators in [`dot`]: two AVX registers (or four SSE ones),
/// so that the adds do not wait on each other.
const LANES: usize = 16;

/// x * y + acc, fused where the caller is compiled for FMA.
#[inline(always)]
fn madd<const FMA: bool>(x: f32, y: f32, acc: f32) -> f32 {
    if FMA {
        x.mul_add(y, acc)
    } else {
        x * y + acc
    }
}

/// a · b, summed in LANES independent lanes so that the compiler vectorizes it (a plain
/// iterator sum is a serial chain, which it may not reorder).
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0f32;
    for (&x, &y) in ac.remainder().iter().zip(bc.remainder()) {
        tail = madd::<FMA>(x, y, tail);
    }
    let mut acc = [0f32; LANES];
    for (x, y) in ac.zip(bc) {
        let x: &[f32; LANES] = x.try_into().expect("chunks_exact yields LANES floats");
        let y: &[f32; LANES] = y.try_into().expect("chunks_exact yields LANES floats");
        for l in 0..LANES {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// out += w * x
#[inline(always)]
fn axpy<const FMA: bool>(w: f32, x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = madd::<FMA>(w, x, *o);
    }
}
