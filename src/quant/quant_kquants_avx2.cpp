// The expensive steps of the Q6_K quantizer (quant_kquants.cpp) with AVX2: ggml's
// make_qx_quants for 8 sub-blocks at once, one per lane, and the final levels 8 values at a
// time. Every lane performs the scalar code's float operations in the scalar code's order
// (no FMA: the build passes -ffp-contract=off), with IEEE division and ggml's nearest_int, so
// the bytes are the scalar quantizer's and therefore libggml-base's (tests/unit/test_quant.cpp
// compares the two on this CPU; tests/parity compares with ggml). Requantizing a 2B-4T output
// head to Q6_K at load (--head-type q6_k) spent 10-12 s in these loops.
#include <immintrin.h>

#include <cstdint>

#include "quant/blocks.h"
#include "quant/formats.h"

namespace bitnet::quant {

namespace {

inline __m256i nearest_int_x8(__m256 v) {  // ggml's nearest_int per lane
    const __m256 t = _mm256_add_ps(v, _mm256_set1_ps(12582912.0f));
    return _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), _mm256_set1_epi32(0x007fffff)),
                            _mm256_set1_epi32(0x00400000));
}

inline __m256i clamp_x8(__m256i l, int lo, int hi) {
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), l));
}

}  // namespace

void make_qx_quants_x8_avx2(const float* x, int nmax, float* scales, int8_t* levels) {
    constexpr int kN = 16;
    const __m256i idx = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
    __m256 xv[kN], w[kN], wx[kN];
    __m256 amax = _mm256_setzero_ps(), max = _mm256_setzero_ps();
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int i = 0; i < kN; ++i) {
        xv[i] = _mm256_i32gather_ps(x + i, idx, 4);  // lane k: value i of sub-block k
        w[i] = _mm256_mul_ps(xv[i], xv[i]);
        wx[i] = _mm256_mul_ps(w[i], xv[i]);
        const __m256 ax = _mm256_and_ps(xv[i], abs_mask);
        const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, xv[i], gt);
    }
    const __m256 zero = _mm256_cmp_ps(amax, _mm256_set1_ps(1e-15f), _CMP_LT_OQ);  // GROUP_MAX_EPS
    // Candidate levels for a vector of inverse scales, with their weighted sums.
    __m256i cand[kN];
    const auto fit = [&](__m256 iscale, __m256& sumlx, __m256& suml2) {
        sumlx = suml2 = _mm256_setzero_ps();
        for (int i = 0; i < kN; ++i) {
            cand[i] = clamp_x8(nearest_int_x8(_mm256_mul_ps(iscale, xv[i])), -nmax, nmax - 1);
            const __m256 fl = _mm256_cvtepi32_ps(cand[i]);
            sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(wx[i], fl));
            suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w[i], fl), fl));
        }
    };
    __m256 sumlx, suml2;
    fit(_mm256_div_ps(_mm256_set1_ps(static_cast<float>(-nmax)), max), sumlx, suml2);
    __m256i best_l[kN];
    for (int i = 0; i < kN; ++i) best_l[i] = cand[i];
    __m256 scale = _mm256_and_ps(_mm256_div_ps(sumlx, suml2),
                                 _mm256_cmp_ps(suml2, _mm256_setzero_ps(), _CMP_NEQ_UQ));
    __m256 best = _mm256_mul_ps(scale, sumlx);
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        const float c = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
        fit(_mm256_div_ps(_mm256_set1_ps(c), max), sumlx, suml2);
        const __m256 take = _mm256_and_ps(
            _mm256_cmp_ps(suml2, _mm256_setzero_ps(), _CMP_GT_OQ),
            _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
        const __m256i takei = _mm256_castps_si256(take);
        for (int i = 0; i < kN; ++i) best_l[i] = _mm256_blendv_epi8(best_l[i], cand[i], takei);
        scale = _mm256_blendv_ps(scale, _mm256_div_ps(sumlx, suml2), take);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(scale, sumlx), take);
    }
    _mm256_storeu_ps(scales, _mm256_andnot_ps(zero, scale));
    const __m256i zi = _mm256_castps_si256(zero);
    alignas(32) int32_t lane[8];
    for (int i = 0; i < kN; ++i) {
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(lane),
            _mm256_andnot_si256(zi, _mm256_add_epi32(best_l[i], _mm256_set1_epi32(nmax))));
        for (int k = 0; k < 8; ++k) levels[16 * k + i] = static_cast<int8_t>(lane[k]);
    }
}

void levels_for_scale_avx2(const float* x, float d, int lo, int hi, int offset, int8_t* levels) {
    alignas(32) int32_t l[16];
    for (int h = 0; h < 2; ++h) {
        const __m256 q = _mm256_div_ps(_mm256_loadu_ps(x + 8 * h), _mm256_set1_ps(d));
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(l + 8 * h),
            _mm256_add_epi32(clamp_x8(nearest_int_x8(q), lo, hi), _mm256_set1_epi32(offset)));
    }
    for (int i = 0; i < 16; ++i) levels[i] = static_cast<int8_t>(l[i]);
}

}  // namespace bitnet::quant
