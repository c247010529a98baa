#include "kernels/vec_dot_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/q6k_avx2.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

inline float hsum_f32(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Σ u8 codes × s8 values over 32 lanes, as 8 i32 partial sums.
inline __m256i dot_u8_s8(__m256i codes, __m256i values) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, values), _mm256_set1_epi16(1));
}

float dot_tq2_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockTQ2_0*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    const __m256i mask = _mm256_set1_epi8(3);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 64; j += 32) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + j));
            for (int l = 0; l < 4; ++l) {
                const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(x, 2 * l), mask);
                const __m256i q =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs + j * 4 + l * 32));
                acc = _mm256_add_epi32(acc, dot_u8_s8(codes, q));
            }
        }
        int32_t qsum = 0;
        for (int k = 0; k < 16; ++k) qsum += a[b].bsums[k];
        const int32_t isum = hsum_i32(acc) - qsum;
        sum += static_cast<float>(isum) * (a[b].d * fp16_to_fp32(w[b].d));
    }
    return sum;
}

float dot_i2s_x86(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint8_t*>(vw);
    const auto* h = static_cast<const I8TokenHeader*>(va);
    const auto* q = reinterpret_cast<const int8_t*>(h + 1);
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc = _mm256_setzero_si256();
    int64_t b = 0;
    for (; b < n / 128; ++b) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * 32));
        const int8_t* qb = q + b * 128;
        // Plane p holds values 32p..32p+31 at bit shift 6 - 2p.
        for (int p = 0; p < 4; ++p) {
            const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(x, 6 - 2 * p), mask);
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 32 * p));
            acc = _mm256_add_epi32(acc, dot_u8_s8(codes, v));
        }
    }
    const int64_t isum = static_cast<int64_t>(hsum_i32(acc));
    return static_cast<float>(isum - h->sum) / h->s;
}

float dot_q8_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ8_0*>(vw);
    const auto* a = static_cast<const BlockQ8_0*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
        const __m256i p = dot_u8_s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        sum += static_cast<float>(hsum_i32(p)) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d));
    }
    return sum;
}

float dot_f16(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint16_t*>(vw);
    const auto* a = static_cast<const float*>(va);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        const __m256 w1 =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
        acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a + i + 8), acc1);
    }
    float sum = hsum_f32(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += fp16_to_fp32(w[i]) * a[i];
    return sum;
}

float dot_f32(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const float*>(vw);
    const auto* a = static_cast<const float*>(va);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
    }
    float sum = hsum_f32(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += w[i] * a[i];
    return sum;
}

// Q6_K x Q8_K (kernels/q6k_avx2.h): the exact integer sum per block, then the reference's
// float steps, so the result is identical to it.
float dot_q6_k(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ6K*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        const int32_t isum = hsum_i32(q6_k_block_lanes(w[b], a[b]));
        sum += fp16_to_fp32(w[b].d) * a[b].d * static_cast<float>(isum);
    }
    return sum;
}

// The largest |x| over 8k floats and whether any is Inf or NaN.
inline float abs_max(const float* x, int64_t n, bool& bad) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 inf = _mm256_set1_ps(INFINITY);
    __m256 m = _mm256_setzero_ps();
    __m256 nonfinite = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 ax = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(ax, inf, _CMP_NLT_UQ));
        m = _mm256_max_ps(ax, m);
    }
    bad = _mm256_movemask_ps(nonfinite) != 0;
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// round-half-to-even(s * x) for 8 floats as int32: what nearest_int gives for |s * x| < 2^22.
inline __m256i round_scaled(__m256 s, const float* x) {
    return _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(s, _mm256_loadu_ps(x)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Four int32 vectors (32 values in order) to 32 int8 in order, and the two int16 halves.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d, __m256i& lo, __m256i& hi) {
    lo = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    hi = _mm256_permute4x64_epi64(_mm256_packs_epi32(c, d), 0xD8);
    return _mm256_permute4x64_epi64(_mm256_packs_epi16(lo, hi), 0xD8);
}

}  // namespace

bool q8_k_from_float_avx2(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ8K*>(vy);
    const __m256i max127 = _mm256_set1_epi32(127);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        bool bad = false;
        const float amax = abs_max(x, kQK, bad);
        if (bad) return false;
        std::memset(&y[i], 0, sizeof(BlockQ8K));
        if (amax == 0.0f) continue;
        float max = 0.0f;
        for (int j = 0; j < kQK; ++j) {  // the first element of largest magnitude
            if (std::fabs(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.0f / max;
        // A block whose largest magnitude is below 127 / FLT_MAX overflows the scale; the
        // scalar code's rounding of ±Inf products (to 0) is the reference there.
        if (!std::isfinite(iscale)) return false;
        const __m256 s = _mm256_set1_ps(iscale);
        for (int j = 0; j < kQK; j += 32) {
            __m256i lo, hi;
            const __m256i q = pack32(_mm256_min_epi32(round_scaled(s, x + j), max127),
                                     _mm256_min_epi32(round_scaled(s, x + j + 8), max127),
                                     _mm256_min_epi32(round_scaled(s, x + j + 16), max127),
                                     _mm256_min_epi32(round_scaled(s, x + j + 24), max127), lo, hi);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), q);
            y[i].bsums[j / 16] = static_cast<int16_t>(hsum_i32(_mm256_madd_epi16(lo, ones)));
            y[i].bsums[j / 16 + 1] = static_cast<int16_t>(hsum_i32(_mm256_madd_epi16(hi, ones)));
        }
        y[i].d = 1.0f / iscale;
    }
    return true;
}

bool i8_token_from_float_avx2(const float* x, void* dst, int64_t n) {
    const int64_t n8 = n / 8 * 8;
    bool bad = false;
    float max = abs_max(x, n8, bad);
    for (int64_t i = n8; i < n; ++i) {
        bad = bad || !std::isfinite(x[i]);
        max = std::max(max, std::fabs(x[i]));
    }
    if (bad) return false;
    auto* h = static_cast<I8TokenHeader*>(dst);
    auto* q = reinterpret_cast<int8_t*>(h + 1);
    const float s = 127.0f / std::max(max, 1e-5f);
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i lo_clamp = _mm256_set1_epi32(-128), hi_clamp = _mm256_set1_epi32(127);
    const auto clamp = [&](__m256i v) {
        return _mm256_max_epi32(_mm256_min_epi32(v, hi_clamp), lo_clamp);
    };
    __m256i sum = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i lo, hi;
        const __m256i v = pack32(clamp(round_scaled(vs, x + i)), clamp(round_scaled(vs, x + i + 8)),
                                 clamp(round_scaled(vs, x + i + 16)),
                                 clamp(round_scaled(vs, x + i + 24)), lo, hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), v);
        sum = _mm256_add_epi32(
            sum, _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones)));
    }
    int32_t total = hsum_i32(sum);
    for (; i < n; ++i) {
        const int v = std::clamp(nearest_int(x[i] * s), -128, 127);
        q[i] = static_cast<int8_t>(v);
        total += v;
    }
    h->s = s;
    h->sum = total;
    return true;
}

void relu_squared_glu_avx2(float* g, const float* u, int64_t n) {
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 r = _mm256_max_ps(_mm256_loadu_ps(g + i), zero);  // NaN -> 0, as x > 0 ? x : 0
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; ++i) {
        const float r = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = r * r * u[i];
    }
}

VecDotFn vec_dot_avx2(GgmlType weight, I2sLayout layout) {
    switch (weight) {
        case GgmlType::TQ2_0:
            return dot_tq2_0;
        case GgmlType::I2_S:
            return layout == I2sLayout::Arm ? nullptr : dot_i2s_x86;
        case GgmlType::Q8_0:
            return dot_q8_0;
        case GgmlType::Q6_K:
            return dot_q6_k;
        case GgmlType::F16:
            return dot_f16;
        case GgmlType::F32:
            return dot_f32;
        default:
            return nullptr;
    }
}

}  // namespace bitnet
