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
//! The K-quants (Q4_K, Q6_K) store 256 values per super-block with a scale (and for Q4_K
//! a min) per sub-block of 32 (Q6_K: of 16). They are multiplied here sub-block by
//! sub-block against the same 32-value activation blocks as the other formats: a
//! sub-block's scale `d * sc` (an f16 times a 6- or 8-bit integer) is exact in f32, so
//! each sub-block is a block of the simple kind, and the super-block is read from memory
//! as it is stored (4.5 or 6.5 bits per weight). ggml quantizes the activations per 256
//! values instead (Q8_K); per 32 is finer, so the product is at least as close to the
//! unquantized one.

use half::f16;

/// Values per activation block, and per (sub-)block of every weight format here.
pub const QK: usize = 32;

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

/// One weight row against one activation row. Eight f32 lanes, each accumulating the
/// integer dot product of four consecutive values times `d_w * d_a` with a fused
/// multiply-add, as the AVX2 kernel's `maddubs`/`madd`/`fmadd` do (lanes 0..4 take the
/// scale of a sub-block's first 16 values, lanes 4..8 that of the last 16).
pub fn dot<W: WeightBlock>(w: &[W], a: &[BlockQ8]) -> f32 {
    debug_assert_eq!(w.len() * W::SUB, a.len());
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    let subs = w.iter().flat_map(|wb| (0..W::SUB).map(move |j| (wb, j)));
    for ((wb, j), ab) in subs.zip(a) {
        let (d0, d1, mw) = wb.scales(j);
        if W::HAS_MIN {
            summs += mw * ab.s;
        }
        let v = wb.values(j);
        for (lane, acc) in acc.iter_mut().enumerate() {
            let d = if lane < 4 { d0 } else { d1 } * ab.d;
            let sum: i32 = (4 * lane..4 * lane + 4)
                .map(|i| v[i] as i32 * ab.qs[i] as i32)
                .sum();
            *acc = d.mul_add(sum as f32, *acc);
        }
    }
    hsum8(acc) + summs
}
