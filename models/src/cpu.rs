//! What this CPU can run, asked once per kernel call site (std caches the answer), and
//! the SIMD helpers more than one kernel uses. The crate is built for the baseline x86-64
//! (SSE2): the AVX2 paths are chosen at run time.

/// AVX2 and FMA: the paged attention kernel and the gated activation's fast path.
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return true;
    }
    false
}

/// AVX2, FMA and F16C: candor's quantized matrix products (block scales are f16).
pub fn has_avx2_fma_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && is_x86_feature_detected!("f16c") {
        return true;
    }
    false
}

/// 8-bit dot product instructions (AVX-512 VNNI, or AVX-VNNI): candle's repacked
/// kernels for Q4_K, Q6_K and Q8_0 use them.
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    if (is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni"))
        || is_x86_feature_detected!("avxvnni")
    {
        return true;
    }
    false
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// Cephes' `expf` for 8 lanes; inputs are clamped to where f32 neither overflows nor
    /// goes subnormal.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA ([`super::has_avx2_fma`]); callers are kernels
    /// compiled for those features.
    #[target_feature(enable = "avx2,fma")]
    pub fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-87.3)),
            _mm256_set1_ps(88.3),
        );
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let p = _mm256_fmadd_ps(
            p,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        // 2^n through the exponent bits.
        let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(p, _mm256_castsi256_ps(pow2))
    }
}
