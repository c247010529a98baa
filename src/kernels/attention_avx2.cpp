#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/attention.h"

namespace bitnet {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256 load_half8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

float dot_f16(const float* q, const uint16_t* k, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 16 <= n; d += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_half8(k + d), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), load_half8(k + d + 8), a1);
    }
    float s = hsum(_mm256_add_ps(a0, a1));
    for (; d < n; ++d) s += q[d] * fp16_to_fp32(k[d]);
    return s;
}

float dot_f32(const float* q, const float* k, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 16 <= n; d += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), _mm256_loadu_ps(k + d + 8), a1);
    }
    float s = hsum(_mm256_add_ps(a0, a1));
    for (; d < n; ++d) s += q[d] * k[d];
    return s;
}

void axpy_f16(float w, const uint16_t* v, float* out, int64_t n) {
    const __m256 wv = _mm256_set1_ps(w);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(out + d, _mm256_fmadd_ps(wv, load_half8(v + d), _mm256_loadu_ps(out + d)));
    for (; d < n; ++d) out[d] += w * fp16_to_fp32(v[d]);
}

void axpy_f32(float w, const float* v, float* out, int64_t n) {
    const __m256 wv = _mm256_set1_ps(w);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8) {
        _mm256_storeu_ps(out + d,
                         _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + d), _mm256_loadu_ps(out + d)));
    }
    for (; d < n; ++d) out[d] += w * v[d];
}

// dot_f16 for four heads: per head the same two running sums, the same horizontal sum and
// the same scalar tail; the key is converted once.
void dot4_f16(const float* q, int64_t qs, const uint16_t* k, int64_t n, float* out) {
    __m256 a[4][2];
    for (auto& h : a) h[0] = h[1] = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 16 <= n; d += 16) {
        const __m256 k0 = load_half8(k + d), k1 = load_half8(k + d + 8);
        for (int h = 0; h < 4; ++h) {
            a[h][0] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * qs + d), k0, a[h][0]);
            a[h][1] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * qs + d + 8), k1, a[h][1]);
        }
    }
    for (int h = 0; h < 4; ++h) {
        float s = hsum(_mm256_add_ps(a[h][0], a[h][1]));
        for (int64_t e = d; e < n; ++e) s += q[h * qs + e] * fp16_to_fp32(k[e]);
        out[h] = s;
    }
}

// axpy_f16 for four heads, the value converted once.
void axpy4_f16(const float* w, const uint16_t* v, float* out, int64_t os, int64_t n) {
    const __m256 w0 = _mm256_set1_ps(w[0]), w1 = _mm256_set1_ps(w[1]), w2 = _mm256_set1_ps(w[2]),
                 w3 = _mm256_set1_ps(w[3]);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8) {
        const __m256 x = load_half8(v + d);
        float* o = out + d;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(w0, x, _mm256_loadu_ps(o)));
        _mm256_storeu_ps(o + os, _mm256_fmadd_ps(w1, x, _mm256_loadu_ps(o + os)));
        _mm256_storeu_ps(o + 2 * os, _mm256_fmadd_ps(w2, x, _mm256_loadu_ps(o + 2 * os)));
        _mm256_storeu_ps(o + 3 * os, _mm256_fmadd_ps(w3, x, _mm256_loadu_ps(o + 3 * os)));
    }
    for (; d < n; ++d) {
        const float x = fp16_to_fp32(v[d]);
        for (int h = 0; h < 4; ++h) out[h * os + d] += w[h] * x;
    }
}

}  // namespace

const AttentionKernels* attention_avx2() {
    static const AttentionKernels k{dot_f16,  dot_f32,   axpy_f16, axpy_f32,
                                    dot4_f16, axpy4_f16, "avx2"};
    return &k;
}

}  // namespace bitnet
