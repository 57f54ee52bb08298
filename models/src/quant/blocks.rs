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

use half::f16;

/// Values per block, for every format here.
pub const QK: usize = 32;

/// A block of 32 weights in one of the formats this module multiplies.
pub trait WeightBlock: Copy + Send + Sync + 'static {
    /// Bytes per block in the file.
    const BYTES: usize;
    /// `x = d * q + m` with unsigned `q` (Q4_1, Q5_1): activations then need the block sums
    /// of Q8_1. Without a min (Q5_0) `x = d * (q - 16)` and activations are Q8_0.
    const HAS_MIN: bool;

    /// Reads one block from its `BYTES` little-endian bytes.
    fn from_bytes(bytes: &[u8]) -> Self;
    /// The block's scale `d` and min `m` (0 without a min), widened from f16.
    fn scales(&self) -> (f32, f32);
    /// The 32 quantized values in ggml's order (value `j` pairs with activation `j`):
    /// unsigned for formats with a min, already offset by -16 for Q5_0.
    fn values(&self) -> [i8; QK];
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

fn arr<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N]
        .try_into()
        .expect("block slice has BYTES bytes")
}

impl WeightBlock for BlockQ4_1 {
    const BYTES: usize = 20;
    const HAS_MIN: bool = true;

    fn from_bytes(b: &[u8]) -> Self {
        Self {
            d: arr(b, 0),
            m: arr(b, 2),
            qs: arr(b, 4),
        }
    }

    fn scales(&self) -> (f32, f32) {
        (f16_bits(self.d), f16_bits(self.m))
    }

    fn values(&self) -> [i8; QK] {
        nibbles(&self.qs).map(|v| v as i8)
    }
}

impl WeightBlock for BlockQ5_0 {
    const BYTES: usize = 22;
    const HAS_MIN: bool = false;

    fn from_bytes(b: &[u8]) -> Self {
        Self {
            d: arr(b, 0),
            qh: arr(b, 2),
            qs: arr(b, 6),
        }
    }

    fn scales(&self) -> (f32, f32) {
        (f16_bits(self.d), 0.0)
    }

    fn values(&self) -> [i8; QK] {
        let (lo, hi) = (nibbles(&self.qs), high_bits(self.qh));
        std::array::from_fn(|j| (lo[j] | hi[j]) as i8 - 16)
    }
}

impl WeightBlock for BlockQ5_1 {
    const BYTES: usize = 24;
    const HAS_MIN: bool = true;

    fn from_bytes(b: &[u8]) -> Self {
        Self {
            d: arr(b, 0),
            m: arr(b, 2),
            qh: arr(b, 4),
            qs: arr(b, 8),
        }
    }

    fn scales(&self) -> (f32, f32) {
        (f16_bits(self.d), f16_bits(self.m))
    }

    fn values(&self) -> [i8; QK] {
        let (lo, hi) = (nibbles(&self.qs), high_bits(self.qh));
        std::array::from_fn(|j| (lo[j] | hi[j]) as i8)
    }
}

impl WeightBlock for BlockQ8_0 {
    const BYTES: usize = 34;
    const HAS_MIN: bool = false;

    fn from_bytes(b: &[u8]) -> Self {
        Self {
            d: arr(b, 0),
            qs: arr(b, 2),
        }
    }

    fn scales(&self) -> (f32, f32) {
        (f16_bits(self.d), 0.0)
    }

    fn values(&self) -> [i8; QK] {
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
/// multiply-add, as the AVX2 kernel's `maddubs`/`madd`/`fmadd` do.
pub fn dot<W: WeightBlock>(w: &[W], a: &[BlockQ8]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (wb, ab) in w.iter().zip(a) {
        let (dw, mw) = wb.scales();
        if W::HAS_MIN {
            summs += mw * ab.s;
        }
        let v = wb.values();
        let d = dw * ab.d;
        for (lane, acc) in acc.iter_mut().enumerate() {
            let sum: i32 = (4 * lane..4 * lane + 4)
                .map(|j| v[j] as i32 * ab.qs[j] as i32)
                .sum();
            *acc = d.mul_add(sum as f32, *acc);
        }
    }
    hsum8(acc) + summs
}
