//! Weights interleaved eight rows at a time, for products whose outputs are SIMD lanes.
//!
//! A [`WeightTile`] holds block `b` of eight consecutive weight rows, arranged so that
//! one 32-byte load gives four values of each of the eight rows, one row per 32-bit lane.
//! A kernel then broadcasts four activation bytes to every lane and one `maddubs` /
//! `add` pair advances eight dot products at once; the eight f16 scales are widened in
//! one instruction and the result is eight finished outputs, with no horizontal sum.
//! Per 256 multiply-adds that is about half the instructions of one row at a time
//! (ggml's AVX2 `q4_0_8x8` repacking of ggml/src/ggml-cpu/repack.cpp, ggml-org/llama.cpp
//! commit 47b0c4b5488f, arranges its weights for the same reason; the arithmetic here is
//! our own: unsigned nibbles, and the offset of 8 taken off once per block through the
//! activation block's integer sum).
//!
//! Matrices whose row count is a multiple of [`TILE`] are stored this way at load; the
//! tile of rows `8t..8t + 8` and block `b` is tile `t * blocks_per_row + b`, so the tiles
//! of a stack of such matrices are the concatenation of theirs.

use super::blocks::{
    k4_scales_mins, q6k_place, BlockQ4K, BlockQ4_0, BlockQ6K, BlockQ8, BlockQ8_0, BlockQ8x8,
    SuperBlock, WeightBlock, QK,
};
use half::f16;
use std::borrow::Cow;

fn f16_bits(b: [u8; 2]) -> f32 {
    f16::from_bits(u16::from_le_bytes(b)).to_f32()
}

/// Weight rows per tile.
pub const TILE: usize = 8;

/// Eight rows' bytes in groups of four, row after row: byte `32g + 4r + k` is row `r`'s
/// byte `4g + k` (`M` is eight times `N`).
fn fours<const N: usize, const M: usize>(rows: [&[u8; N]; TILE]) -> [u8; M] {
    debug_assert_eq!(M, TILE * N);
    let mut out = [0u8; M];
    for (r, q) in rows.iter().enumerate() {
        for (g, four) in q.chunks_exact(4).enumerate() {
            out[32 * g + 4 * r..32 * g + 4 * r + 4].copy_from_slice(four);
        }
    }
    out
}

/// Row `r`'s bytes back out of [`fours`].
fn row_of_fours<const N: usize>(tiled: &[u8], r: usize) -> [u8; N] {
    std::array::from_fn(|j| tiled[32 * (j / 4) + 4 * r + j % 4])
}

/// An activation block as the tile kernels read it: [`BlockQ8`]'s values and scale, and
/// the integer sum of its values (what takes the weights' offset off).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct BlockQ8Sum {
    pub qs: [i8; QK],
    pub d: f32,
    pub sum: i32,
}

impl BlockQ8Sum {
    /// Activation blocks as quantized (whole rows of them), with their sums.
    pub fn group(acts: &[BlockQ8]) -> Vec<BlockQ8Sum> {
        acts.iter()
            .map(|a| BlockQ8Sum {
                qs: a.qs,
                d: a.d,
                sum: a.qs.iter().map(|&q| q as i32).sum(),
            })
            .collect()
    }
}

/// Block `b` of eight weight rows, interleaved.
pub trait WeightTile: Copy + Send + Sync + 'static {
    /// The format of each row's blocks.
    type Block: WeightBlock;
    /// What one tile is multiplied with: one activation block per 32 weight values.
    type Act: Clone + Send + Sync + 'static;
    /// Activation blocks (whole rows of them) grouped as this format's kernel reads them.
    fn group(acts: &[BlockQ8]) -> Cow<'_, [Self::Act]>;

    /// The tile of eight rows' blocks (the same block index in each).
    fn interleave(rows: [&Self::Block; TILE]) -> Self;
    /// Row `r`'s block, as the file stores it.
    fn block(&self, r: usize) -> Self::Block;
    /// One tile row (`w`, a row's worth of tiles) against one activation row: the eight
    /// rows' dot products, in scalar code that gives the AVX2 kernel's result to the bit.
    fn dot(w: &[Self], a: &[Self::Act]) -> [f32; TILE];
}

/// Eight rows' [`BlockQ4_0`]: their scales side by side, then their values in groups of
/// four bytes (eight values), row after row: bytes `32g + 4r..32g + 4r + 4` are row `r`'s
/// bytes `4g..4g + 4`, whose low nibbles are its values `4g..4g + 4` and high nibbles its
/// values `16 + 4g..16 + 4g + 4`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct TileQ4_0 {
    pub d: [[u8; 2]; TILE],
    pub qs: [u8; TILE * QK / 2],
}

impl WeightTile for TileQ4_0 {
    type Block = BlockQ4_0;
    type Act = BlockQ8Sum;

    fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8Sum]> {
        Cow::Owned(BlockQ8Sum::group(acts))
    }

    fn interleave(rows: [&BlockQ4_0; TILE]) -> Self {
        Self {
            d: rows.map(|b| b.d),
            qs: fours(rows.map(|b| &b.qs)),
        }
    }

    fn block(&self, r: usize) -> BlockQ4_0 {
        BlockQ4_0 {
            d: self.d[r],
            qs: row_of_fours(&self.qs, r),
        }
    }

    /// Per block and row: the integer dot product of the unsigned nibbles with the
    /// activations, less 8 times the activations' sum, times `d_w * d_a`, accumulated
    /// with a fused multiply-add.
    fn dot(w: &[Self], a: &[BlockQ8Sum]) -> [f32; TILE] {
        debug_assert_eq!(w.len(), a.len());
        let mut acc = [0f32; TILE];
        for (t, ab) in w.iter().zip(a) {
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut isum = 0i32;
                for g in 0..4 {
                    for k in 0..4 {
                        let q = t.qs[32 * g + 4 * r + k];
                        isum += (q & 0x0F) as i32 * ab.qs[4 * g + k] as i32;
                        isum += (q >> 4) as i32 * ab.qs[16 + 4 * g + k] as i32;
                    }
                }
                isum -= 8 * ab.sum;
                *acc = (f16_bits(t.d[r]) * ab.d).mul_add(isum as f32, *acc);
            }
        }
        acc
    }
}

/// Eight rows' [`BlockQ4K`] super-blocks: their `d` and `dmin` side by side, their 6-bit
/// sub-block scales and mins unpacked to bytes (`scales[8j + r]`: row `r`'s sub-block
/// `j`), and their values in groups of four bytes as in [`TileQ4_0`]: bytes
/// `256p + 32g + 4r..+4` are row `r`'s bytes `32p + 4g..+4`, whose low nibbles are values
/// `4g..4g + 4` of sub-block `2p` and high nibbles those of sub-block `2p + 1`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct TileQ4K {
    pub d: [[u8; 2]; TILE],
    pub dmin: [[u8; 2]; TILE],
    pub scales: [u8; 8 * TILE],
    pub mins: [u8; 8 * TILE],
    pub qs: [u8; 128 * TILE],
}

impl WeightTile for TileQ4K {
    type Block = BlockQ4K;
    type Act = BlockQ8x8;

    fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8x8]> {
        BlockQ8x8::group(acts)
    }

    fn interleave(rows: [&BlockQ4K; TILE]) -> Self {
        let mut t = Self {
            d: rows.map(|b| b.d),
            dmin: rows.map(|b| b.dmin),
            scales: [0; 8 * TILE],
            mins: [0; 8 * TILE],
            qs: [0; 128 * TILE],
        };
        for (r, b) in rows.iter().enumerate() {
            let (sc, m) = k4_scales_mins(&b.scales);
            for j in 0..8 {
                t.scales[8 * j + r] = sc[j];
                t.mins[8 * j + r] = m[j];
            }
            for (i, four) in b.qs.chunks_exact(4).enumerate() {
                let (p, g) = (i / 8, i % 8);
                let at = 256 * p + 32 * g + 4 * r;
                t.qs[at..at + 4].copy_from_slice(four);
            }
        }
        t
    }

    fn block(&self, r: usize) -> BlockQ4K {
        let sc: [u8; 8] = std::array::from_fn(|j| self.scales[8 * j + r]);
        let m: [u8; 8] = std::array::from_fn(|j| self.mins[8 * j + r]);
        // ggml's 12-byte packing (the inverse of `get_scale_min_k4`).
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            scales[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
        }
        BlockQ4K {
            d: self.d[r],
            dmin: self.dmin[r],
            scales,
            qs: std::array::from_fn(|i| {
                let (p, g, k) = (i / 32, i % 32 / 4, i % 4);
                self.qs[256 * p + 32 * g + 4 * r + k]
            }),
        }
    }

    /// Per super-block and row: per sub-block `j`, the integer dot product of the nibbles
    /// with the activations times the integer scale, converted and accumulated (fused)
    /// times the activation block's `d`; that sum times the row's `d`; then the mins
    /// times the activation sums, accumulated (fused) sub-block by sub-block, times
    /// `-dmin`.
    fn dot(w: &[Self], a: &[BlockQ8x8]) -> [f32; TILE] {
        debug_assert_eq!(w.len(), a.len());
        let mut acc = [0f32; TILE];
        for (t, ab) in w.iter().zip(a) {
            for (r, acc) in acc.iter_mut().enumerate() {
                let (mut s, mut m) = (0f32, 0f32);
                for j in 0..8 {
                    let (p, shift) = (j / 2, 4 * (j % 2));
                    let mut isum = 0i32;
                    for i in 0..QK {
                        let (g, k) = (i / 4, i % 4);
                        let q = (t.qs[256 * p + 32 * g + 4 * r + k] >> shift) & 0x0F;
                        isum += q as i32 * ab.qs[j][i] as i32;
                    }
                    isum *= t.scales[8 * j + r] as i32;
                    s = (isum as f32).mul_add(ab.d[j], s);
                    m = (t.mins[8 * j + r] as f32).mul_add(ab.s[j], m);
                }
                *acc = f16_bits(t.d[r]).mul_add(s, *acc);
                *acc = (-f16_bits(t.dmin[r])).mul_add(m, *acc);
            }
        }
        acc
    }
}

/// Eight rows' [`BlockQ6K`] super-blocks: their `d` side by side; their scales, two per
/// sub-block (one per half of 16 values), `scales[16j + 2r + h]` for row `r`'s half `h`
/// of sub-block `j`; and their 6-bit values `q + 32` (0..64), in the order the kernel
/// reads them: per pair of sub-blocks `2p, 2p + 1` and quarter `c` (values `8c..8c + 8`),
/// 96 bytes: two 32-byte groups `o` whose bytes `4r..4r + 4` hold in their low and high
/// nibbles the low four bits of values `8c + 4o..+4` of row `r`'s two sub-blocks, then 32
/// bytes whose bits `4o + 2e..+2` of bytes `4r..4r + 4` are those values' high two bits
/// (`e`: which sub-block of the pair). The same 1,680 bytes as eight super-blocks.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct TileQ6K {
    pub d: [[u8; 2]; TILE],
    pub scales: [i8; 16 * TILE],
    pub qs: [u8; 192 * TILE],
}

impl TileQ6K {
    /// Where value `i` of row `r`'s sub-block `j` lives: its low bits' byte and that
    /// byte's nibble shift, its high bits' byte and that byte's bit shift.
    fn place(r: usize, j: usize, i: usize) -> (usize, u32, usize, u32) {
        let (p, e) = (j / 2, j % 2);
        let (c, o, k) = (i / 8, i % 8 / 4, i % 4);
        let quarter = 384 * p + 96 * c;
        (
            quarter + 32 * o + 4 * r + k,
            4 * e as u32,
            quarter + 64 + 4 * r + k,
            (4 * o + 2 * e) as u32,
        )
    }

    /// Value `i` of row `r`'s sub-block `j`, unsigned (`q + 32`, 0..64).
    fn value(&self, r: usize, j: usize, i: usize) -> u8 {
        let (l, ls, h, hs) = Self::place(r, j, i);
        ((self.qs[l] >> ls) & 0x0F) | (((self.qs[h] >> hs) & 0x03) << 4)
    }
}

impl WeightTile for TileQ6K {
    type Block = BlockQ6K;
    type Act = BlockQ8x8;

    fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8x8]> {
        BlockQ8x8::group(acts)
    }

    /// Four values at a time, in the bytes of a `u32` (loading a 1.5B-parameter file
    /// one value at a time took seconds).
    fn interleave(rows: [&BlockQ6K; TILE]) -> Self {
        let mut t = Self {
            d: rows.map(|b| b.d),
            scales: [0; 16 * TILE],
            qs: [0; 192 * TILE],
        };
        let word =
            |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"));
        for (r, b) in rows.iter().enumerate() {
            // v[j][w]: values 4w..4w + 4 of sub-block j, unsigned, one per byte.
            let mut v = [[0u32; 8]; 8];
            for (j, v) in v.iter_mut().enumerate() {
                let (l, high, h, shift, s) = q6k_place(j);
                t.scales[16 * j + 2 * r] = b.scales[s];
                t.scales[16 * j + 2 * r + 1] = b.scales[s + 1];
                for (w, v) in v.iter_mut().enumerate() {
                    let lo = (word(&b.ql, l + 4 * w) >> (4 * high as u32)) & 0x0F0F_0F0F;
                    let hi = (word(&b.qh, h + 4 * w) >> shift) & 0x0303_0303;
                    *v = lo | (hi << 4);
                }
            }
            for p in 0..4 {
                for c in 0..4 {
                    let at = 384 * p + 96 * c + 4 * r;
                    let mut high = 0;
                    for o in 0..2 {
                        let (v0, v1) = (v[2 * p][2 * c + o], v[2 * p + 1][2 * c + o]);
                        let low = (v0 & 0x0F0F_0F0F) | ((v1 & 0x0F0F_0F0F) << 4);
                        t.qs[at + 32 * o..at + 32 * o + 4].copy_from_slice(&low.to_le_bytes());
                        high |= ((v0 >> 4) & 0x0303_0303) << (4 * o);
                        high |= ((v1 >> 4) & 0x0303_0303) << (4 * o + 2);
                    }
                    t.qs[at + 64..at + 68].copy_from_slice(&high.to_le_bytes());
                }
            }
        }
        t
    }

    fn block(&self, r: usize) -> BlockQ6K {
        let mut b = BlockQ6K {
            ql: [0; 128],
            qh: [0; 64],
            scales: [0; 16],
            d: self.d[r],
        };
        for j in 0..8 {
            let (l, high, h, shift, s) = q6k_place(j);
            b.scales[s] = self.scales[16 * j + 2 * r];
            b.scales[s + 1] = self.scales[16 * j + 2 * r + 1];
            for i in 0..QK {
                let q = self.value(r, j, i);
                b.ql[l + i] |= if high { (q & 0x0F) << 4 } else { q & 0x0F };
                b.qh[h + i] |= (q >> 4) << shift;
            }
        }
        b
    }

    /// Per super-block and row: per sub-block `j`, the integer dot products of the
    /// unsigned values with the activations, each half times its scale, less 32 times
    /// the scaled half sums of the activations, converted and accumulated (fused) times
    /// the activation block's `d`; that sum times the row's `d`.
    fn dot(w: &[Self], a: &[BlockQ8x8]) -> [f32; TILE] {
        debug_assert_eq!(w.len(), a.len());
        let mut acc = [0f32; TILE];
        for (t, ab) in w.iter().zip(a) {
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut s = 0f32;
                for j in 0..8 {
                    let mut isum = 0i32;
                    for h in 0..2 {
                        let sc = t.scales[16 * j + 2 * r + h] as i32;
                        let half: i32 = (16 * h..16 * h + 16)
                            .map(|i| t.value(r, j, i) as i32 * ab.qs[j][i] as i32)
                            .sum();
                        isum += sc * (half - BlockQ6K::OFFSET * ab.h[2 * j + h] as i32);
                    }
                    s = (isum as f32).mul_add(ab.d[j], s);
                }
                *acc = f16_bits(t.d[r]).mul_add(s, *acc);
            }
        }
        acc
    }
}

/// Eight rows' [`BlockQ8_0`]: their scales side by side, then their values in groups of
/// four, row after row: bytes `32g + 4r..32g + 4r + 4` are row `r`'s values `4g..4g + 4`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct TileQ8_0 {
    pub d: [[u8; 2]; TILE],
    pub qs: [u8; TILE * QK],
}

impl WeightTile for TileQ8_0 {
    type Block = BlockQ8_0;
    type Act = BlockQ8;

    fn group(acts: &[BlockQ8]) -> Cow<'_, [BlockQ8]> {
        Cow::Borrowed(acts)
    }

    fn interleave(rows: [&BlockQ8_0; TILE]) -> Self {
        Self {
            d: rows.map(|b| b.d),
            qs: fours(rows.map(|b| &b.qs)),
        }
    }

    fn block(&self, r: usize) -> BlockQ8_0 {
        BlockQ8_0 {
            d: self.d[r],
            qs: row_of_fours(&self.qs, r),
        }
    }

    /// Per block and row: the integer dot product, times `d_w * d_a`, accumulated with
    /// a fused multiply-add.
    fn dot(w: &[Self], a: &[BlockQ8]) -> [f32; TILE] {
        debug_assert_eq!(w.len(), a.len());
        let mut acc = [0f32; TILE];
        for (t, ab) in w.iter().zip(a) {
            for (r, acc) in acc.iter_mut().enumerate() {
                let isum: i32 = (0..QK)
                    .map(|j| t.qs[32 * (j / 4) + 4 * r + j % 4] as i8 as i32 * ab.qs[j] as i32)
                    .sum();
                *acc = (f16_bits(t.d[r]) * ab.d).mul_add(isum as f32, *acc);
            }
        }
        acc
    }
}

/// `blocks` (rows of `kw` blocks each, `rows` a multiple of [`TILE`]) as tiles.
pub fn interleave<T: WeightTile>(blocks: &[T::Block], kw: usize) -> impl Iterator<Item = T> + '_ {
    debug_assert!(blocks.len().is_multiple_of(kw * TILE));
    blocks.chunks_exact(kw * TILE).flat_map(move |rows| {
        (0..kw).map(move |b| T::interleave(std::array::from_fn(|r| &rows[r * kw + b])))
    })
}

/// Row `i`'s blocks, out of the tiles of a matrix `cols` wide.
pub fn row<T: WeightTile>(tiles: &[T], cols: usize, i: usize) -> Vec<T::Block> {
    let kw = cols / (QK * T::Block::SUB);
    let t = i / TILE;
    tiles[t * kw..(t + 1) * kw]
        .iter()
        .map(|tile| tile.block(i % TILE))
        .collect()
}
