//! The kernels against candle (same formats, scalar code), against an f64 evaluation of
//! the same quantized numbers, and against each other (scalar, AVX2, one row or many).

use super::*;
use candle_core::quantized::QMatMul;
use candle_core::{Device, Module};
use std::sync::Arc;

const TYPES: [GgmlDType; 7] = [
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q4K,
    GgmlDType::Q6K,
];

fn is_k_quant(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4K | GgmlDType::Q6K)
}

/// `cols` rounded up to whole blocks of `dtype` (256 values for the K-quants).
fn width(dtype: GgmlDType, cols: usize) -> usize {
    if is_k_quant(dtype) {
        cols.div_ceil(256) * 256
    } else {
        cols
    }
}

/// Deterministic values roughly in (-scale, scale), with a few larger outliers as real
/// activations have.
fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if i % 97 == 13 {
                8.0 * u * scale
            } else {
                u * scale
            }
        })
        .collect()
}

fn quantized(dtype: GgmlDType, rows: usize, cols: usize, seed: u64) -> QTensor {
    let w = Tensor::from_vec(values(seed, rows * cols, 0.1), (rows, cols), &Device::Cpu).unwrap();
    QTensor::quantize(&w, dtype).unwrap()
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::Scalar];
    if Isa::detect() != Isa::Scalar {
        v.push(Isa::detect());
    }
    v
}

/// The result computed in f64 from the same quantized weights and activations: what any
/// correct kernel of this method must give up to f32 rounding.
fn exact(m: &QuantMatrix, x: &[f32], n: usize) -> Vec<f32> {
    fn go<W: WeightBlock>(w: &[W], rows: usize, cols: usize, x: &[f32], n: usize) -> Vec<f32> {
        let kb = cols / QK;
        let kw = kb / W::SUB;
        let mut out = vec![0f32; n * rows];
        for i in 0..n {
            let mut a = vec![BlockQ8::ZERO; kb];
            blocks::quantize_row(&x[i * cols..(i + 1) * cols], &mut a, W::HAS_MIN);
            for j in 0..rows {
                let mut sum = 0f64;
                let subs = w[j * kw..(j + 1) * kw]
                    .iter()
                    .flat_map(|wb| (0..W::SUB).map(move |s| (wb, s)));
                for ((wb, sub), ab) in subs.zip(&a) {
                    let (d0, d1, m) = wb.scales(sub);
                    for (k, (&v, q)) in wb.values(sub).iter().zip(ab.qs).enumerate() {
                        let d = if k < QK / 2 { d0 } else { d1 };
                        sum += d as f64 * ab.d as f64 * (v as i32 * q as i32) as f64;
                    }
                    sum += m as f64 * ab.s as f64;
                }
                out[i * rows + j] = sum as f32;
            }
        }
        out
    }
    each_format!(&m.blocks,
        b => go(b, m.rows, m.cols, x, n),
        t => go(&untiled(t, m.rows, m.cols), m.rows, m.cols, x, n))
}

/// Every row's blocks, one row after another, out of tiles.
fn untiled<T: tiles::WeightTile>(t: &[T], rows: usize, cols: usize) -> Vec<T::Block> {
    (0..rows).flat_map(|i| tiles::row(t, cols, i)).collect()
}

#[test]
fn matches_exact_evaluation() {
    let cols = 512;
    for (dtype, rows) in TYPES.into_iter().flat_map(|t| [(t, 37), (t, 40)]) {
        let m = QuantMatrix::from_qtensor(&quantized(dtype, rows, cols, 1)).unwrap();
        for n in [1, 2, 3, 4, 5, 7, 13] {
            let x = values(100 + n as u64, n * cols, 1.0);
            let want = exact(&m, &x, n);
            for isa in isas() {
                let got = m.matmul_with(isa, &x, n);
                let d = max_rel_diff(&got, &want);
                assert!(d < 1e-6, "{dtype:?} {isa:?} n={n}: {d}");
            }
        }
    }
}

/// candle's `quantize_row_q8_0` / `quantize_row_q8_1` (k_quants.rs), which round
/// differently from ggml's x86 code that we follow: they multiply by the reciprocal of
/// the rounded scale, round ties away from zero, and round the block sum through f16
/// before multiplying it by the f16 scale.
fn quantize_like_candle(xs: &[f32], out: &mut [BlockQ8], with_sum: bool) {
    for (x, y) in xs.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in y.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        let dh = half::f16::from_f32(d);
        y.d = dh.to_f32();
        y.s = if with_sum {
            (half::f16::from_f32(sum as f32) * dh).to_f32()
        } else {
            0.0
        };
    }
}

fn candle_matmul(q: &Arc<QTensor>, x: &[f32], n: usize) -> Vec<f32> {
    let cols = x.len() / n;
    let xt = Tensor::from_vec(x.to_vec(), (n, cols), &Device::Cpu).unwrap();
    let y = QMatMul::from_arc(q.clone()).unwrap().forward(&xt).unwrap();
    y.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// candle multiplies the simple formats by the same method in scalar code: given the same
/// activation blocks, only the order of the f32 additions differs. (For the K-quants it
/// quantizes activations per 256 values, Q8_K: see `near_candle_qmatmul_end_to_end`.)
#[test]
fn matches_candle_qmatmul() {
    let cols = 576;
    for dtype in TYPES.into_iter().filter(|&t| !is_k_quant(t)) {
        for rows in [1, 37, 64] {
            let q = Arc::new(quantized(dtype, rows, cols, rows as u64));
            let m = QuantMatrix::from_qtensor(&q).unwrap();
            for n in [1, 3, 4, 9, 32] {
                let x = values(7 * n as u64, n * cols, 1.0);
                let mut acts = vec![BlockQ8::ZERO; n * cols / QK];
                for (x, a) in x.chunks_exact(cols).zip(acts.chunks_exact_mut(cols / QK)) {
                    let with_sum = matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_1);
                    quantize_like_candle(x, a, with_sum);
                }
                let want = candle_matmul(&q, &x, n);
                for isa in isas() {
                    let got = each_format!(&m.blocks,
                        b => multiply(isa, b, rows, &acts, n),
                        t => multiply_tiled(isa, t, rows, &acts, n));
                    let d = max_rel_diff(&got, &want);
                    assert!(d < 1e-5, "{dtype:?} {isa:?} rows={rows} n={n}: {d}");
                }
            }
        }
    }
}

/// End to end, with ggml's activation rounding: Q4_0, Q5_0 and Q8_0 (no block sums) stay
/// within float noise of candle; Q4_1 and Q5_1 move by the f16 rounding of the block sums
/// `s`, whose products with the weights' mins are large next to the result; the K-quants
/// by the different activation blocks (candle's Q8_K: one scale per 256 values).
#[test]
fn near_candle_qmatmul_end_to_end() {
    for dtype in TYPES {
        let cols = width(dtype, 576);
        let q = Arc::new(quantized(dtype, 64, cols, 2));
        let m = QuantMatrix::from_qtensor(&q).unwrap();
        for n in [1, 5] {
            let x = values(3 * n as u64, n * cols, 1.0);
            let xt = Tensor::from_vec(x.clone(), (n, cols), &Device::Cpu).unwrap();
            let got = m.forward(&xt).unwrap().flatten_all().unwrap();
            let d = max_rel_diff(&got.to_vec1::<f32>().unwrap(), &candle_matmul(&q, &x, n));
            let tol = match dtype {
                GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0 => 1e-5,
                GgmlDType::Q4K | GgmlDType::Q6K => 2e-2,
                _ => 5e-3,
            };
            assert!(d < tol, "{dtype:?} n={n}: {d}");
        }
    }
}

#[test]
fn scalar_and_simd_are_bitwise_equal() {
    for (dtype, rows) in TYPES.into_iter().flat_map(|t| [(t, 41), (t, 48)]) {
        let cols = width(dtype, 320);
        let m = QuantMatrix::from_qtensor(&quantized(dtype, rows, cols, 3)).unwrap();
        for n in [1, 2, 3, 4, 6, 11] {
            let x = values(n as u64, n * cols, 2.0);
            let scalar = m.matmul_with(Isa::Scalar, &x, n);
            for isa in isas() {
                assert_eq!(m.matmul_with(isa, &x, n), scalar, "{dtype:?} {isa:?} n={n}");
            }
        }
    }
}

#[test]
fn reading_the_file_bytes_gives_the_matrix_a_qtensor_gives() {
    for (dtype, rows) in TYPES.into_iter().flat_map(|t| [(t, 7), (t, 16)]) {
        let cols = width(dtype, 256);
        let q = quantized(dtype, rows, cols, 11);
        let want = QuantMatrix::from_qtensor(&q).unwrap();
        // The bytes as a GGUF file stores them, behind a few bytes of something else.
        let mut file = vec![0xAAu8; 3];
        file.extend_from_slice(&q.data().unwrap());
        let mut reader = std::io::Cursor::new(&file[3..]);
        let got = QuantMatrix::read(dtype, rows, cols, &mut reader).unwrap();
        let x = values(4, 3 * cols, 1.0);
        assert_eq!(got.matmul(&x, 3), want.matmul(&x, 3), "{dtype:?}");
        // A file cut short is an error, not a matrix of zeros.
        let mut short = std::io::Cursor::new(&file[3..file.len() - 1]);
        assert!(
            QuantMatrix::read(dtype, rows, cols, &mut short).is_err(),
            "{dtype:?}"
        );
    }
    let mut empty = std::io::Cursor::new(Vec::new());
    let e = QuantMatrix::read(GgmlDType::Q4K, 2, 100, &mut empty).unwrap_err();
    assert!(e.to_string().contains("not whole"), "{e}");
}

#[test]
fn a_row_does_not_depend_on_its_batch() {
    for (dtype, rows) in TYPES.into_iter().flat_map(|t| [(t, 29), (t, 32)]) {
        let cols = width(dtype, 192);
        let m = QuantMatrix::from_qtensor(&quantized(dtype, rows, cols, 5)).unwrap();
        let n = 11;
        let x = values(9, n * cols, 1.0);
        let all = m.matmul(&x, n);
        for i in 0..n {
            let one = m.matmul(&x[i * cols..(i + 1) * cols], 1);
            assert_eq!(one, all[i * rows..(i + 1) * rows], "{dtype:?} row {i}");
        }
    }
}

#[test]
fn activation_quantization_is_ggml_x86() {
    // Scale 1 (amax 127): ties round to even, as _mm256_round_ps does.
    let mut x = vec![0f32; 64];
    x[..6].copy_from_slice(&[127.0, 2.5, -3.5, 0.5, -0.5, 1.5]);
    x[32..35].copy_from_slice(&[-2.0, 1.0, 0.25]);
    for isa in isas() {
        let mut a = [BlockQ8::ZERO; 2];
        quantize_rows(isa, &x, &mut a, true);
        assert_eq!(a[0].qs[..6], [127, 2, -4, 0, 0, 2], "{isa:?}");
        assert_eq!(a[0].d, 1.0);
        assert_eq!(a[0].s, 127.0);
        // amax 2: d = 2/127 in f16, values x * 63.5.
        assert_eq!(a[1].qs[..3], [-127, 64, 16], "{isa:?}");
        assert_eq!(a[1].d, blocks::round_f16(2.0 / 127.0));
        assert_eq!(a[1].s, blocks::round_f16(2.0 / 127.0 * -47.0));
    }
    // An all-zero block.
    let mut a = [BlockQ8::ZERO];
    for isa in isas() {
        quantize_rows(isa, &[0.0; 32], &mut a, true);
        assert_eq!((a[0].qs, a[0].d, a[0].s), ([0; 32], 0.0, 0.0));
    }
}

#[test]
fn activation_quantization_scalar_and_simd_agree() {
    let x = values(11, 64 * 32, 3.0);
    let mut want = vec![BlockQ8::ZERO; 64];
    blocks::quantize_row(&x, &mut want, true);
    for isa in isas() {
        let mut got = vec![BlockQ8::ZERO; 64];
        quantize_rows(isa, &x, &mut got, true);
        assert_eq!(got, want, "{isa:?}");
    }
}

/// Our Q8 blocks against candle's `quantize_row_q8_1` on the same numbers.
#[test]
fn activation_quantization_near_candle() {
    let cols = 32 * 64;
    let x = values(13, cols, 1.0);
    let q = QTensor::quantize(
        &Tensor::from_vec(x.clone(), (1, cols), &Device::Cpu).unwrap(),
        GgmlDType::Q8_1,
    )
    .unwrap();
    let data = q.data().unwrap();
    let mut ours = vec![BlockQ8::ZERO; cols / QK];
    blocks::quantize_row(&x, &mut ours, true);
    let mut differing = 0;
    for (b, theirs) in ours.iter().zip(data.chunks_exact(36)) {
        let f = |i: usize| half::f16::from_le_bytes([theirs[i], theirs[i + 1]]).to_f32();
        assert_eq!(b.d, f(0));
        assert!(
            (b.s - f(2)).abs() <= f(2).abs() / 512.0,
            "{} vs {}",
            b.s,
            f(2)
        );
        differing +=
            b.qs.iter()
                .zip(&theirs[4..])
                .filter(|(a, c)| **a != **c as i8)
                .count();
    }
    assert!(differing <= 2, "{differing} values quantized differently");
}

#[test]
fn embedding_matches_candle() {
    for (dtype, rows) in TYPES.into_iter().flat_map(|t| [(t, 50), (t, 56)]) {
        let q = quantized(dtype, rows, width(dtype, 128), 17);
        let m = QuantMatrix::from_qtensor(&q).unwrap();
        let ids = Tensor::new(&[3u32, 0, 49, 3, 12], &Device::Cpu).unwrap();
        let want = q.embedding(&ids).unwrap().to_vec2::<f32>().unwrap();
        let got = m.embedding(&ids).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(got, want, "{dtype:?}");
    }
}

#[test]
fn rejects_what_it_cannot_multiply() {
    let q = quantized(GgmlDType::Q5K, 4, 256, 1);
    assert!(QuantMatrix::from_qtensor(&q).is_err());
    let m = QuantMatrix::from_qtensor(&quantized(GgmlDType::Q4_1, 4, 64, 1)).unwrap();
    let x = Tensor::zeros((2, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(m.forward(&x).is_err());
}

#[test]
fn stacked_matrices_give_each_part_to_the_bit() {
    for dtype in TYPES {
        let cols = width(dtype, 128);
        let parts: Vec<QuantMatrix> = [(96, 7), (32, 8), (64, 9)]
            .iter()
            .map(|&(rows, seed)| {
                QuantMatrix::from_qtensor(&quantized(dtype, rows, cols, seed)).unwrap()
            })
            .collect();
        let refs: Vec<&QuantMatrix> = parts.iter().collect();
        let stacked = QuantMatrix::stack(&refs).unwrap();
        assert_eq!(stacked.dims(), (192, cols));
        for n in [1, 3, 9] {
            let x = values(n as u64, n * cols, 1.0);
            let all = stacked.matmul(&x, n);
            let mut col = 0;
            for p in &parts {
                let want = p.matmul(&x, n);
                let rows = p.dims().0;
                for r in 0..n {
                    assert_eq!(
                        all[r * 192 + col..r * 192 + col + rows],
                        want[r * rows..(r + 1) * rows],
                        "{dtype:?}, n {n}"
                    );
                }
                col += rows;
            }
        }
    }
    // Different widths or formats do not stack.
    let a = QuantMatrix::from_qtensor(&quantized(GgmlDType::Q4_1, 32, 128, 1)).unwrap();
    let b = QuantMatrix::from_qtensor(&quantized(GgmlDType::Q4_1, 32, 64, 2)).unwrap();
    let c = QuantMatrix::from_qtensor(&quantized(GgmlDType::Q8_0, 32, 128, 3)).unwrap();
    assert!(QuantMatrix::stack(&[&a, &b]).is_none());
    assert!(QuantMatrix::stack(&[&a, &c]).is_none());
    // Nor do interleaved and plain rows.
    let d = QuantMatrix::from_qtensor(&quantized(GgmlDType::Q4_0, 32, 128, 4)).unwrap();
    let e = QuantMatrix::from_qtensor(&quantized(GgmlDType::Q4_0, 31, 128, 5)).unwrap();
    assert!(matches!(d.blocks, Blocks::Q4_0x8(_)) && matches!(e.blocks, Blocks::Q4_0(_)));
    assert!(QuantMatrix::stack(&[&d, &e]).is_none());
}

/// Every interleaved format gives back, row by row, the blocks it was made of.
#[test]
fn every_tile_format_gives_back_its_blocks() {
    fn round_trip<T: tiles::WeightTile<Block: std::fmt::Debug>>(dtype: GgmlDType) {
        let (rows, cols) = (24, 512);
        let q = quantized(dtype, rows, cols, 23);
        let data = q.data().unwrap();
        let kw = cols / QK / T::Block::SUB;
        let plain: Vec<T::Block> = read_blocks(rows * kw, &mut &data[..]).unwrap();
        let tiled: Vec<T> = tiles::interleave(&plain, kw).collect();
        for i in 0..rows {
            let back = tiles::row(&tiled, cols, i);
            let want = &plain[i * kw..(i + 1) * kw];
            assert_eq!(
                format!("{back:?}"),
                format!("{want:?}"),
                "{dtype:?} row {i}"
            );
        }
    }
    round_trip::<TileQ4_0>(GgmlDType::Q4_0);
    round_trip::<TileQ4K>(GgmlDType::Q4K);
    round_trip::<TileQ6K>(GgmlDType::Q6K);
    round_trip::<TileQ8_0>(GgmlDType::Q8_0);
}

/// Interleaving and taking a row back out give the file's blocks, and the tiles hold
/// the values the scalar kernel reads where the layout says.
#[test]
fn tiles_give_back_the_rows() {
    let (rows, cols) = (16, 96);
    let q = quantized(GgmlDType::Q4_0, rows, cols, 21);
    let data = q.data().unwrap();
    let plain: Vec<BlockQ4_0> = read_blocks(rows * cols / QK, &mut &data[..]).unwrap();
    let kw = cols / QK;
    let tiled: Vec<TileQ4_0> = tiles::interleave(&plain, kw).collect();
    assert_eq!(tiled.len(), plain.len() / TILE);
    for i in 0..rows {
        let back = tiles::row(&tiled, cols, i);
        for (b, (got, want)) in back.iter().zip(&plain[i * kw..(i + 1) * kw]).enumerate() {
            assert_eq!((got.d, got.qs), (want.d, want.qs), "row {i} block {b}");
            // Row i's byte 4g + k is tile byte 32g + 4(i % 8) + k.
            let t = &tiled[(i / TILE) * kw + b];
            for j in 0..QK / 2 {
                assert_eq!(t.qs[32 * (j / 4) + 4 * (i % TILE) + j % 4], want.qs[j]);
            }
        }
    }
}

/// Against the product of the dequantized weights in f64 (what a quantized kernel
/// approximates): candor's kernels are at least as close as candle's, and for the
/// K-quants closer, since their activations are quantized per 32 values rather than per
/// 256 (summed over several matrices and batches, as one unlucky matrix proves little).
#[test]
fn at_least_as_close_to_the_dequantized_product_as_candle() {
    for dtype in TYPES {
        let cols = width(dtype, 1024);
        let (mut ours, mut theirs) = (0f64, 0f64);
        for seed in 0..4 {
            let q = Arc::new(quantized(dtype, 48, cols, 40 + seed));
            let m = QuantMatrix::from_qtensor(&q).unwrap();
            let w = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for n in [1, 4] {
                let x = values(50 + seed * 7 + n as u64, n * cols, 1.0);
                let got = m.matmul(&x, n);
                let candle = candle_matmul(&q, &x, n);
                for i in 0..n {
                    for r in 0..48 {
                        let exact: f64 = (0..cols)
                            .map(|k| w[r * cols + k] as f64 * x[i * cols + k] as f64)
                            .sum();
                        ours += (got[i * 48 + r] as f64 - exact).powi(2);
                        theirs += (candle[i * 48 + r] as f64 - exact).powi(2);
                    }
                }
            }
        }
        let slack = if is_k_quant(dtype) { 1.0 } else { 1.05 };
        assert!(
            ours <= theirs * slack,
            "{dtype:?}: squared error {ours:.3e} against candle's {theirs:.3e}"
        );
    }
}

#[test]
fn q4k_scales_all_at_once_are_one_by_one() {
    for seed in 0..64u64 {
        let bytes: [u8; 12] = std::array::from_fn(|i| {
            (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i * 5 % 57)) as u8
                ^ (i as u8).wrapping_mul(37)
        });
        let (sc, m) = blocks::k4_scales_mins(&bytes);
        for j in 0..8 {
            assert_eq!(
                (sc[j], m[j]),
                blocks::scale_min_k4(j, &bytes),
                "seed {seed} j {j}"
            );
        }
    }
}
