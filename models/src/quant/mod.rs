//! candor's own CPU matrix product for GGUF weights in Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
//! the K-quants Q4_K and Q6_K (the bulk of every Q4_K_M file): candle multiplies some of
//! these with scalar code only, and all of them gain from keeping each chunk of weights
//! in cache for every activation row of a batched product.
//!
//! The method is ggml's (ggml-org/llama.cpp, commit 47b0c4b5488f,
//! ggml/src/ggml-cpu/arch/x86/quants.c and ggml/src/ggml-cpu/ggml-cpu.c): each row of
//! activations is quantized per block of 32 values, to Q8_1 for Q4_1 and Q5_1 weights and
//! to Q8_0 for Q5_0 and Q8_0, then every output is a sum of integer dot products of blocks scaled by
//! the blocks' f16 scales (and, with Q8_1, the weights' mins times the activation block
//! sums). [`blocks`] holds the formats and a scalar version; [`avx2`] the x86 kernels,
//! chosen at run time. Both give bitwise equal results.
//!
//! Q4_0, Q8_0, Q4_K and Q6_K matrices whose row count is a multiple of eight (all of
//! every model here) are stored interleaved eight rows at a time ([`tiles`]): their
//! kernels compute eight outputs in the lanes of one SIMD register, about half the
//! instructions of a row at a time. The other formats and shapes go one row at a time.
//!
//! Threads split the weight rows into chunks that stay in cache. Prefill quantizes all
//! activation rows once, then multiplies each chunk with one tile of activation rows after
//! another, so a weight block is read from memory once and from cache once per tile.
//!
//! This module owns the weights' bytes (copied once out of candle's `QTensor`) and knows
//! nothing of models; [`crate::weights`] decides which matrices use it.

mod blocks;
mod tiles;

#[cfg(target_arch = "x86_64")]
mod avx2;

use blocks::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8, BlockQ8_0,
    WeightBlock, QK,
};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use tiles::{TileQ4K, TileQ4_0, TileQ6K, TileQ8_0, TILE};

/// Activation rows multiplied together with one weight row (or tile of eight).
const TILE_ROWS: usize = 4;

/// Bytes of weights one work item reads, sized to stay in L1/L2 while a tile of
/// activation rows after another goes by.
const CHUNK_BYTES: usize = 32 * 1024;

/// Block dot products below which a product runs on the calling thread: waking the pool
/// costs more than the work (decode with a small matrix, such as a GQA k/v projection).
const MIN_PARALLEL_BLOCKS: usize = 8 * 1024;

/// Which kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    /// The fastest this CPU supports.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::has_avx2_fma_f16c() {
            return Isa::Avx2;
        }
        Isa::Scalar
    }
}

enum Blocks {
    Q4_0(Vec<BlockQ4_0>),
    Q4_1(Vec<BlockQ4_1>),
    Q5_0(Vec<BlockQ5_0>),
    Q5_1(Vec<BlockQ5_1>),
    Q8_0(Vec<BlockQ8_0>),
    Q4K(Vec<BlockQ4K>),
    Q6K(Vec<BlockQ6K>),
    /// Q4_0 with rows a multiple of [`TILE`], interleaved ([`tiles`]).
    Q4_0x8(Vec<TileQ4_0>),
    /// Q4_K with rows a multiple of [`TILE`], interleaved.
    Q4Kx8(Vec<TileQ4K>),
    /// Q6_K with rows a multiple of [`TILE`], interleaved.
    Q6Kx8(Vec<TileQ6K>),
    /// Q8_0 with rows a multiple of [`TILE`], interleaved.
    Q8_0x8(Vec<TileQ8_0>),
}

/// Calls `$body` with `$b` bound to the blocks, whatever their format, or `$tiled` with
/// `$t` bound to the tiles of an interleaved format.
macro_rules! each_format {
    ($blocks:expr, $b:ident => $body:expr, $t:ident => $tiled:expr) => {
        match $blocks {
            Blocks::Q4_0($b) => $body,
            Blocks::Q4_1($b) => $body,
            Blocks::Q5_0($b) => $body,
            Blocks::Q5_1($b) => $body,
            Blocks::Q8_0($b) => $body,
            Blocks::Q4K($b) => $body,
            Blocks::Q6K($b) => $body,
            Blocks::Q4_0x8($t) => $tiled,
            Blocks::Q4Kx8($t) => $tiled,
            Blocks::Q6Kx8($t) => $tiled,
            Blocks::Q8_0x8($t) => $tiled,
        }
    };
}

/// A (rows, cols) weight matrix in one of the formats above, row-major, as stored in GGUF.
pub struct QuantMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
    /// Detected once at load.
    isa: Isa,
}

impl std::fmt::Debug for QuantMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantMatrix")
            .field("dtype", &self.dtype())
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("isa", &self.isa)
            .finish()
    }
}

/// `n` blocks read straight from `reader` into the vector that keeps them: a block type's
/// fields, in order, are its bytes in a GGUF file (checked against candle's kernels and
/// dequantization in the tests).
fn read_blocks<W: WeightBlock>(
    n: usize,
    reader: &mut impl std::io::Read,
) -> std::io::Result<Vec<W>> {
    assert!(
        std::mem::size_of::<W>() == W::BYTES && std::mem::align_of::<W>() == 1,
        "weight blocks are byte arrays"
    );
    // Zeroed by the allocator (fresh pages from the OS for large sizes, no memset).
    let mut bytes = vec![0u8; n * W::BYTES];
    reader.read_exact(&mut bytes)?;
    bytes.shrink_to_fit();
    assert_eq!(bytes.capacity(), bytes.len());
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    // SAFETY: every weight block is a repr(C) struct of byte arrays (asserted: W::BYTES
    // bytes, alignment 1), for which every bit pattern is a value; the allocation holds
    // exactly n * W::BYTES bytes at alignment 1, the layout of n blocks, and is handed
    // over whole (the byte vector is never dropped).
    Ok(unsafe { Vec::from_raw_parts(bytes.as_mut_ptr().cast::<W>(), n, n) })
}

/// `rows` (a multiple of [`TILE`]) of `kw` blocks each, read from `reader` eight rows at
/// a time and interleaved as they come: the matrix is never held twice.
fn read_tiles<T: tiles::WeightTile>(
    rows: usize,
    kw: usize,
    reader: &mut impl std::io::Read,
) -> std::io::Result<Vec<T>> {
    debug_assert!(rows.is_multiple_of(TILE));
    let mut out = Vec::with_capacity(rows / TILE * kw);
    for _ in 0..rows / TILE {
        out.extend(tiles::interleave::<T>(&read_blocks(TILE * kw, reader)?, kw));
    }
    Ok(out)
}

impl QuantMatrix {
    /// Whether this module multiplies weights of `dtype`.
    pub fn supports(dtype: GgmlDType) -> bool {
        matches!(
            dtype,
            GgmlDType::Q4_0
                | GgmlDType::Q4_1
                | GgmlDType::Q5_0
                | GgmlDType::Q5_1
                | GgmlDType::Q8_0
                | GgmlDType::Q4K
                | GgmlDType::Q6K
        )
    }

    /// Whether this module, rather than candle, should multiply weights of `dtype` on this
    /// CPU. Q4_1, Q5_0 and Q5_1 have only scalar kernels in candle, and its Q4_0 products
    /// are slower than these (`cargo bench -p candor-models --bench quant_matmul`). For
    /// Q8_0, Q4_K and Q6_K candle repacks the weights for 8-bit dot product instructions
    /// (AVX-512 VNNI, AVX-VNNI), 2-5x faster than these AVX2 kernels where the CPU has
    /// them; elsewhere these run. `CANDOR_QUANT_KERNELS=candor` or `=candle` overrides
    /// the choice, for measurements.
    pub fn preferred_for(dtype: GgmlDType) -> bool {
        if !Self::supports(dtype) {
            return false;
        }
        match std::env::var("CANDOR_QUANT_KERNELS").as_deref() {
            Ok("candor") => return true,
            Ok("candle") => return false,
            _ => {}
        }
        match dtype {
            GgmlDType::Q8_0 | GgmlDType::Q4K | GgmlDType::Q6K => !crate::cpu::has_vnni(),
            _ => true,
        }
    }

    /// Copies a 2-D quantized tensor's blocks; the `QTensor` can be dropped afterwards.
    pub fn from_qtensor(q: &QTensor) -> candle_core::Result<Self> {
        let (rows, cols) = q.shape().dims2()?;
        let data = q.data()?;
        let dtype = q.dtype();
        let expected = rows * cols / dtype.block_size() * dtype.type_size();
        if data.len() != expected {
            candle_core::bail!(
                "quantized matrix: {} bytes for a ({rows}, {cols}) {dtype:?} tensor",
                data.len()
            );
        }
        Self::read(dtype, rows, cols, &mut &data[..])
    }

    /// Reads a (rows, cols) matrix of `dtype` blocks, as a GGUF file stores it, from
    /// `reader` straight into its own memory: one copy, where a `QTensor` on the way
    /// takes three (a read buffer, candle's storage, these blocks).
    pub fn read(
        dtype: GgmlDType,
        rows: usize,
        cols: usize,
        reader: &mut impl std::io::Read,
    ) -> candle_core::Result<Self> {
        let per_block = dtype.block_size();
        if !cols.is_multiple_of(per_block) {
            candle_core::bail!(
                "quantized matrix: {cols} columns are not whole {dtype:?} blocks of {per_block}"
            );
        }
        let n = rows * cols / per_block;
        let kw = cols / per_block; // blocks (K-quants: super-blocks) per row
        let blocks = match dtype {
            GgmlDType::Q4_0 if rows.is_multiple_of(TILE) => {
                Blocks::Q4_0x8(read_tiles(rows, kw, reader)?)
            }
            GgmlDType::Q4_0 => Blocks::Q4_0(read_blocks(n, reader)?),
            GgmlDType::Q4_1 => Blocks::Q4_1(read_blocks(n, reader)?),
            GgmlDType::Q5_0 => Blocks::Q5_0(read_blocks(n, reader)?),
            GgmlDType::Q5_1 => Blocks::Q5_1(read_blocks(n, reader)?),
            GgmlDType::Q8_0 if rows.is_multiple_of(TILE) => {
                Blocks::Q8_0x8(read_tiles(rows, kw, reader)?)
            }
            GgmlDType::Q8_0 => Blocks::Q8_0(read_blocks(n, reader)?),
            GgmlDType::Q4K if rows.is_multiple_of(TILE) => {
                Blocks::Q4Kx8(read_tiles(rows, kw, reader)?)
            }
            GgmlDType::Q4K => Blocks::Q4K(read_blocks(n, reader)?),
            GgmlDType::Q6K if rows.is_multiple_of(TILE) => {
                Blocks::Q6Kx8(read_tiles(rows, kw, reader)?)
            }
            GgmlDType::Q6K => Blocks::Q6K(read_blocks(n, reader)?),
            other => candle_core::bail!(
                "quantized matrix: {other:?} is not Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K or Q6_K"
            ),
        };
        // `cols` is whole blocks (checked above) and `n` blocks were read.
        Ok(Self {
            rows,
            cols,
            blocks,
            isa: Isa::detect(),
        })
    }

    /// The matrices' rows one after the other: one product computes all of them (the
    /// q/k/v or gate/up projections of one input). None unless they share format, layout
    /// (interleaved or not) and width.
    pub fn stack(parts: &[&QuantMatrix]) -> Option<QuantMatrix> {
        let first = parts.first()?;
        if parts
            .iter()
            .any(|m| m.cols != first.cols || m.dtype() != first.dtype())
        {
            return None;
        }
        // The parts' blocks of format $f, concatenated (all parts have that format).
        macro_rules! cat {
            ($f:ident) => {
                Blocks::$f(
                    parts
                        .iter()
                        .map(|m| match &m.blocks {
                            Blocks::$f(b) => Some(b.as_slice()),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()?
                        .concat(),
                )
            };
        }
        let blocks = match &first.blocks {
            Blocks::Q4_0(_) => cat!(Q4_0),
            Blocks::Q4_1(_) => cat!(Q4_1),
            Blocks::Q5_0(_) => cat!(Q5_0),
            Blocks::Q5_1(_) => cat!(Q5_1),
            Blocks::Q8_0(_) => cat!(Q8_0),
            Blocks::Q4K(_) => cat!(Q4K),
            Blocks::Q6K(_) => cat!(Q6K),
            Blocks::Q4_0x8(_) => cat!(Q4_0x8),
            Blocks::Q4Kx8(_) => cat!(Q4Kx8),
            Blocks::Q6Kx8(_) => cat!(Q6Kx8),
            Blocks::Q8_0x8(_) => cat!(Q8_0x8),
        };
        Some(QuantMatrix {
            rows: parts.iter().map(|m| m.rows).sum(),
            cols: first.cols,
            blocks,
            isa: first.isa,
        })
    }

    pub fn dtype(&self) -> GgmlDType {
        match &self.blocks {
            Blocks::Q4_0(_) | Blocks::Q4_0x8(_) => GgmlDType::Q4_0,
            Blocks::Q4_1(_) => GgmlDType::Q4_1,
            Blocks::Q5_0(_) => GgmlDType::Q5_0,
            Blocks::Q5_1(_) => GgmlDType::Q5_1,
            Blocks::Q8_0(_) | Blocks::Q8_0x8(_) => GgmlDType::Q8_0,
            Blocks::Q4K(_) | Blocks::Q4Kx8(_) => GgmlDType::Q4K,
            Blocks::Q6K(_) | Blocks::Q6Kx8(_) => GgmlDType::Q6K,
        }
    }

    /// (rows, cols).
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// x: (..., cols) -> (..., rows), `x @ self^T`, in x's dtype.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        x.apply_op1_no_bwd(self)?.to_dtype(dtype)
    }

    /// Rows `ids` of the matrix, dequantized: ids (...) -> (..., cols) in f32.
    pub fn embedding(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let mut dims = ids.dims().to_vec();
        dims.push(self.cols);
        let ids = ids.flatten_all()?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let mut out = vec![0f32; ids.len() * self.cols];
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            let id = id as usize;
            if id >= self.rows {
                candle_core::bail!("embedding: id {id} is outside the {} rows", self.rows);
            }
            each_format!(&self.blocks,
                b => dequantize_row(self.row(b, id), row),
                t => dequantize_row(&tiles::row(t, self.cols, id), row));
        }
        Tensor::from_vec(out, dims, &candle_core::Device::Cpu)
    }

    fn row<'a, W: WeightBlock>(&self, blocks: &'a [W], i: usize) -> &'a [W] {
        let kb = self.cols / (QK * W::SUB);
        &blocks[i * kb..(i + 1) * kb]
    }

    /// x: (n, cols) row-major -> (n, rows) row-major.
    pub fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        self.matmul_with(self.isa, x, n)
    }

    fn matmul_with(&self, isa: Isa, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(x.len(), n * self.cols, "activations are not (n, cols)");
        each_format!(&self.blocks,
            b => matmul(isa, b, self.rows, self.cols, x, n),
            t => matmul_tiled(isa, t, self.rows, self.cols, x, n))
    }
}

/// candle's (and ggml's) `dequantize_row_*`: `d * q + m`, or `d * q` with signed `q`.
fn dequantize_row<W: WeightBlock>(blocks: &[W], out: &mut [f32]) {
    let subs = blocks.iter().flat_map(|b| (0..W::SUB).map(move |j| (b, j)));
    for ((b, j), out) in subs.zip(out.chunks_exact_mut(QK)) {
        let (d0, d1, m) = b.scales(j);
        for (i, (o, q)) in out.iter_mut().zip(b.values(j)).enumerate() {
            let d = if i < QK / 2 { d0 } else { d1 };
            *o = if W::HAS_MIN {
                q as f32 * d + m
            } else {
                q as f32 * d
            };
        }
    }
}

/// Implemented by every weight format, whatever kernels this target has.
#[cfg(target_arch = "x86_64")]
trait Kernels: avx2::Avx2Dot {}
#[cfg(target_arch = "x86_64")]
impl<W: avx2::Avx2Dot> Kernels for W {}
#[cfg(not(target_arch = "x86_64"))]
trait Kernels: WeightBlock {}
#[cfg(not(target_arch = "x86_64"))]
impl<W: WeightBlock> Kernels for W {}

/// Implemented by every interleaved format, whatever kernels this target has.
#[cfg(target_arch = "x86_64")]
trait TileKernels: avx2::Avx2Tile {}
#[cfg(target_arch = "x86_64")]
impl<T: avx2::Avx2Tile> TileKernels for T {}
#[cfg(not(target_arch = "x86_64"))]
trait TileKernels: tiles::WeightTile {}
#[cfg(not(target_arch = "x86_64"))]
impl<T: tiles::WeightTile> TileKernels for T {}

fn quantize_rows(isa: Isa, x: &[f32], out: &mut [BlockQ8], with_sum: bool) {
    match isa {
        Isa::Scalar => blocks::quantize_row(x, out, with_sum),
        // SAFETY: Isa::Avx2 is only chosen when the CPU has AVX2, FMA and F16C.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::quantize_row(x, out, with_sum) },
    }
}

/// One weight row (`w`, kw blocks) against `t` activation rows (`a`, t * kw blocks of
/// the format's activations): `out[r] = w · a_r`.
///
/// One weight row at a time: every thread then reads its weights in one sequential stream,
/// which the hardware prefetchers follow. Multiplying four separate rows at once (four
/// streams) looked better on matrices that stay in cache, but decode reads every weight
/// from memory once per token, and there the four streams ran 1.3x slower end to end
/// (SmolLM2 and Gemma 3 decode, and 1.6x on a 30 MB Q8_0 product). The interleaved
/// layout ([`tiles`]) gets eight rows at once from one stream.
fn dot_tile<W: Kernels>(isa: Isa, kw: usize, w: &[W], a: &[W::Act], out: &mut [f32]) {
    match isa {
        Isa::Scalar => {
            for (ar, out) in a.chunks_exact(kw).zip(out) {
                *out = W::dot(w, ar);
            }
        }
        // SAFETY (all arms): Isa::Avx2 is only chosen when the CPU has AVX2, FMA and F16C;
        // every row has kw blocks and out has one element per activation row.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe {
            let a = |i: usize| &a[i * kw..(i + 1) * kw];
            match out.len() {
                1 => W::dot_tile::<1>(w, [a(0)], out),
                2 => W::dot_tile::<2>(w, [a(0), a(1)], out),
                3 => W::dot_tile::<3>(w, [a(0), a(1), a(2)], out),
                4 => W::dot_tile::<4>(w, [a(0), a(1), a(2), a(3)], out),
                t => unreachable!("no kernel for {t} activation rows"),
            }
        },
    }
}

/// x (n, cols) times the transpose of `w` (rows, cols): (n, rows).
fn matmul<W: Kernels>(
    isa: Isa,
    w: &[W],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    multiply(isa, w, rows, &quantize_all(isa, x, cols, W::HAS_MIN), n)
}

/// Step 1 of a product: every activation row quantized once, x (n, cols) -> (n, cols /
/// 32) blocks.
fn quantize_all(isa: Isa, x: &[f32], cols: usize, with_sum: bool) -> Vec<BlockQ8> {
    let mut acts = vec![BlockQ8::ZERO; x.len() / QK];
    for (x, a) in x.chunks_exact(cols).zip(acts.chunks_exact_mut(cols / QK)) {
        quantize_rows(isa, x, a, with_sum);
    }
    acts
}

/// Step 2: splits `units` (weight rows, or tiles of eight) of `unit_bytes` each into
/// chunks that fit in cache, enough of them to keep every thread busy, and calls `work`
/// with each chunk's range of units, on the pool's threads unless the product is
/// `blocks` (of 32 values times an activation row) below [`MIN_PARALLEL_BLOCKS`].
fn in_chunks(
    units: usize,
    unit_bytes: usize,
    blocks: usize,
    work: impl Fn(std::ops::Range<usize>) + Sync,
) {
    let threads = candle_core::utils::barrier_pool().n_workers() + 1;
    let n_chunks = (units * unit_bytes)
        .div_ceil(CHUNK_BYTES)
        .max(4 * threads)
        .min(units)
        .max(1);
    let per_chunk = units.div_ceil(n_chunks);
    let n_chunks = units.div_ceil(per_chunk);
    let chunk = |c: usize| work(c * per_chunk..units.min((c + 1) * per_chunk));
    if blocks < MIN_PARALLEL_BLOCKS {
        (0..n_chunks).for_each(chunk);
    } else {
        // candle's barrier pool: its workers spin a while before parking, so the many small
        // products of one decode step do not each pay a thread wake-up (rayon's workers
        // sleep between them).
        candle_core::utils::barrier_pool().execute_chunked(n_chunks, |range| range.for_each(chunk));
    }
}

/// Quantized activations `acts` (n, cols / 32) times the transpose of `w` (rows, kw
/// blocks): (n, rows).
fn multiply<W: Kernels>(isa: Isa, w: &[W], rows: usize, acts: &[BlockQ8], n: usize) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    // The activation blocks as the format's kernel reads them: one per weight block.
    let acts = W::group(acts);
    let kw = acts.len() / n;
    let mut out = vec![0f32; n * rows];
    let columns = Columns::new(&mut out);
    in_chunks(rows, kw * W::BYTES, rows * kw * W::SUB * n, |chunk| {
        let first = chunk.start;
        let w = &w[chunk.start * kw..chunk.end * kw];
        let mut tile = [0f32; TILE_ROWS];
        // Step 3: tile after tile of activation rows, each against every row of the chunk.
        for t0 in (0..n).step_by(TILE_ROWS) {
            let t = TILE_ROWS.min(n - t0);
            let a = &acts[t0 * kw..(t0 + t) * kw];
            let tile = &mut tile[..t];
            for (i, wr) in w.chunks_exact(kw).enumerate() {
                dot_tile(isa, kw, wr, a, tile);
                let col = first + i;
                for (j, &v) in tile.iter().enumerate() {
                    // SAFETY: output column `col` belongs to this chunk alone.
                    unsafe { columns.write((t0 + j) * rows + col, v) };
                }
            }
        }
    });
    out
}

/// One tile row (`w`, kw tiles: eight weight rows) against `t` activation rows (`a`,
/// t * kw blocks): `out[r][i] = w_i · a_r`.
fn dot_tiles<T: TileKernels>(isa: Isa, kw: usize, w: &[T], a: &[T::Act], out: &mut [[f32; TILE]]) {
    match isa {
        Isa::Scalar => {
            for (ar, out) in a.chunks_exact(kw).zip(out) {
                *out = T::dot(w, ar);
            }
        }
        // SAFETY (all arms): Isa::Avx2 is only chosen when the CPU has AVX2, FMA and F16C;
        // every row has kw blocks and out has one element per activation row.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe {
            let a = |i: usize| &a[i * kw..(i + 1) * kw];
            match out.len() {
                1 => T::dot_tiles::<1>(w, [a(0)], out),
                2 => T::dot_tiles::<2>(w, [a(0), a(1)], out),
                3 => T::dot_tiles::<3>(w, [a(0), a(1), a(2)], out),
                4 => T::dot_tiles::<4>(w, [a(0), a(1), a(2), a(3)], out),
                t => unreachable!("no kernel for {t} activation rows"),
            }
        },
    }
}

/// x (n, cols) times the transpose of the interleaved `w` (rows, cols): (n, rows), as
/// [`matmul`] but eight weight rows at a time.
fn matmul_tiled<T: TileKernels>(
    isa: Isa,
    w: &[T],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    let acts = quantize_all(isa, x, cols, T::Block::HAS_MIN);
    multiply_tiled(isa, w, rows, &acts, n)
}

/// Quantized activations `acts` (n, cols / 32) times the transpose of the interleaved `w`
/// (rows, cols): (n, rows).
fn multiply_tiled<T: TileKernels>(
    isa: Isa,
    w: &[T],
    rows: usize,
    acts: &[BlockQ8],
    n: usize,
) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    let acts = T::group(acts);
    let kw = acts.len() / n;
    let mut out = vec![0f32; n * rows];
    let columns = Columns::new(&mut out);
    let blocks = rows * kw * T::Block::SUB * n;
    in_chunks(
        rows / TILE,
        kw * std::mem::size_of::<T>(),
        blocks,
        |groups| {
            let mut tile = [[0f32; TILE]; TILE_ROWS];
            for t0 in (0..n).step_by(TILE_ROWS) {
                let t = TILE_ROWS.min(n - t0);
                let a = &acts[t0 * kw..(t0 + t) * kw];
                let tile = &mut tile[..t];
                for g in groups.clone() {
                    dot_tiles(isa, kw, &w[g * kw..(g + 1) * kw], a, tile);
                    for (j, outs) in tile.iter().enumerate() {
                        for (i, &v) in outs.iter().enumerate() {
                            // SAFETY: output columns 8g..8g + 8 belong to this chunk alone.
                            unsafe { columns.write((t0 + j) * rows + TILE * g + i, v) };
                        }
                    }
                }
            }
        },
    );
    out
}

/// An output matrix that work items fill concurrently, each its own columns.
struct Columns<'a> {
    ptr: *mut f32,
    len: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: writers promise (see `write`) to touch disjoint elements.
unsafe impl Sync for Columns<'_> {}

impl<'a> Columns<'a> {
    fn new(out: &'a mut [f32]) -> Self {
        Self {
            ptr: out.as_mut_ptr(),
            len: out.len(),
            _out: std::marker::PhantomData,
        }
    }

    /// # Safety
    /// No other thread reads or writes element `i` while this `Columns` lives.
    unsafe fn write(&self, i: usize, v: f32) {
        assert!(i < self.len, "output index {i} out of {}", self.len);
        // SAFETY: in bounds, and element i is this caller's alone.
        unsafe { self.ptr.add(i).write(v) };
    }
}

impl CustomOp1 for QuantMatrix {
    fn name(&self) -> &'static str {
        "candor-quant-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("quantized matmul: activations are not contiguous");
        };
        let dims = layout.shape().dims();
        if dims.last() != Some(&self.cols) {
            candle_core::bail!(
                "quantized matmul: activations {dims:?} do not end in {} columns",
                self.cols
            );
        }
        let CpuStorage::F32(x) = storage else {
            candle_core::bail!("quantized matmul: activations are not f32");
        };
        let x = &x[start..end];
        let n = x.len() / self.cols;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("rank >= 1") = self.rows;
        Ok((CpuStorage::F32(self.matmul(x, n)), Shape::from(out_dims)))
    }
}

#[cfg(test)]
mod tests;
