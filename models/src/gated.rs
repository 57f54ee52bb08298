//! The gated activation of the feed-forward block, `act(gate) * up`, in one pass over f32
//! CPU tensors: one op instead of two, and the activation vectorized.
//!
//! Both activations are written through one exponential: `silu(x) = x / (1 + e^-x)` and
//! GELU's tanh approximation `0.5 x (1 + tanh(z)) = x / (1 + e^(-2z))` with
//! `z = sqrt(2/pi) (x + 0.044715 x^3)`. The AVX2 exponential is Cephes' `expf` (range
//! reduction by ln 2, a degree-5 polynomial); results stay within 2e-6 relative of the f64
//! definition (tested over the whole range). Without AVX2 the same formula runs per
//! element with `f32::exp`; on other dtypes and devices candle's ops run.

use crate::config::Activation;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `act(gate) * up` for tensors of the same shape.
pub fn gated(act: Activation, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let fused = gate.device().is_cpu()
        && gate.dtype() == candle_core::DType::F32
        && up.dtype() == candle_core::DType::F32
        && gate.dims() == up.dims()
        && gate.rank() >= 1;
    if fused {
        // Rows the kernel can read in place (contiguous, or a narrow along the last
        // dimension, as the stacked gate/up projection gives); anything else is copied.
        let readable = |t: &Tensor| -> Result<Tensor> {
            if rows(t.layout()).is_some() {
                Ok(t.clone())
            } else {
                t.contiguous()
            }
        };
        readable(gate)?.apply_op2_no_bwd(&readable(up)?, &GatedOp(act))
    } else {
        act.apply(gate)? * up
    }
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

/// One element, in the same arithmetic as the vector kernel (up to the exponential).
fn scalar(act: Activation, g: f32, u: f32) -> f32 {
    let t = match act {
        Activation::Silu => -g,
        Activation::GeluTanh => -2.0 * SQRT_2_OVER_PI * (g + GELU_CUBIC * g * g * g),
    };
    g / (1.0 + t.exp()) * u
}

struct GatedOp(Activation);

/// The rows of a rank >= 1 tensor: (first element, row stride, rows, row length), when
/// every row is contiguous and rows are evenly spaced (a contiguous tensor, or a narrow
/// of one along its last dimension).
fn rows(layout: &Layout) -> Option<(usize, usize, usize, usize)> {
    let dims = layout.dims();
    let stride = layout.stride();
    let n = *dims.last()?;
    if n > 1 && stride[dims.len() - 1] != 1 {
        return None;
    }
    let rows: usize = dims[..dims.len() - 1].iter().product();
    if rows <= 1 {
        return Some((layout.start_offset(), n, rows, n));
    }
    // Leading dimensions must collapse into one with a uniform stride.
    let mut row_stride = None;
    let mut expect = None;
    for d in (0..dims.len() - 1).rev() {
        if dims[d] == 1 {
            continue;
        }
        match expect {
            None => {
                row_stride = Some(stride[d]);
                expect = Some(stride[d] * dims[d]);
            }
            Some(e) => {
                if stride[d] != e {
                    return None;
                }
                expect = Some(e * dims[d]);
            }
        }
    }
    let row_stride = row_stride.unwrap_or(n);
    (row_stride >= n).then_some((layout.start_offset(), row_stride, rows, n))
}

impl CustomOp2 for GatedOp {
    fn name(&self) -> &'static str {
        "candor-gated-activation"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(g), CpuStorage::F32(u)) = (s1, s2) else {
            candle_core::bail!("gated activation: f32 tensors only");
        };
        let (Some((g0, gs, rows_n, n)), Some((u0, us, _, _))) = (rows(l1), rows(l2)) else {
            candle_core::bail!("gated activation: rows are not contiguous");
        };
        let mut out = vec![0f32; rows_n * n];
        for (r, o) in out.chunks_exact_mut(n.max(1)).enumerate() {
            let g = &g[g0 + r * gs..g0 + r * gs + n];
            let u = &u[u0 + r * us..u0 + r * us + n];
            row(self.0, g, u, o);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `out[i] = act(g[i]) * u[i]`.
fn row(act: Activation, g: &[f32], u: &[f32], out: &mut [f32]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        done = unsafe { avx2::row(act, g, u, out) };
    }
    for i in done..out.len() {
        out[i] = scalar(act, g[i], u[i]);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Activation, GELU_CUBIC, SQRT_2_OVER_PI};
    use crate::cpu::avx2::exp;
    use std::arch::x86_64::*;

    /// The whole 8-lane part of the row; returns how many elements it wrote.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the slices have equal lengths.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row(act: Activation, g: &[f32], u: &[f32], out: &mut [f32]) -> usize {
        let n = out.len() / 8 * 8;
        let one = _mm256_set1_ps(1.0);
        for i in (0..n).step_by(8) {
            // SAFETY: i + 8 <= n <= each slice's length.
            let (gv, uv) = unsafe {
                (
                    _mm256_loadu_ps(g.as_ptr().add(i)),
                    _mm256_loadu_ps(u.as_ptr().add(i)),
                )
            };
            let t = match act {
                Activation::Silu => _mm256_sub_ps(_mm256_setzero_ps(), gv),
                Activation::GeluTanh => {
                    let g3 = _mm256_mul_ps(_mm256_mul_ps(gv, gv), gv);
                    let z = _mm256_fmadd_ps(_mm256_set1_ps(GELU_CUBIC), g3, gv);
                    _mm256_mul_ps(_mm256_set1_ps(-2.0 * SQRT_2_OVER_PI), z)
                }
            };
            let a = _mm256_div_ps(gv, _mm256_add_ps(one, exp(t)));
            // SAFETY: as above.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(a, uv)) };
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn reference(act: Activation, g: f64, u: f64) -> f64 {
        let a = match act {
            Activation::Silu => g / (1.0 + (-g).exp()),
            Activation::GeluTanh => {
                // 0.5 (1 + tanh z) written as 1 / (1 + e^-2z), which does not cancel to 0
                // far out on the negative side.
                let z = (2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g);
                g / (1.0 + (-2.0 * z).exp())
            }
        };
        a * u
    }

    #[test]
    fn matches_the_definition_in_f64() {
        // Values across the range activations take, the extremes included.
        let g: Vec<f32> = (0..4099)
            .map(|i| (i as f32 - 2049.0) * 0.013)
            .chain([-100.0, -30.0, 30.0, 100.0, 0.0])
            .collect();
        let u: Vec<f32> = (0..g.len()).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
        for act in [Activation::Silu, Activation::GeluTanh] {
            let mut out = vec![0f32; g.len()];
            row(act, &g, &u, &mut out);
            for i in 0..g.len() {
                let want = reference(act, g[i] as f64, u[i] as f64);
                // A few ulp: f32 rounding of the argument (x^3, then e^t) adds to the
                // exponential's own error; far out, where the values are below 1e-12 and
                // that rounding grows with t, only the absolute error counts.
                let err = (out[i] as f64 - want).abs();
                assert!(
                    err <= 2e-6 * want.abs() + 1e-12,
                    "{act:?}({}) * {}: {} vs {want}",
                    g[i],
                    u[i],
                    out[i]
                );
            }
        }
    }

    #[test]
    fn takes_narrowed_rows_and_agrees_with_candle() {
        let dev = Device::Cpu;
        // A (3, 2 * 13) projection output split into gate and up, as the MLP does.
        let both = Tensor::arange(0f32, 78.0, &dev)
            .unwrap()
            .affine(0.07, -2.5)
            .unwrap()
            .reshape((3, 26))
            .unwrap();
        let gate = both.narrow(1, 0, 13).unwrap();
        let up = both.narrow(1, 13, 13).unwrap();
        for act in [Activation::Silu, Activation::GeluTanh] {
            let fused: Vec<Vec<f32>> = gated(act, &gate, &up).unwrap().to_vec2().unwrap();
            let plain: Vec<Vec<f32>> = (act.apply(&gate).unwrap() * &up)
                .unwrap()
                .to_vec2()
                .unwrap();
            for (a, b) in fused.iter().flatten().zip(plain.iter().flatten()) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{act:?}: {a} vs {b}"
                );
            }
        }
        // Rows that are not evenly spaced are copied first, not misread.
        let t = Tensor::arange(0f32, 24.0, &dev)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let odd = t.narrow(1, 1, 2).unwrap();
        assert!(rows(odd.layout()).is_none());
        let fused = gated(Activation::Silu, &odd, &odd).unwrap();
        let plain = (Activation::Silu.apply(&odd).unwrap() * &odd).unwrap();
        let diff = (fused - plain).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
