#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

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

// The weighted sum of H heads' values: per 16 values, 2·H running sums in registers over a
// block of 64 keys (whose values stay in L1 across the passes), a fused multiply-add per key
// in ascending order; between blocks the sums rest in `out` (exactly). Each element gets the
// same operations for any H.
template <int H, typename T>
void wsum_heads(const float* w, int64_t ws, const T* v, int64_t n_keys, int64_t n, float* out,
                int64_t os) {
    constexpr int64_t kBlock = 64;
    const auto load8 = [](const T* p) {
        if constexpr (std::is_same_v<T, uint16_t>) {
            return load_half8(p);
        } else {
            return _mm256_loadu_ps(p);
        }
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
                const __m256 x0 = load8(v + p * n + d), x1 = load8(v + p * n + d + 8);
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
                const __m256 x = load8(v + p * n + d);
                for (int h = 0; h < H; ++h)
                    acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + h * ws + p), x, acc[h]);
            }
            for (int h = 0; h < H; ++h) _mm256_storeu_ps(out + h * os + d, acc[h]);
        }
        for (; d < n; ++d) {
            for (int h = 0; h < H; ++h) {
                float acc = p0 == 0 ? 0.0f : out[h * os + d];
                for (int64_t p = p0; p < p1; ++p) {
                    float x;
                    if constexpr (std::is_same_v<T, uint16_t>) {
                        x = fp16_to_fp32(v[p * n + d]);
                    } else {
                        x = v[p * n + d];
                    }
                    acc = std::fma(w[h * ws + p], x, acc);
                }
                out[h * os + d] = acc;
            }
        }
    }
}

void wsum_f16(const float* w, const uint16_t* v, int64_t n_keys, int64_t n, float* out) {
    wsum_heads<1>(w, 0, v, n_keys, n, out, 0);
}
void wsum_f32(const float* w, const float* v, int64_t n_keys, int64_t n, float* out) {
    wsum_heads<1>(w, 0, v, n_keys, n, out, 0);
}
void wsum4_f16(const float* w, int64_t ws, const uint16_t* v, int64_t n_keys, int64_t n, float* out,
               int64_t os) {
    wsum_heads<4>(w, ws, v, n_keys, n, out, os);
}

}  // namespace

const AttentionKernels* attention_avx2() {
    static const AttentionKernels k{dot_f16,  dot_f32,   dot4_f16, wsum_f16,
                                    wsum_f32, wsum4_f16, "avx2"};
    return &k;
}

}  // namespace bitnet
