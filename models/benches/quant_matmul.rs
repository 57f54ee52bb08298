//! Time per matrix product of candor's quant kernel against candle's QMatMul, on the
//! shapes of SmolLM2-135M (Q4_1), Gemma 3 270M (Q5_0, and its Q8_0 output layer cut to
//! 65,536 rows) and DeepSeek-R1-Distill-Qwen-1.5B
//! (hidden 1536, FFN 8960: Q4_K, Q6_K, Q4_0, Q8_0; the 151,936-row output layer cut to
//! 32,768 rows), for decode (1 row) and a prefill chunk (57 rows, and 256 for the 1.5B
//! shapes), with the weights' GB/s of candor's decode.
//!
//!     cargo bench -p candor-models --bench quant_matmul [-- FILTER]
//!
//! FILTER keeps the shapes whose dtype name contains it (e.g. `Q4K`).
//!
//! The machines we run on are shared: compare the two columns, not runs.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use candor_models::quant::QuantMatrix;
use std::time::Instant;

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let mut reps = 0;
        while t.elapsed().as_secs_f64() < 0.05 {
            f();
            reps += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    best
}

fn main() {
    let dev = Device::Cpu;
    let shapes = [
        (GgmlDType::Q4_1, 576, 576),
        (GgmlDType::Q4_1, 192, 576),
        (GgmlDType::Q4_1, 1536, 576),
        (GgmlDType::Q4_1, 576, 1536),
        (GgmlDType::Q5_0, 1024, 640),
        (GgmlDType::Q5_0, 256, 640),
        (GgmlDType::Q5_0, 2048, 640),
        (GgmlDType::Q5_1, 1536, 576),
        (GgmlDType::Q4K, 1536, 1536),
        (GgmlDType::Q4K, 8960, 1536),
        (GgmlDType::Q6K, 1536, 8960),
        (GgmlDType::Q6K, 32768, 1536),
        (GgmlDType::Q4_0, 8960, 1536),
        (GgmlDType::Q8_0, 8960, 1536),
        // Gemma 3 270M's tied output layer (262,144 rows) cut to 65,536 rows.
        (GgmlDType::Q8_0, 65536, 640),
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!("| dtype | rows x cols | n | candle µs | candor µs | speedup | candor GB/s |");
    println!("|---|---|---|---|---|---|---|");
    for (dtype, rows, cols) in shapes {
        if filter
            .as_ref()
            .is_some_and(|f| !format!("{dtype:?}").contains(f.as_str()))
        {
            continue;
        }
        let w = Tensor::randn(0f32, 0.1, (rows, cols), &dev).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let bytes = q.storage_size_in_bytes() as f64;
        let ours = QuantMatrix::from_qtensor(&q).unwrap();
        let candle = QMatMul::from_qtensor(q).unwrap();
        let ns: &[usize] = if cols >= 1536 {
            &[1, 57, 256]
        } else {
            &[1, 57]
        };
        for &n in ns {
            let x = Tensor::randn(0f32, 1.0, (n, cols), &dev).unwrap();
            let tc = time(|| {
                candle.forward(&x).unwrap();
            });
            let to = time(|| {
                ours.forward(&x).unwrap();
            });
            println!(
                "| {dtype:?} | {rows} x {cols} | {n} | {:.1} | {:.1} | {:.2}x | {:.1} |",
                tc * 1e6,
                to * 1e6,
                tc / to,
                bytes / to / 1e9
            );
        }
    }
}
