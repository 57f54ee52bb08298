//! Time per matrix product of candor's quant kernel against candle's QMatMul, on the
//! shapes of SmolLM2-135M (Q4_1) and Gemma 3 270M (Q5_0), for decode (1 row) and a
//! prefill chunk (57 rows).
//!
//!     cargo bench -p candor-models --bench quant_matmul
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
    ];
    println!("| dtype | rows x cols | n | candle µs | candor µs | speedup |");
    println!("|---|---|---|---|---|---|");
    for (dtype, rows, cols) in shapes {
        let w = Tensor::randn(0f32, 0.1, (rows, cols), &dev).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let ours = QuantMatrix::from_qtensor(&q).unwrap();
        let candle = QMatMul::from_qtensor(q).unwrap();
        for n in [1, 57] {
            let x = Tensor::randn(0f32, 1.0, (n, cols), &dev).unwrap();
            let tc = time(|| {
                candle.forward(&x).unwrap();
            });
            let to = time(|| {
                ours.forward(&x).unwrap();
            });
            println!(
                "| {dtype:?} | {rows} x {cols} | {n} | {:.1} | {:.1} | {:.1}x |",
                tc * 1e6,
                to * 1e6,
                tc / to
            );
        }
    }
}
