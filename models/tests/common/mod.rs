//! What the model tests share: the tiny reference models' folders and the comparison.

#![allow(dead_code)] // each test binary uses its own part

use candle_core::Tensor;
use std::path::PathBuf;

/// models/tests/data/<case>: a tiny random model and its transformers references.
pub fn data_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(case)
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
