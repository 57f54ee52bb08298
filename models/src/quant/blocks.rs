//! The block formats and the portable (scalar) arithmetic: weight blocks as GGUF stores
//! them, activation blocks as ggml quantizes them, and one dot product per (weight row,
//! activation row) pair.
//!
//! The scalar code reproduces the AVX2 kernels operation for operation (same lane
//! grouping, same fused multiply-adds, same horizontal sum), so both paths give bitwise
//! equal results and a model's output does not depend on the machine's instruction set.
//! The algorithms follow ggml (ggml-org/llama.cpp, commit 47b0c4b5488f):
//! `quantize_row_q8_0`, `quantize_row_q8_1` and `ggml_vec_dot_{q4_1_q8_1,q5_0_q8_0,
//! q5_1_q8_1}` in ggml/src/ggml-cpu/arch/x86/quants.c.
//!
//! The K-quants (Q4_K, Q6_K) store 256 values per super-block with an integer scale (and
//! for Q4_K an integer min) per sub-block of 32 (Q6_K: of 16) under one f16 scale `d`.
//! They are multiplied against the same 32-value activation blocks as the other formats,
//! eight of them side by side ([`BlockQ8x8`]): each sub-block's integer products are
//! multiplied by its integer scale in integers (ggml's `madd` with the scales), turned
//! into f32 once and scaled by the activation block's `d`; the super-block's `d` and the
//! mins times the activation sums come once per super-block ([`dot_k`]). ggml quantizes
//! the activations per 256 values instead (Q8_K) and so can sum the whole super-block in
//! integers; per 32 is finer, so the product is closer to the unquantized one (see
//! benches/RESULTS.md, "Fidelity").

use half::f16;
use std::borrow::Cow;

/// Values per activation block, and per (sub-)block of every weight format here.
pub const QK: usize = 32;

/// Independent accumulators per output in the dot products of formats of one block of
/// 32 (block `b` goes to `b % CHAINS`), summed `(0 + 1) + (2 + 3)` at the end. Four
/// hide a fused multiply-add's latency on current x86 cores.
pub const CHAINS: usize = 4;
const _: () = assert!(
    CHAINS == 4,
    "the final sums of the chains are written for four"
);

/// A block of weights in one of the formats this module multiplies: one block of 32
/// values, or a K-quant super-block of `SUB` of them.
pub trait WeightBlock: Copy + Send + Sync + 'static {
    /// Bytes per block in the file.
    const BYTES: usize;
    /// Sub-blocks of 32 values per block.
    const SUB: usize;
    /// `x = d * q + m` with unsigned `q` (Q4_1, Q5_1, Q4_K): activations then need the
    /// block sums of Q8_1. Without a min (`x = d * q` with signed `q`: Q4_0, Q5_0, Q8_0,
    /// Q6_K) activations are Q8_0.
    const HAS_MIN: bool;

    /// Sub-block `j`'s scale for its values 0..16 and for 16..32 (the same number but in
    /// Q6_K, whose scales cover 16 values), and its min `m` (0 without a min), in f32.
    fn scales(&self, j: usize) -> (f32, f32, f32);
    /// Sub-block `j`'s 32 quantized values in ggml's order (value `i` pairs with
    /// activation `i`): unsigned for formats with a min, signed (offset) for the others.
    fn values(&self, j: usize) -> [i8; QK];

    /// What one weight block is multiplied with: one [`BlockQ8`], or for a K-quant
    /// super-block the eight of a [`BlockQ8x8`].
    type Act: Clone + Send + Sync + 'static;
    /// Activation blocks (whole rows of them) grouped as this format's kernel reads them.
    fn group(acts: &[BlockQ8]) -> Cow<'_, [Self::Act]>;
    /// One weight row against one activation row, in scalar code that gives the AVX2
    /// kernel's result to the bit.
    fn dot(w: &[Self], a: &[Self::Act]) -> f32;
}

/// The `WeightBlock` items of a format of one block of 32 values: multiplied with one
/// [`BlockQ8`] by [`dot`].
macro_rules! one_block_of_32 {
    () => {
        type Act = BlockQ8;

        fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8]> {
            Cow::Borrowed(acts)
        }

        fn dot(w: &[Self], a: &[BlockQ8]) -> f32 {
            dot(w, a)
        }
    };
}

/// A K-quant super-block as the integer kernel reads it.
pub trait SuperBlock: WeightBlock<Act = BlockQ8x8> {
    /// The super-block's scale `d`; each sub-block's integer scales for its values 0..16
    /// and 16..32 (the same but in Q6_K); each sub-block's min in f32 (`-dmin * m`, 0
    /// without mins), so that value `i` of sub-block `j` is `d * sc[j][i / 16] * q + m[j]`.
    fn int_scales(&self) -> (f32, [[i16; 2]; 8], [f32; 8]);

    /// What the kernel subtracts from every value to make it signed: it multiplies the
    /// unsigned `q + OFFSET` (one `maddubs`, no sign fix-ups), then takes `OFFSET` times
    /// the scaled activation sums ([`BlockQ8x8::h`]) off once per super-block.
    const OFFSET: i32;
}

fn f16_bits(b: [u8; 2]) -> f32 {
    f16::from_bits(u16::from_le_bytes(b)).to_f32()
}

/// Bits 4 of the 32 values of a 5-bit block, as 0 or 0x10 per value.
fn high_bits(qh: [u8; 4]) -> [u8; QK] {
    let qh = u32::from_le_bytes(qh);
    std::array::from_fn(|j| (((qh >> j) & 1) << 4) as u8)
}

/// Low nibbles are values 0..16, high nibbles values 16..32.
fn nibbles(qs: &[u8; QK / 2]) -> [u8; QK] {
    std::array::from_fn(|j| {
        if j < QK / 2 {
            qs[j] & 0x0F
        } else {
            qs[j - QK / 2] >> 4
        }
    })
}

/// ggml's `block_q4_0`: `x = d * (q - 8)`, q in 0..16.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; QK / 2],
}

/// ggml's `block_q4_K`: 256 values in 8 sub-blocks of 32, `x = d * sc_j * q - dmin *
/// m_j`, q in 0..16; the 6-bit `sc_j` and `m_j` packed in 12 bytes. Sub-blocks 2i and
/// 2i + 1 are the low and high nibbles of bytes 32i..32i + 32.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

/// ggml's `block_q6_K`: 256 values, `x = d * sc * (q - 32)` with a signed 8-bit scale per
/// 16 values; q's low 4 bits in `ql`, its high 2 in `qh`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ6K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: [u8; 2],
}

/// Q4_K's sub-block `j` scale and min: ggml's `get_scale_min_k4`.
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// All eight of Q4_K's sub-block scales and mins at once (what [`scale_min_k4`] gives
/// for j = 0..8), with ggml's word masks (`ggml_vec_dot_q4_K_q8_K`'s `utmp`).
#[inline]
pub fn k4_scales_mins(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (u0, u1, u2) = (word(0), word(1), word(2));
    let scales_hi = (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4);
    let mins_hi = ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4);
    let both = |lo: u32, hi: u32| {
        let (lo, hi) = (lo.to_le_bytes(), hi.to_le_bytes());
        std::array::from_fn(|j| if j < 4 { lo[j] } else { hi[j - 4] })
    };
    (both(u0 & LOW6, scales_hi), both(u1 & LOW6, mins_hi))
}

/// Where Q6_K's sub-block `j` lives: the offset of its 32 `ql` bytes, whether its values
/// are their high nibbles, the offset of its 32 `qh` bytes and the shift of its 2 bits
/// there, and the index of its first scale. (ggml's `dequantize_row_q6_K`: each half of
/// 128 values is four sub-blocks; sub-block k of a half takes nibbles from `ql` bytes
/// 32 * (k % 2), low for k < 2, and bits 2k of `qh`.)
pub fn q6k_place(j: usize) -> (usize, bool, usize, u32, usize) {
    let (h, k) = (j / 4, j % 4);
    (
        64 * h + 32 * (k % 2),
        k >= 2,
        32 * h,
        2 * k as u32,
        8 * h + 2 * k,
    )
}

/// ggml's `block_q4_1`: `x = d * q + m`, q in 0..16.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qs: [u8; QK / 2],
}

/// ggml's `block_q5_0`: `x = d * (q - 16)`, q in 0..32, bit 4 in `qh`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5_0 {
    pub d: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// ggml's `block_q5_1`: `x = d * q + m`, q in 0..32, bit 4 in `qh`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// ggml's `block_q8_0`: `x = d * q`, q a signed byte.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: [u8; 2],
    pub qs: [u8; QK],
}

impl WeightBlock for BlockQ4_0 {
    one_block_of_32!();

    const BYTES: usize = 18;
    const SUB: usize = 1;
    const HAS_MIN: bool = false;

    fn scales(&self, _: usize) -> (f32, f32, f32) {
        let d = f16_bits(self.d);
        (d, d, 0.0)
    }

    fn values(&self, _: usize) -> [i8; QK] {
        nibbles(&self.qs).map(|v| v as i8 - 8)
    }
}

impl WeightBlock for BlockQ4K {
    type Act = BlockQ8x8;

    fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8x8]> {
        BlockQ8x8::group(acts)
    }

    fn dot(w: &[Self], a: &[BlockQ8x8]) -> f32 {
        dot_k(w, a)
    }

    const BYTES: usize = 144;
    const SUB: usize = 8;
    const HAS_MIN: bool = true;

    fn scales(&self, j: usize) -> (f32, f32, f32) {
        let (sc, m) = scale_min_k4(j, &self.scales);
        let d = f16_bits(self.d) * sc as f32;
        (d, d, -(f16_bits(self.dmin) * m as f32))
    }

    fn values(&self, j: usize) -> [i8; QK] {
        let q = &self.qs[32 * (j / 2)..32 * (j / 2) + 32];
        std::array::from_fn(|i| if j.is_multiple_of(2) { q[i] & 0x0F } else { q[i] >> 4 } as i8)
    }
}

impl WeightBlock for BlockQ6K {
    type Act = BlockQ8x8;

    fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8x8]> {
        BlockQ8x8::group(acts)
    }

    fn dot(w: &[Self], a: &[BlockQ8x8]) -> f32 {
        dot_k(w, a)
    }

    const BYTES: usize = 210;
    const SUB: usize = 8;
    const HAS_MIN: bool = false;

    fn scales(&self, j: usize) -> (f32, f32, f32) {
        let (.., s) = q6k_place(j);
        let d = f16_bits(self.d);
        (
            d * self.scales[s] as f32,
            d * self.scales[s + 1] as f32,
            0.0,
        )
    }

    fn values(&self, j: usize) -> [i8; QK] {
        let (l, high, h, shift, _) = q6k_place(j);
        std::array::from_fn(|i| {
            let lo = self.ql[l + i];
            let nib = if high { lo >> 4 } else { lo & 0x0F };
            let hb = (self.qh[h + i] >> shift) & 3;
            (nib | (hb << 4)) as i8 - 32
        })
    }
}

impl WeightBlock for BlockQ4_1 {
    one_block_of_32!();

    const BYTES: usize = 20;
    const SUB: usize = 1;
    const HAS_MIN: bool = true;

    fn scales(&self, _: usize) -> (f32, f32, f32) {
        let d = f16_bits(self.d);
        (d, d, f16_bits(self.m))
    }

    fn values(&self, _: usize) -> [i8; QK] {
        nibbles(&self.qs).map(|v| v as i8)
    }
}

impl WeightBlock for BlockQ5_0 {
    one_block_of_32!();

    const BYTES: usize = 22;
    const SUB: usize = 1;
    const HAS_MIN: bool = false;

    fn scales(&self, _: usize) -> (f32, f32, f32) {
        let d = f16_bits(self.d);
        (d, d, 0.0)
    }

    fn values(&self, _: usize) -> [i8; QK] {
        let (lo, hi) = (nibbles(&self.qs), high_bits(self.qh));
        std::array::from_fn(|j| (lo[j] | hi[j]) as i8 - 16)
    }
}

impl WeightBlock for BlockQ5_1 {
    one_block_of_32!();

    const BYTES: usize = 24;
    const SUB: usize = 1;
    const HAS_MIN: bool = true;

    fn scales(&self, _: usize) -> (f32, f32, f32) {
        let d = f16_bits(self.d);
        (d, d, f16_bits(self.m))
    }

    fn values(&self, _: usize) -> [i8; QK] {
        let (lo, hi) = (nibbles(&self.qs), high_bits(self.qh));
        std::array::from_fn(|j| (lo[j] | hi[j]) as i8)
    }
}

impl WeightBlock for BlockQ8_0 {
    one_block_of_32!();

    const BYTES: usize = 34;
    const SUB: usize = 1;
    const HAS_MIN: bool = false;

    fn scales(&self, _: usize) -> (f32, f32, f32) {
        let d = f16_bits(self.d);
        (d, d, 0.0)
    }

    fn values(&self, _: usize) -> [i8; QK] {
        self.qs.map(|v| v as i8)
    }
}

/// 32 activations quantized to 8 bits: ggml's `block_q8_0`, or `block_q8_1` when `s` is
/// filled. `d` and `s` are stored in f16 by ggml; they are kept here as the f32 values of
/// those f16 numbers, which is what every use of them reads.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct BlockQ8 {
    pub qs: [i8; QK],
    pub d: f32,
    /// `d * sum(qs)`; used with the mins of Q4_1 and Q5_1.
    pub s: f32,
}

impl BlockQ8 {
    pub const ZERO: Self = Self {
        qs: [0; QK],
        d: 0.0,
        s: 0.0,
    };
}

/// Rounds through f16, as ggml stores block scales.
pub fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// ggml's x86 `quantize_row_q8_0` / `quantize_row_q8_1` (AVX branch), in scalar code:
/// `d = amax / 127`, values `round_half_even(x * (127 / amax))`, and for Q8_1
/// `s = f16(d * sum)`.
pub fn quantize_row(xs: &[f32], out: &mut [BlockQ8], with_sum: bool) {
    debug_assert_eq!(xs.len(), out.len() * QK);
    for (x, y) in xs.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in y.qs.iter_mut().zip(x) {
            let r = (v * id).round_ties_even() as i32;
            sum += r;
            *q = r as i8;
        }
        y.d = round_f16(d);
        y.s = if with_sum {
            round_f16(d * sum as f32)
        } else {
            0.0
        };
    }
}

/// `_mm256_add_ps` halves, `movehl`, `movehdup`: ggml's `hsum_float_8`, in its order.
pub fn hsum8(a: [f32; 8]) -> f32 {
    let r: [f32; 4] = std::array::from_fn(|i| a[i + 4] + a[i]);
    (r[0] + r[2]) + (r[1] + r[3])
}

/// One weight row of a format of one block of 32 against one activation row. [`CHAINS`]
/// sets of eight f32 lanes, each lane accumulating the integer dot product of four
/// consecutive values times `d_w * d_a` with a fused multiply-add, as the AVX2 kernel's
/// `maddubs`/`madd`/`fmadd` do.
pub fn dot<W: WeightBlock>(w: &[W], a: &[BlockQ8]) -> f32 {
    debug_assert!(W::SUB == 1 && w.len() == a.len());
    // Block b accumulates into chain b % CHAINS, as in the kernel.
    let mut acc = [[0f32; 8]; CHAINS];
    let mut summs = 0f32;
    for (b, (wb, ab)) in w.iter().zip(a).enumerate() {
        let (d, _, mw) = wb.scales(0);
        if W::HAS_MIN {
            summs += mw * ab.s;
        }
        let v = wb.values(0);
        for (lane, acc) in acc[b % CHAINS].iter_mut().enumerate() {
            let sum: i32 = (4 * lane..4 * lane + 4)
                .map(|i| v[i] as i32 * ab.qs[i] as i32)
                .sum();
            *acc = (d * ab.d).mul_add(sum as f32, *acc);
        }
    }
    hsum8(std::array::from_fn(|lane| {
        (acc[0][lane] + acc[1][lane]) + (acc[2][lane] + acc[3][lane])
    })) + summs
}

impl SuperBlock for BlockQ4K {
    fn int_scales(&self) -> (f32, [[i16; 2]; 8], [f32; 8]) {
        let (sc, m) = k4_scales_mins(&self.scales);
        let dmin = f16_bits(self.dmin);
        (
            f16_bits(self.d),
            sc.map(|s| [s as i16; 2]),
            m.map(|m| -(dmin * m as f32)),
        )
    }

    const OFFSET: i32 = 0;
}

impl SuperBlock for BlockQ6K {
    fn int_scales(&self) -> (f32, [[i16; 2]; 8], [f32; 8]) {
        let sc = std::array::from_fn(|j| {
            let (.., s) = q6k_place(j);
            [self.scales[s] as i16, self.scales[s + 1] as i16]
        });
        (f16_bits(self.d), sc, [0.0; 8])
    }

    const OFFSET: i32 = 32;
}

/// Eight consecutive activation blocks (one K-quant super-block's worth) with their
/// values first and their scales and sums side by side, so that a kernel loads all eight
/// sums (or scales) at once.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct BlockQ8x8 {
    pub qs: [[i8; QK]; 8],
    pub d: [f32; 8],
    pub s: [f32; 8],
    /// The integer sums of each block's values 0..16 and 16..32, block by block.
    pub h: [i16; 16],
}

impl BlockQ8x8 {
    /// Whole rows of a multiple of eight blocks, eight by eight.
    pub fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8x8]> {
        debug_assert!(acts.len().is_multiple_of(8));
        Cow::Owned(
            acts.chunks_exact(8)
                .map(|b| BlockQ8x8 {
                    qs: std::array::from_fn(|j| b[j].qs),
                    d: std::array::from_fn(|j| b[j].d),
                    s: std::array::from_fn(|j| b[j].s),
                    h: std::array::from_fn(|i| {
                        let half = &b[i / 2].qs[16 * (i % 2)..16 * (i % 2) + 16];
                        half.iter().map(|&q| q as i16).sum()
                    }),
                })
                .collect(),
        )
    }
}

/// One K-quant weight row against one activation row, as the AVX2 kernel computes it:
/// per sub-block and lane of four values, the integer dot product of the unsigned values
/// (`q + OFFSET`) times the sub-block's integer scale, converted to f32 and accumulated
/// (fused) times the activation block's `d` into the super-block's eight lanes; per
/// super-block, with an offset, lane `j` less `OFFSET` times sub-block `j`'s scaled
/// activation sums times its `d`; those lanes times `d`, then (with mins) each
/// sub-block's min times its activation sum, into the row's lanes.
pub fn dot_k<W: SuperBlock>(w: &[W], a: &[BlockQ8x8]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let mut acc = [0f32; 8];
    for (wb, ab) in w.iter().zip(a) {
        let (d, sc, mins) = wb.int_scales();
        // Even and odd sub-blocks accumulate apart (two dependency chains in the kernel).
        let mut sb = [[0f32; 8]; 2];
        for j in 0..8 {
            let v = wb.values(j);
            for (lane, sb) in sb[j % 2].iter_mut().enumerate() {
                let sum: i32 = (4 * lane..4 * lane + 4)
                    .map(|i| (v[i] as i32 + W::OFFSET) * ab.qs[j][i] as i32)
                    .sum();
                let isum = sum * sc[j][lane / 4] as i32;
                *sb = (isum as f32).mul_add(ab.d[j], *sb);
            }
        }
        for lane in 0..8 {
            let mut s = sb[0][lane] + sb[1][lane];
            if W::OFFSET != 0 {
                // Sub-block `lane`'s two halves: activation sums times their scales.
                let (h, [s0, s1]) = (&ab.h[2 * lane..2 * lane + 2], sc[lane]);
                let c = h[0] as i32 * s0 as i32 + h[1] as i32 * s1 as i32;
                s = (c as f32 * ab.d[lane]).mul_add(-W::OFFSET as f32, s);
            }
            acc[lane] = d.mul_add(s, acc[lane]);
            if W::HAS_MIN {
                acc[lane] = mins[lane].mul_add(ab.s[lane], acc[lane]);
            }
        }
    }
    hsum8(acc)
}
