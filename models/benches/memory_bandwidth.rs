//! The machine's memory read bandwidth, and what it allows a decode step: reads a 2 GiB
//! buffer (far larger than any cache) with 1 and with N threads, best of 5 passes, then,
//! for each GGUF given, divides the bandwidth by the bytes one decoded token must read
//! (every weight matrix once; of the token embedding only one row).
//!
//!     cargo bench -p candor-models --bench memory_bandwidth [-- THREADS] [MODEL.gguf ...]
//!
//! The decode bound is an upper limit: it leaves out the KV cache and activations, and
//! a shared machine's other work lowers what is measured.

use candle_core::quantized::gguf_file;
use std::time::Instant;

/// Reads `buf` once, summing it so that nothing is optimized away.
fn read(buf: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    for chunk in buf.chunks_exact(8) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(*x);
        }
    }
    acc.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// GB/s of `threads` threads reading disjoint parts of `buf`, best of 5.
fn bandwidth(buf: &[u64], threads: usize) -> f64 {
    let part = buf.len().div_ceil(threads);
    let mut best = f64::INFINITY;
    let mut sink = 0u64;
    for _ in 0..5 {
        let t = Instant::now();
        sink ^= std::thread::scope(|s| {
            let handles: Vec<_> = buf.chunks(part).map(|c| s.spawn(move || read(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a reader thread"))
                .fold(0, |a, b| a ^ b)
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    std::mem::size_of_val(buf) as f64 / best / 1e9
}

/// Bytes one decoded token reads from the weights of a GGUF file: every tensor but the
/// token embedding, of which one row (the output layer reads it whole when it is tied).
fn bytes_per_token(path: &str) -> Result<(u64, u64), String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let content = gguf_file::Content::read(&mut f).map_err(|e| e.to_string())?;
    let size = |t: &gguf_file::TensorInfo| {
        let n = t.shape.elem_count();
        (n / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
    };
    let tied = !content.tensor_infos.contains_key("output.weight");
    let mut total = 0;
    let mut per_token = 0;
    for (name, t) in &content.tensor_infos {
        let bytes = size(t);
        total += bytes;
        per_token += match name.as_str() {
            "token_embd.weight" if !tied => bytes / t.shape.dims()[1] as u64,
            _ => bytes,
        };
    }
    Ok((per_token, total))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let threads: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let buf: Vec<u64> = (0..(2u64 << 30) / 8).collect();
    let one = bandwidth(&buf, 1);
    let many = bandwidth(&buf, threads);
    println!("memory read bandwidth: {one:.1} GB/s with 1 thread, {many:.1} GB/s with {threads}");
    for path in args.iter().filter(|a| a.ends_with(".gguf")) {
        match bytes_per_token(path) {
            Ok((per_token, total)) => println!(
                "{path}: {:.3} GB of weights, {:.3} GB read per token: decode bound {:.1} tok/s \
                 ({threads} threads)",
                total as f64 / 1e9,
                per_token as f64 / 1e9,
                many * 1e9 / per_token as f64
            ),
            Err(e) => println!("{path}: {e}"),
        }
    }
}
