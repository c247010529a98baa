// AVX-512 row dot products for float weights (the F16/BF16 output head is more than half of
// a decode step's bytes): four independent 16-wide accumulators keep enough loads in flight
// to stream the head at memory speed. Compiled with -mavx512f -mavx512bw -mavx512vl.
#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/vec_dot_avx512.h"

namespace bitnet {

namespace {

inline __m512 load_half16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

inline __m512 load_bf16x16(const uint16_t* p) {
    const __m512i x =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
}

inline __m512 load_f32x16(const float* p) {
    return _mm512_loadu_ps(p);
}

inline float identity(float x) {
    return x;
}

// Σ w·a with four 16-wide accumulators; W is the stored weight element.
template <typename W, __m512 (*Load)(const W*), float (*Convert)(W)>
float dot_wide(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const W*>(vw);
    const auto* a = static_cast<const float*>(va);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int k = 0; k < 4; ++k)
            acc[k] = _mm512_fmadd_ps(Load(w + i + 16 * k), _mm512_loadu_ps(a + i + 16 * k), acc[k]);
    }
    for (; i + 16 <= n; i += 16)
        acc[0] = _mm512_fmadd_ps(Load(w + i), _mm512_loadu_ps(a + i), acc[0]);
    float sum = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (; i < n; ++i) sum += Convert(w[i]) * a[i];
    return sum;
}

}  // namespace

VecDotFn vec_dot_avx512(GgmlType weight) {
    switch (weight) {
        case GgmlType::F16:
            return dot_wide<uint16_t, load_half16, fp16_to_fp32>;
        case GgmlType::BF16:
            return dot_wide<uint16_t, load_bf16x16, bf16_to_fp32>;
        case GgmlType::F32:
            return dot_wide<float, load_f32x16, identity>;
        default:
            return nullptr;
    }
}

}  // namespace bitnet
