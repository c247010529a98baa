#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/fp16.h"
#include "kernels/attention.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Reading a cached row of one type: values d..d+7 and d..d+15 as floats (d a multiple of 8 or
// 16; Q8_0 rows are whole blocks, so only the 16-value form and no tail meet them), one value
// (tails), and the row's size in bytes.
struct F16Row {
    static __m256 load8(const void* row, int64_t d) {
        return _mm256_cvtph_ps(_mm_loadu_si128(
            reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + d)));
    }
    static void load16(const void* row, int64_t d, __m256& x0, __m256& x1) {
        x0 = load8(row, d);
        x1 = load8(row, d + 8);
    }
    static float at(const void* row, int64_t d) {
        return fp16_to_fp32(static_cast<const uint16_t*>(row)[d]);
    }
    static size_t bytes(int64_t n) { return static_cast<size_t>(n) * 2; }
};

struct F32Row {
    static __m256 load8(const void* row, int64_t d) {
        return _mm256_loadu_ps(static_cast<const float*>(row) + d);
    }
    static void load16(const void* row, int64_t d, __m256& x0, __m256& x1) {
        x0 = load8(row, d);
        x1 = load8(row, d + 8);
    }
    static float at(const void* row, int64_t d) { return static_cast<const float*>(row)[d]; }
    static size_t bytes(int64_t n) { return static_cast<size_t>(n) * 4; }
};

// Q8_0 values: the scale times the int8 value (ggml's dequantization), rounded to float.
struct Q8Row {
    static __m256 ints8(const int8_t* p) {
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    }
    static __m256 load8(const void* row, int64_t d) {
        const auto& b = static_cast<const BlockQ8_0*>(row)[d / 32];
        return _mm256_mul_ps(_mm256_set1_ps(fp16_to_fp32(b.d)), ints8(b.qs + d % 32));
    }
    static void load16(const void* row, int64_t d, __m256& x0, __m256& x1) {
        const auto& b = static_cast<const BlockQ8_0*>(row)[d / 32];
        const __m256 s = _mm256_set1_ps(fp16_to_fp32(b.d));
        x0 = _mm256_mul_ps(s, ints8(b.qs + d % 32));
        x1 = _mm256_mul_ps(s, ints8(b.qs + d % 32 + 8));
    }
    static float at(const void* row, int64_t d) {
        const auto& b = static_cast<const BlockQ8_0*>(row)[d / 32];
        return static_cast<float>(b.qs[d % 32]) * fp16_to_fp32(b.d);
    }
    static size_t bytes(int64_t n) { return static_cast<size_t>(n / 32) * sizeof(BlockQ8_0); }
};

// q · k for H heads at once (q + h * qs): per head two running sums over 16 values, their
// horizontal sum, then the scalar tail; the key converted once. Identical per head for any H.
// Keys and values are read row after row from the head-major cache; the hardware prefetcher
// alone left the value sums (which pass over a block of 64 rows once per 16 dimensions) waiting
// on memory. Each kernel prefetches the row kRowsAhead rows past the one it reads (in the value
// sums, during the first pass over a block): on a Zen 3 EPYC, one thread, depth 2048, 2B-4T
// shapes, values 37-45 -> 31-34 ns per key and keys 36-38 -> 34-35 ns; 16 or 32 rows ahead gave
// less. A prefetch never faults, past the end of the cache included.
constexpr size_t kRowsAhead = 8;

inline void prefetch(const void* p, size_t ahead, size_t bytes) {
    const char* c = static_cast<const char*>(p) + ahead;
    const size_t lead = reinterpret_cast<uintptr_t>(c) % 64;  // lines touched, from the first
    for (size_t l = 0; l < lead + bytes; l += 64) _mm_prefetch(c - lead + l, _MM_HINT_T0);
}

template <int H, typename Row>
void dot_heads(const float* q, int64_t qs, const void* k, int64_t n, float* out) {
    prefetch(k, kRowsAhead * Row::bytes(n), Row::bytes(n));
    __m256 a[H][2];
    for (auto& h : a) h[0] = h[1] = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 16 <= n; d += 16) {
        __m256 k0, k1;
        Row::load16(k, d, k0, k1);
        for (int h = 0; h < H; ++h) {
            a[h][0] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * qs + d), k0, a[h][0]);
            a[h][1] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * qs + d + 8), k1, a[h][1]);
        }
    }
    for (int h = 0; h < H; ++h) {
        float s = hsum(_mm256_add_ps(a[h][0], a[h][1]));
        for (int64_t e = d; e < n; ++e) s += q[h * qs + e] * Row::at(k, e);
        out[h] = s;
    }
}

// Q8_0 keys: per block the float sum of q times the int8 values (two running sums), then one
// fused multiply-add by the block's scale; a horizontal sum at the end.
template <int H>
void dot_heads_q8(const float* q, int64_t qs, const void* k, int64_t n, float* out) {
    const auto* b = static_cast<const BlockQ8_0*>(k);
    prefetch(k, kRowsAhead * Q8Row::bytes(n), Q8Row::bytes(n));
    __m256 acc[H];
    for (auto& x : acc) x = _mm256_setzero_ps();
    for (int64_t j = 0; j < n / 32; ++j) {
        const __m256 k0 = Q8Row::ints8(b[j].qs), k1 = Q8Row::ints8(b[j].qs + 8);
        const __m256 k2 = Q8Row::ints8(b[j].qs + 16), k3 = Q8Row::ints8(b[j].qs + 24);
        const __m256 scale = _mm256_set1_ps(fp16_to_fp32(b[j].d));
        for (int h = 0; h < H; ++h) {
            const float* qh = q + h * qs + 32 * j;
            __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(qh), k0);
            __m256 s1 = _mm256_mul_ps(_mm256_loadu_ps(qh + 8), k1);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 16), k2, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 24), k3, s1);
            acc[h] = _mm256_fmadd_ps(scale, _mm256_add_ps(s0, s1), acc[h]);
        }
    }
    for (int h = 0; h < H; ++h) out[h] = hsum(acc[h]);
}

// The weighted sum of H heads' values: per 16 values, 2·H running sums in registers over a
// block of 64 keys (whose values stay in L1 across the passes), a fused multiply-add per key
// in ascending order; between blocks the sums rest in `out` (exactly). Each element gets the
// same operations for any H.
template <int H, typename Row>
void wsum_heads(const float* w, int64_t ws, const void* v, int64_t n_keys, int64_t n, float* out,
                int64_t os) {
    constexpr int64_t kBlock = 64;
    const size_t row_bytes = Row::bytes(n);
    const auto row = [&](int64_t p) {
        return static_cast<const uint8_t*>(v) + static_cast<size_t>(p) * row_bytes;
    };
    if (n_keys <= 0) {
        for (int h = 0; h < H; ++h)
            for (int64_t d = 0; d < n; ++d) out[h * os + d] = 0.0f;
        return;
    }
    for (int64_t p0 = 0; p0 < n_keys; p0 += kBlock) {
        const int64_t p1 = std::min(n_keys, p0 + kBlock);
        int64_t d = 0;
        for (; d + 16 <= n; d += 16) {
            __m256 acc[H][2];
            for (int h = 0; h < H; ++h) {
                acc[h][0] = p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + h * os + d);
                acc[h][1] = p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + h * os + d + 8);
            }
            for (int64_t p = p0; p < p1; ++p) {
                if (d == 0) prefetch(row(p), kRowsAhead * row_bytes, row_bytes);
                __m256 x0, x1;
                Row::load16(row(p), d, x0, x1);
                for (int h = 0; h < H; ++h) {
                    const __m256 wb = _mm256_broadcast_ss(w + h * ws + p);
                    acc[h][0] = _mm256_fmadd_ps(wb, x0, acc[h][0]);
                    acc[h][1] = _mm256_fmadd_ps(wb, x1, acc[h][1]);
                }
            }
            for (int h = 0; h < H; ++h) {
                _mm256_storeu_ps(out + h * os + d, acc[h][0]);
                _mm256_storeu_ps(out + h * os + d + 8, acc[h][1]);
            }
        }
        for (; d + 8 <= n; d += 8) {
            __m256 acc[H];
            for (int h = 0; h < H; ++h)
                acc[h] = p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + h * os + d);
            for (int64_t p = p0; p < p1; ++p) {
                const __m256 x = Row::load8(row(p), d);
                for (int h = 0; h < H; ++h)
                    acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + h * ws + p), x, acc[h]);
            }
            for (int h = 0; h < H; ++h) _mm256_storeu_ps(out + h * os + d, acc[h]);
        }
        for (; d < n; ++d) {
            for (int h = 0; h < H; ++h) {
                float acc = p0 == 0 ? 0.0f : out[h * os + d];
                for (int64_t p = p0; p < p1; ++p)
                    acc = std::fma(w[h * ws + p], Row::at(row(p), d), acc);
                out[h * os + d] = acc;
            }
        }
    }
}

// e^x for 8 floats, x <= 0 or moderate (here x = score - max <= 0): 2^k · e^r with
// k = round(x / ln 2) and r = x - k ln 2 (ln 2 in two parts), e^r by its degree-6 Taylor
// polynomial (|r| <= ln 2 / 2: relative error below 2e-7). Below -87.3 the result is 0, as the
// float exponential underflows; NaN stays NaN.
inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // false for NaN
    x = _mm256_max_ps(lo, x);                               // NaN kept (second operand)
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // 2^k: k + 127 in the exponent field (k >= -126 here, so no subnormal scaling).
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

float exp_shift(float* x, int64_t n, double* sum) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float max = _mm_cvtss_f32(m4);
    for (; i < n; ++i) max = std::max(max, x[i]);
    // A NaN among the scores: the scalar path gives the reference's NaNs.
    bool nan = std::isnan(max);
    for (int64_t j = 0; j < n && !nan; ++j) nan = std::isnan(x[j]);
    if (nan) return attention_scalar().exp_shift(x, n, sum);
    const __m256 vm = _mm256_set1_ps(max);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double total = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        total += x[i];
    }
    *sum = total;
    return max;
}

template <typename Row>
CacheKernels kernels_of() {
    CacheKernels k{};
    if constexpr (std::is_same_v<Row, Q8Row>) {
        k.dot = [](const float* q, const void* key, int64_t n) {
            float r;
            dot_heads_q8<1>(q, 0, key, n, &r);
            return r;
        };
        k.dot4 = dot_heads_q8<4>;
    } else {
        k.dot = [](const float* q, const void* key, int64_t n) {
            float r;
            dot_heads<1, Row>(q, 0, key, n, &r);
            return r;
        };
        k.dot4 = dot_heads<4, Row>;
    }
    k.wsum = [](const float* w, const void* v, int64_t n_keys, int64_t n, float* out) {
        wsum_heads<1, Row>(w, 0, v, n_keys, n, out, 0);
    };
    k.wsum4 = wsum_heads<4, Row>;
    return k;
}

}  // namespace

const AttentionKernels* attention_avx2() {
    static const AttentionKernels k{kernels_of<F16Row>(), kernels_of<F32Row>(), kernels_of<Q8Row>(),
                                    exp_shift, "avx2"};
    return &k;
}

}  // namespace bitnet
