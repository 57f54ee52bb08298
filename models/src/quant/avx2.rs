//! AVX2 + FMA + F16C versions of activation quantization and of the dot products, for
//! x86-64 machines that have them (checked at run time by the caller).
//!
//! Written after ggml's x86 kernels (ggml-org/llama.cpp, commit 47b0c4b5488f,
//! ggml/src/ggml-cpu/arch/x86/quants.c): `quantize_row_q8_0`, `quantize_row_q8_1`,
//! `ggml_vec_dot_q4_1_q8_1`, `ggml_vec_dot_q5_0_q8_0`, `ggml_vec_dot_q5_1_q8_1`,
//! `ggml_vec_dot_q8_0_q8_0` and their
//! helpers `bytes_from_nibbles_32`, `bytes_from_bits_32`, `hsum_float_8`; the K-quants'
//! layouts after `dequantize_row_q4_K` / `q6_K` (see [`super::blocks`]). Two changes: a
//! weight row is multiplied with a tile of activation rows at once, each pair with its own
//! accumulators, so that prefill unpacks every weight block once per tile of activation
//! rows; and each pair accumulates its blocks in four independent chains where ggml has
//! one. Per pair the operations and their order do not depend on the tile, so neither
//! does a result. The K-quants
//! ([`dot_tile_k`]) apply their sub-blocks' integer scales in integers, as ggml's
//! `ggml_vec_dot_q4_K_q8_K` / `q6_K_q8_K` do, but against activations quantized per 32
//! values (see [`super::blocks`]).

use super::blocks::{
    k4_scales_mins, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8,
    BlockQ8_0, BlockQ8x8, SuperBlock, WeightBlock, CHAINS, QK,
};
use super::tiles::{BlockQ8Sum, TileQ4K, TileQ4_0, TileQ6K, TileQ8_0, WeightTile, TILE};
use std::arch::x86_64::*;

/// A weight row against up to four activation rows, per format (see [`dot_tile`] and
/// [`dot_tile_k`]).
pub trait Avx2Dot: WeightBlock {
    /// `out[r] = w · a[r]`.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and
    /// `out` has `R` elements.
    unsafe fn dot_tile<const R: usize>(w: &[Self], a: [&[Self::Act]; R], out: &mut [f32]);
}

/// The unpacking half of a dot product, per format of one block of 32 values.
pub trait Avx2Block: WeightBlock<Act = BlockQ8> {
    /// The block's 32 values as bytes (unsigned for formats with a min, signed for the
    /// others), its scale in every lane and `m` (0 without a min).
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C.
    unsafe fn unpack(&self) -> (__m256i, __m256, f32);
}

/// The unpacking half of a K-quant dot product.
pub trait Avx2SuperBlock: SuperBlock {
    /// Calls `f(j, q, sc)` for every sub-block `j` in order: `q` its 32 values as
    /// unsigned bytes (`value + OFFSET`), `sc` its integer scales as 16-bit lanes (0..8
    /// for values 0..16, 8..16 for values 16..32); then returns the super-block's `d`, its
    /// mins in f32 lanes 0..8 (zeros without mins) and, where `OFFSET` is not 0, the
    /// sub-blocks' two scales each as 16-bit lanes `2j` and `2j + 1`: what
    /// [`SuperBlock::int_scales`] gives.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C.
    unsafe fn for_each_sub(&self, f: impl FnMut(usize, __m256i, __m256i))
        -> (f32, __m256, __m256i);
}

macro_rules! one_block_of_32 {
    ($($t:ty),*) => {$(
        impl Avx2Dot for $t {
            #[inline]
            unsafe fn dot_tile<const R: usize>(w: &[Self], a: [&[BlockQ8]; R], out: &mut [f32]) {
                // SAFETY: passed on from the caller.
                unsafe { dot_tile::<Self, R>(w, a, out) }
            }
        }
    )*};
}

one_block_of_32!(BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0);

macro_rules! super_block {
    ($($t:ty),*) => {$(
        impl Avx2Dot for $t {
            #[inline]
            unsafe fn dot_tile<const R: usize>(w: &[Self], a: [&[BlockQ8x8]; R], out: &mut [f32]) {
                // SAFETY: passed on from the caller.
                unsafe { dot_tile_k::<Self, R>(w, a, out) }
            }
        }
    )*};
}

super_block!(BlockQ4K, BlockQ6K);

/// `d` and `m`, two f16 numbers side by side, widened together.
#[target_feature(enable = "avx2,f16c")]
fn scales_f16(d: [u8; 2], m: [u8; 2]) -> (f32, f32) {
    let both = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes([
        d[0], d[1], m[0], m[1],
    ])));
    (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)))
}

/// Low nibbles to bytes 0..16, high nibbles to bytes 16..32.
#[target_feature(enable = "avx2")]
fn nibbles(qs: &[u8; QK / 2]) -> __m256i {
    // SAFETY: an unaligned 16-byte load from a 16-byte array.
    let lo = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    let both = _mm256_set_m128i(_mm_srli_epi16(lo, 4), lo);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Byte `j` is 0xFF where bit `j` of `qh` is set, else 0.
#[target_feature(enable = "avx2")]
fn bits(qh: [u8; 4]) -> __m256i {
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(i32::from_le_bytes(qh)),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    // Every bit but bit j of each byte: the byte is all ones iff bit j was set.
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1))
}

impl Avx2Block for BlockQ4_0 {
    #[inline(always)]
    unsafe fn unpack(&self) -> (__m256i, __m256, f32) {
        let (d, _) = scales_f16(self.d, [0, 0]);
        let q = _mm256_sub_epi8(nibbles(&self.qs), _mm256_set1_epi8(8));
        (q, _mm256_set1_ps(d), 0.0)
    }
}

impl Avx2Block for BlockQ4_1 {
    #[inline(always)]
    unsafe fn unpack(&self) -> (__m256i, __m256, f32) {
        let (d, m) = scales_f16(self.d, self.m);
        (nibbles(&self.qs), _mm256_set1_ps(d), m)
    }
}

impl Avx2Block for BlockQ5_0 {
    #[inline(always)]
    unsafe fn unpack(&self) -> (__m256i, __m256, f32) {
        let (d, _) = scales_f16(self.d, [0, 0]);
        // Where bit 4 is clear the value is nibble - 16: set the byte's high nibble.
        let high = _mm256_andnot_si256(bits(self.qh), _mm256_set1_epi8(0xF0u8 as i8));
        (
            _mm256_or_si256(nibbles(&self.qs), high),
            _mm256_set1_ps(d),
            0.0,
        )
    }
}

impl Avx2Block for BlockQ5_1 {
    #[inline(always)]
    unsafe fn unpack(&self) -> (__m256i, __m256, f32) {
        let (d, m) = scales_f16(self.d, self.m);
        let high = _mm256_and_si256(bits(self.qh), _mm256_set1_epi8(0x10));
        (
            _mm256_or_si256(nibbles(&self.qs), high),
            _mm256_set1_ps(d),
            m,
        )
    }
}

impl Avx2Block for BlockQ8_0 {
    #[inline(always)]
    unsafe fn unpack(&self) -> (__m256i, __m256, f32) {
        let (d, _) = scales_f16(self.d, [0, 0]);
        // SAFETY: an unaligned 32-byte load from a 32-byte array.
        (
            unsafe { _mm256_loadu_si256(self.qs.as_ptr().cast()) },
            _mm256_set1_ps(d),
            0.0,
        )
    }
}

impl Avx2SuperBlock for BlockQ4K {
    #[inline(always)]
    unsafe fn for_each_sub(
        &self,
        mut f: impl FnMut(usize, __m256i, __m256i),
    ) -> (f32, __m256, __m256i) {
        let (d, dmin) = scales_f16(self.d, self.dmin);
        let (sc, m) = k4_scales_mins(&self.scales);
        let low = _mm256_set1_epi8(0x0F);
        for pair in 0..4 {
            // SAFETY: an unaligned 32-byte load from bytes 32 * pair.. of a 128-byte array;
            // sub-blocks 2 * pair and 2 * pair + 1 are its low and high nibbles.
            let q = unsafe { _mm256_loadu_si256(self.qs.as_ptr().add(32 * pair).cast()) };
            for (j, q) in [(2 * pair, q), (2 * pair + 1, _mm256_srli_epi16(q, 4))] {
                f(j, _mm256_and_si256(q, low), _mm256_set1_epi16(sc[j] as i16));
            }
        }
        // SAFETY: an unaligned 8-byte load from an 8-byte array.
        let m = unsafe { _mm_loadl_epi64(m.as_ptr().cast()) };
        let m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m));
        (
            d,
            _mm256_mul_ps(m, _mm256_set1_ps(-dmin)),
            _mm256_setzero_si256(),
        )
    }
}

impl Avx2SuperBlock for BlockQ6K {
    #[inline(always)]
    unsafe fn for_each_sub(
        &self,
        mut f: impl FnMut(usize, __m256i, __m256i),
    ) -> (f32, __m256, __m256i) {
        let (d, _) = scales_f16(self.d, [0, 0]);
        // SAFETY: an unaligned 16-byte load from a 16-byte array. Sub-block j's scales
        // are bytes 2j and 2j + 1 (see q6k_place).
        let sc = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(self.scales.as_ptr().cast()) });
        // Within each 128-bit half: its first 16-bit lane, or its second, everywhere.
        let first_second = _mm256_setr_epi8(
            0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, //
            2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
        );
        for half in 0..2 {
            // SAFETY: unaligned 32-byte loads from bytes 64 * half.. and 64 * half + 32..
            // of the 128-byte `ql` and 32 * half.. of the 64-byte `qh`: every byte the
            // half's four sub-blocks take (see q6k_place).
            let (ql, qh) = unsafe {
                (
                    [
                        _mm256_loadu_si256(self.ql.as_ptr().add(64 * half).cast()),
                        _mm256_loadu_si256(self.ql.as_ptr().add(64 * half + 32).cast()),
                    ],
                    _mm256_loadu_si256(self.qh.as_ptr().add(32 * half).cast()),
                )
            };
            for k in 0..4 {
                let lo = if k >= 2 {
                    _mm256_srli_epi16(ql[k % 2], 4)
                } else {
                    ql[k % 2]
                };
                let nib = _mm256_and_si256(lo, _mm256_set1_epi8(0x0F));
                let two = _mm256_and_si256(
                    _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)),
                    _mm256_set1_epi8(0x03),
                );
                let q = _mm256_or_si256(nib, _mm256_slli_epi16(two, 4));
                let j = 4 * half + k;
                // Scales 2j and 2j + 1 in every 32-bit lane, then spread.
                let pair = _mm256_permutevar8x32_epi32(sc, _mm256_set1_epi32(j as i32));
                f(j, q, _mm256_shuffle_epi8(pair, first_second));
            }
        }
        (d, _mm256_setzero_ps(), sc)
    }
}

/// ggml's `hsum_float_8`.
#[target_feature(enable = "avx2")]
fn hsum_f32(x: __m256) -> f32 {
    let r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// One weight row against `R` activation rows: `out[r] = w · a[r]`, each pair with its own
/// [`CHAINS`] accumulators.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and `out`
/// has `R` elements.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tile<W: Avx2Block, const R: usize>(w: &[W], a: [&[BlockQ8]; R], out: &mut [f32]) {
    debug_assert!(a.iter().all(|a| a.len() == w.len()));
    debug_assert_eq!(out.len(), R);
    let ones = _mm256_set1_epi16(1);
    // Block b accumulates into chain b % CHAINS: independent fused multiply-adds, where
    // one chain would wait on each one's latency (decode ran 1.8x slower).
    let mut acc = [[_mm256_setzero_ps(); R]; CHAINS];
    let mut summs = [0f32; R];
    for (b, wb) in w.iter().enumerate() {
        // SAFETY: the caller guarantees the CPU features.
        let (qx, dw, mw) = unsafe { wb.unpack() };
        // For signed values, multiply |x| by y with x's sign (maddubs wants an unsigned
        // first operand); |x| once per block.
        let ax = if W::HAS_MIN {
            qx
        } else {
            _mm256_sign_epi8(qx, qx)
        };
        for r in 0..R {
            // SAFETY: b < w.len() == a[r].len().
            let ab = unsafe { a[r].get_unchecked(b) };
            if W::HAS_MIN {
                summs[r] += mw * ab.s;
            }
            // SAFETY: an unaligned 32-byte load from a 32-byte array.
            let qy = unsafe { _mm256_loadu_si256(ab.qs.as_ptr().cast()) };
            let qy = if W::HAS_MIN {
                qy
            } else {
                _mm256_sign_epi8(qy, qx)
            };
            let pairs = _mm256_maddubs_epi16(ax, qy);
            let q = _mm256_cvtepi32_ps(_mm256_madd_epi16(ones, pairs));
            let acc = &mut acc[b % CHAINS][r];
            *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ab.d)), q, *acc);
        }
    }
    for r in 0..R {
        let (c01, c23) = (
            _mm256_add_ps(acc[0][r], acc[1][r]),
            _mm256_add_ps(acc[2][r], acc[3][r]),
        );
        out[r] = hsum_f32(_mm256_add_ps(c01, c23)) + summs[r];
    }
}

/// One K-quant weight row against `R` activation rows (see [`super::blocks::dot_k`], which
/// gives the same result in scalar code): per sub-block, `maddubs` of the unsigned values,
/// `madd` with the integer scales, one conversion to f32 and a fused multiply-add with the
/// activation block's scale; per super-block, the offset times the scaled half-block
/// activation sums (Q6_K), its `d` and (with mins) the mins times the eight activation
/// sums, each a few operations for all eight lanes.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and `out`
/// has `R` elements.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tile_k<W: Avx2SuperBlock, const R: usize>(
    w: &[W],
    a: [&[BlockQ8x8]; R],
    out: &mut [f32],
) {
    debug_assert!(a.iter().all(|a| a.len() == w.len()));
    debug_assert_eq!(out.len(), R);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, wb) in w.iter().enumerate() {
        // SAFETY: b < w.len() == a[r].len().
        let ab: [&BlockQ8x8; R] = std::array::from_fn(|r| unsafe { a[r].get_unchecked(b) });
        // Even and odd sub-blocks accumulate apart: two dependency chains per row.
        let mut sub = [[_mm256_setzero_ps(); R]; 2];
        // SAFETY: the caller guarantees the CPU features.
        let (d, mins, sc_all) = unsafe {
            wb.for_each_sub(|j, qx, sc| {
                for r in 0..R {
                    // (In the unsafe block above.) SAFETY: j < 8, the sub-blocks of a
                    // super-block; an unaligned 32-byte load from a 32-byte array.
                    let (qy, da) = (
                        _mm256_loadu_si256(ab[r].qs.get_unchecked(j).as_ptr().cast()),
                        _mm256_broadcast_ss(ab[r].d.get_unchecked(j)),
                    );
                    let isum = _mm256_madd_epi16(_mm256_maddubs_epi16(qx, qy), sc);
                    let sub = &mut sub[j % 2][r];
                    *sub = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), da, *sub);
                }
            })
        };
        let d = _mm256_set1_ps(d);
        for r in 0..R {
            let mut s = _mm256_add_ps(sub[0][r], sub[1][r]);
            if W::OFFSET != 0 {
                // SAFETY: unaligned loads of sixteen i16 and eight f32 from arrays of as many.
                let (h, da) = unsafe {
                    (
                        _mm256_loadu_si256(ab[r].h.as_ptr().cast()),
                        _mm256_loadu_ps(ab[r].d.as_ptr()),
                    )
                };
                let c = _mm256_cvtepi32_ps(_mm256_madd_epi16(sc_all, h));
                let off = _mm256_set1_ps(-W::OFFSET as f32);
                s = _mm256_fmadd_ps(_mm256_mul_ps(c, da), off, s);
            }
            acc[r] = _mm256_fmadd_ps(d, s, acc[r]);
            if W::HAS_MIN {
                // SAFETY: an unaligned 8-float load from an 8-float array.
                let s = unsafe { _mm256_loadu_ps(ab[r].s.as_ptr()) };
                acc[r] = _mm256_fmadd_ps(mins, s, acc[r]);
            }
        }
    }
    for r in 0..R {
        out[r] = hsum_f32(acc[r]);
    }
}

/// A tile row (eight weight rows) against up to four activation rows.
pub trait Avx2Tile: WeightTile {
    /// `out[r][i] = w_i · a[r]` for the tile row's eight weight rows `i`.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and
    /// `out` has `R` elements.
    unsafe fn dot_tiles<const R: usize>(w: &[Self], a: [&[Self::Act]; R], out: &mut [[f32; TILE]]);
}

impl Avx2Tile for TileQ8_0 {
    #[inline]
    unsafe fn dot_tiles<const R: usize>(w: &[Self], a: [&[BlockQ8]; R], out: &mut [[f32; TILE]]) {
        // SAFETY: passed on from the caller.
        unsafe { dot_tiles_q8_0::<R>(w, a, out) }
    }
}

impl Avx2Tile for TileQ6K {
    #[inline]
    unsafe fn dot_tiles<const R: usize>(w: &[Self], a: [&[BlockQ8x8]; R], out: &mut [[f32; TILE]]) {
        // SAFETY: passed on from the caller.
        unsafe { dot_tiles_q6k::<R>(w, a, out) }
    }
}

impl Avx2Tile for TileQ4K {
    #[inline]
    unsafe fn dot_tiles<const R: usize>(w: &[Self], a: [&[BlockQ8x8]; R], out: &mut [[f32; TILE]]) {
        // SAFETY: passed on from the caller.
        unsafe { dot_tiles_q4k::<R>(w, a, out) }
    }
}

impl Avx2Tile for TileQ4_0 {
    #[inline]
    unsafe fn dot_tiles<const R: usize>(
        w: &[Self],
        a: [&[BlockQ8Sum]; R],
        out: &mut [[f32; TILE]],
    ) {
        // SAFETY: passed on from the caller.
        unsafe { dot_tiles_q4_0::<R>(w, a, out) }
    }
}

/// Eight Q4_0 weight rows, interleaved ([`TileQ4_0`]), against `R` activation rows (see
/// [`WeightTile::dot`], the same in scalar code). Lane `i` of every vector is weight row
/// `i`: each 32-byte load holds four bytes of each row, whose low and high nibbles meet
/// four activation bytes broadcast to every lane. Per block and activation row, eight
/// `maddubs` products add up in 16 bits (at most 8 * 2 * 15 * 127 = 30,480), one `madd`
/// widens them, 8 times the activations' sum comes off, and one fused multiply-add
/// scales the eight rows by their eight scales at once.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and `out`
/// has `R` elements.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tiles_q4_0<const R: usize>(
    w: &[TileQ4_0],
    a: [&[BlockQ8Sum]; R],
    out: &mut [[f32; TILE]],
) {
    debug_assert!(a.iter().all(|a| a.len() == w.len()));
    debug_assert_eq!(out.len(), R);
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, t) in w.iter().enumerate() {
        // SAFETY: b < w.len() == a[r].len().
        let ab: [&BlockQ8Sum; R] = std::array::from_fn(|r| unsafe { a[r].get_unchecked(b) });
        // SAFETY: an unaligned 16-byte load from eight 2-byte arrays.
        let dw = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(t.d.as_ptr().cast()) });
        let mut sums = [_mm256_setzero_si256(); R];
        for g in 0..4 {
            // SAFETY: an unaligned 32-byte load from bytes 32g..32g + 32 of 128.
            let v = unsafe { _mm256_loadu_si256(t.qs.as_ptr().add(32 * g).cast()) };
            let lo = _mm256_and_si256(v, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            for r in 0..R {
                // SAFETY: unaligned 4-byte reads at 4g and 16 + 4g of a 32-byte array.
                let (alo, ahi) = unsafe {
                    let qs = ab[r].qs.as_ptr();
                    (
                        _mm256_set1_epi32(qs.add(4 * g).cast::<i32>().read_unaligned()),
                        _mm256_set1_epi32(qs.add(16 + 4 * g).cast::<i32>().read_unaligned()),
                    )
                };
                let s = _mm256_add_epi16(sums[r], _mm256_maddubs_epi16(lo, alo));
                sums[r] = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi, ahi));
            }
        }
        for r in 0..R {
            let i = _mm256_sub_epi32(
                _mm256_madd_epi16(sums[r], ones),
                _mm256_set1_epi32(8 * ab[r].sum),
            );
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(ab[r].d));
            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(i), acc[r]);
        }
    }
    for r in 0..R {
        // SAFETY: an unaligned 8-float store into an 8-float array.
        unsafe { _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r]) };
    }
}

/// Eight Q4_K weight rows, interleaved ([`TileQ4K`]), against `R` activation rows (see
/// [`WeightTile::dot`], the same in scalar code). As [`dot_tiles_q4_0`], lane `i` is
/// weight row `i`; per sub-block, eight `maddubs` products add up in 16 bits, one `madd`
/// with the eight rows' integer scales (each twice, one per 16-bit half of its lane)
/// widens and scales them, and a fused multiply-add with the activation block's `d`
/// accumulates; per super-block, the rows' `d`, and their mins times the activation sums
/// times `-dmin`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and `out`
/// has `R` elements.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tiles_q4k<const R: usize>(
    w: &[TileQ4K],
    a: [&[BlockQ8x8]; R],
    out: &mut [[f32; TILE]],
) {
    debug_assert!(a.iter().all(|a| a.len() == w.len()));
    debug_assert_eq!(out.len(), R);
    let low = _mm256_set1_epi8(0x0F);
    // Byte r of eight, zero-extended, in both 16-bit halves of 32-bit lane r.
    let pairs = _mm256_setr_epi8(
        0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1, //
        4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1,
    );
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, t) in w.iter().enumerate() {
        // SAFETY: b < w.len() == a[r].len().
        let ab: [&BlockQ8x8; R] = std::array::from_fn(|r| unsafe { a[r].get_unchecked(b) });
        let mut s = [_mm256_setzero_ps(); R];
        for p in 0..4 {
            // Sub-blocks 2p and 2p + 1, every row.
            let mut sums = [[_mm256_setzero_si256(); R]; 2];
            for g in 0..8 {
                // SAFETY: an unaligned 32-byte load from bytes 256p + 32g.. of 1024.
                let v = unsafe { _mm256_loadu_si256(t.qs.as_ptr().add(256 * p + 32 * g).cast()) };
                let lo = _mm256_and_si256(v, low);
                let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                for r in 0..R {
                    // SAFETY: unaligned 4-byte reads at 4g of two 32-byte arrays.
                    let (a0, a1) = unsafe {
                        let qs = &ab[r].qs;
                        let at =
                            |j: usize| qs[j].as_ptr().add(4 * g).cast::<i32>().read_unaligned();
                        (
                            _mm256_set1_epi32(at(2 * p)),
                            _mm256_set1_epi32(at(2 * p + 1)),
                        )
                    };
                    sums[0][r] = _mm256_add_epi16(sums[0][r], _mm256_maddubs_epi16(lo, a0));
                    sums[1][r] = _mm256_add_epi16(sums[1][r], _mm256_maddubs_epi16(hi, a1));
                }
            }
            for (h, sums) in sums.iter().enumerate() {
                let j = 2 * p + h;
                // SAFETY: an unaligned 8-byte read at 8j of a 64-byte array.
                let sc = unsafe { t.scales.as_ptr().add(8 * j).cast::<i64>().read_unaligned() };
                let sc = _mm256_shuffle_epi8(_mm256_set1_epi64x(sc), pairs);
                for r in 0..R {
                    let i = _mm256_madd_epi16(sums[r], sc);
                    let da = _mm256_set1_ps(ab[r].d[j]);
                    s[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), da, s[r]);
                }
            }
        }
        // SAFETY: unaligned 16-byte loads from eight 2-byte arrays.
        let (d, neg_dmin) = unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(t.d.as_ptr().cast())),
                _mm256_xor_ps(
                    _mm256_cvtph_ps(_mm_loadu_si128(t.dmin.as_ptr().cast())),
                    _mm256_set1_ps(-0.0),
                ),
            )
        };
        let mut m = [_mm256_setzero_ps(); R];
        for j in 0..8 {
            // SAFETY: an unaligned 8-byte load at 8j of a 64-byte array.
            let mins = unsafe { _mm_loadl_epi64(t.mins.as_ptr().add(8 * j).cast()) };
            let mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mins));
            for r in 0..R {
                m[r] = _mm256_fmadd_ps(mins, _mm256_set1_ps(ab[r].s[j]), m[r]);
            }
        }
        for r in 0..R {
            acc[r] = _mm256_fmadd_ps(d, s[r], acc[r]);
            acc[r] = _mm256_fmadd_ps(neg_dmin, m[r], acc[r]);
        }
    }
    for r in 0..R {
        // SAFETY: an unaligned 8-float store into an 8-float array.
        unsafe { _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r]) };
    }
}

/// Eight Q6_K weight rows, interleaved ([`TileQ6K`]), against `R` activation rows (see
/// [`WeightTile::dot`], the same in scalar code). Lane `i` is weight row `i`, and the
/// tile is read front to back, a pair of sub-blocks at a time. Values are unsigned
/// (`q + 32`, up to 63), so only two `maddubs` products fit in 16 bits (2 * 2 * 63 * 127
/// = 32,004): per eight values of a sub-block they are widened by a `madd` with the
/// half's eight scales; per sub-block, 32 times the scaled half sums of the activations
/// comes off (one more `madd` with both scales of each row), then one conversion and a
/// fused multiply-add with the activation block's `d`; per super-block, the rows' `d`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and `out`
/// has `R` elements.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tiles_q6k<const R: usize>(
    w: &[TileQ6K],
    a: [&[BlockQ8x8]; R],
    out: &mut [[f32; TILE]],
) {
    debug_assert!(a.iter().all(|a| a.len() == w.len()));
    debug_assert_eq!(out.len(), R);
    let low = _mm256_set1_epi8(0x0F);
    let two_bits = _mm256_set1_epi8(0x30);
    // The first (second) 16-bit half of every 32-bit lane, twice.
    let first = _mm256_setr_epi8(
        0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, //
        0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13,
    );
    let second = _mm256_setr_epi8(
        2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15, //
        2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15,
    );
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, t) in w.iter().enumerate() {
        // SAFETY: b < w.len() == a[r].len().
        let ab: [&BlockQ8x8; R] = std::array::from_fn(|r| unsafe { a[r].get_unchecked(b) });
        let mut s = [_mm256_setzero_ps(); R];
        for p in 0..4 {
            // Lane r: row r's two scales of sub-block 2p + e, as 16-bit numbers; then
            // each of them twice.
            // SAFETY: unaligned 16-byte loads at 32p and 32p + 16 of a 128-byte array.
            let both: [__m256i; 2] = std::array::from_fn(|e| {
                _mm256_cvtepi8_epi16(unsafe {
                    _mm_loadu_si128(t.scales.as_ptr().add(16 * (2 * p + e)).cast())
                })
            });
            let halves = both.map(|b| {
                [
                    _mm256_shuffle_epi8(b, first),
                    _mm256_shuffle_epi8(b, second),
                ]
            });
            let mut isum = [[_mm256_setzero_si256(); R]; 2];
            for c in 0..4 {
                // SAFETY: unaligned 32-byte loads at 384p + 96c + 0, 32 and 64 of 1536.
                let (l0, l1, h) = unsafe {
                    let at = t.qs.as_ptr().add(384 * p + 96 * c);
                    (
                        _mm256_loadu_si256(at.cast()),
                        _mm256_loadu_si256(at.add(32).cast()),
                        _mm256_loadu_si256(at.add(64).cast()),
                    )
                };
                // q[e][o]: values 8c + 4o..+4 of sub-block 2p + e; the high bits of
                // (o, e) are bits 4o + 2e, moved to bits 4 and 5.
                let hi = |x: __m256i| _mm256_and_si256(x, two_bits);
                let lo = |x: __m256i| _mm256_and_si256(x, low);
                let q = [
                    [
                        _mm256_or_si256(lo(l0), hi(_mm256_slli_epi16(h, 4))),
                        _mm256_or_si256(lo(l1), hi(h)),
                    ],
                    [
                        _mm256_or_si256(lo(_mm256_srli_epi16(l0, 4)), hi(_mm256_slli_epi16(h, 2))),
                        _mm256_or_si256(lo(_mm256_srli_epi16(l1, 4)), hi(_mm256_srli_epi16(h, 2))),
                    ],
                ];
                for r in 0..R {
                    for e in 0..2 {
                        // SAFETY: unaligned 4-byte reads at 8c and 8c + 4 of a 32-byte
                        // array.
                        let (a0, a1) = unsafe {
                            let qs = ab[r].qs[2 * p + e].as_ptr().add(8 * c);
                            (
                                _mm256_set1_epi32(qs.cast::<i32>().read_unaligned()),
                                _mm256_set1_epi32(qs.add(4).cast::<i32>().read_unaligned()),
                            )
                        };
                        let pair = _mm256_add_epi16(
                            _mm256_maddubs_epi16(q[e][0], a0),
                            _mm256_maddubs_epi16(q[e][1], a1),
                        );
                        let sc = halves[e][c / 2];
                        isum[e][r] = _mm256_add_epi32(isum[e][r], _mm256_madd_epi16(pair, sc));
                    }
                }
            }
            for e in 0..2 {
                let j = 2 * p + e;
                for r in 0..R {
                    // SAFETY: an unaligned read of two i16 at 2j of sixteen.
                    let h = unsafe { ab[r].h.as_ptr().add(2 * j).cast::<i32>().read_unaligned() };
                    let off = _mm256_madd_epi16(both[e], _mm256_set1_epi32(h));
                    let i = _mm256_sub_epi32(isum[e][r], _mm256_slli_epi32(off, 5));
                    let da = _mm256_set1_ps(ab[r].d[j]);
                    s[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), da, s[r]);
                }
            }
        }
        // SAFETY: an unaligned 16-byte load from eight 2-byte arrays.
        let d = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(t.d.as_ptr().cast()) });
        for r in 0..R {
            acc[r] = _mm256_fmadd_ps(d, s[r], acc[r]);
        }
    }
    for r in 0..R {
        // SAFETY: an unaligned 8-float store into an 8-float array.
        unsafe { _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r]) };
    }
}

/// Eight Q8_0 weight rows, interleaved ([`TileQ8_0`]), against `R` activation rows (see
/// [`WeightTile::dot`], the same in scalar code). Lane `i` is weight row `i`. Both
/// operands are signed, so `maddubs` takes the weights' magnitudes and the activations
/// with the weights' signs (ggml's way); a product of two pairs can reach 2 * 128 * 127,
/// so each is widened by a `madd` before the next is added.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; every `a[r]` has `w.len()` blocks, and `out`
/// has `R` elements.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tiles_q8_0<const R: usize>(
    w: &[TileQ8_0],
    a: [&[BlockQ8]; R],
    out: &mut [[f32; TILE]],
) {
    debug_assert!(a.iter().all(|a| a.len() == w.len()));
    debug_assert_eq!(out.len(), R);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, t) in w.iter().enumerate() {
        // SAFETY: b < w.len() == a[r].len().
        let ab: [&BlockQ8; R] = std::array::from_fn(|r| unsafe { a[r].get_unchecked(b) });
        let mut sums = [_mm256_setzero_si256(); R];
        for g in 0..8 {
            // SAFETY: an unaligned 32-byte load from bytes 32g..32g + 32 of 256.
            let v = unsafe { _mm256_loadu_si256(t.qs.as_ptr().add(32 * g).cast()) };
            let magnitude = _mm256_sign_epi8(v, v);
            for r in 0..R {
                // SAFETY: an unaligned 4-byte read at 4g of a 32-byte array.
                let x = unsafe { ab[r].qs.as_ptr().add(4 * g).cast::<i32>().read_unaligned() };
                let signed = _mm256_sign_epi8(_mm256_set1_epi32(x), v);
                let pairs = _mm256_maddubs_epi16(magnitude, signed);
                sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(pairs, ones));
            }
        }
        // SAFETY: an unaligned 16-byte load from eight 2-byte arrays.
        let dw = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(t.d.as_ptr().cast()) });
        for r in 0..R {
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(ab[r].d));
            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums[r]), acc[r]);
        }
    }
    for r in 0..R {
        // SAFETY: an unaligned 8-float store into an 8-float array.
        unsafe { _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r]) };
    }
}

/// ggml's AVX2 `quantize_row_q8_0` (`with_sum` false) or `quantize_row_q8_1` (true).
///
/// # Safety
/// The CPU must support AVX2 and F16C; `xs.len() == out.len() * 32`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row(xs: &[f32], out: &mut [BlockQ8], with_sum: bool) {
    debug_assert_eq!(xs.len(), out.len() * QK);
    let sign = _mm256_set1_ps(-0.0);
    for (x, y) in xs.chunks_exact(QK).zip(out.iter_mut()) {
        // SAFETY: four unaligned 8-float loads from a 32-float chunk.
        let v: [__m256; 4] =
            std::array::from_fn(|i| unsafe { _mm256_loadu_ps(x[8 * i..].as_ptr()) });
        let mut amax = _mm256_andnot_ps(sign, v[0]);
        for vi in &v[1..] {
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, *vi));
        }
        let m4 = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
        let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));

        let d = amax / 127.0;
        let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
        let i = v.map(|vi| {
            let scaled = _mm256_mul_ps(vi, id);
            _mm256_cvtps_epi32(_mm256_round_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(scaled))
        });
        let s01 = _mm256_packs_epi32(i[0], i[1]);
        let s23 = _mm256_packs_epi32(i[2], i[3]);
        // The packs work per 128-bit half; put the 4-byte groups back in order.
        let bytes = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(s01, s23),
            _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
        );
        // SAFETY: an unaligned 32-byte store into a 32-byte array.
        unsafe { _mm256_storeu_si256(y.qs.as_mut_ptr().cast(), bytes) };
        y.d = f16_round(d);
        y.s = if with_sum {
            let sum = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
            let sum = _mm_add_epi32(
                _mm256_castsi256_si128(sum),
                _mm256_extracti128_si256(sum, 1),
            );
            let sum = _mm_add_epi32(sum, _mm_unpackhi_epi64(sum, sum));
            let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01));
            f16_round(d * _mm_cvtsi128_si32(sum) as f32)
        } else {
            0.0
        };
    }
}

/// Rounds to f16 and back with F16C, round-to-nearest-even like ggml's
/// `GGML_CPU_FP32_TO_FP16`.
#[target_feature(enable = "avx2,f16c")]
fn f16_round(x: f32) -> f32 {
    let h = _mm_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(_mm_set_ss(x));
    _mm_cvtss_f32(_mm_cvtph_ps(h))
}
