// The inner loops of attention over the KV cache: a query against cached keys (dot products)
// and the weighted sum of cached values, for fp16 and float32 caches. The SIMD versions differ
// from the scalar ones only in float summation order; each query row is computed the same way
// whatever the batch, so results never depend on batching.
#pragma once

#include <cstdint>

namespace bitnet {

struct AttentionKernels {
    // q · k over n values.
    float (*dot_f16)(const float* q, const uint16_t* k, int64_t n);
    float (*dot_f32)(const float* q, const float* k, int64_t n);
    // Four query heads that share a KV head (grouped-query attention), for the fp16 cache:
    // out[h] = dot_f16(q + h * q_stride, k, n) for h < 4, each with exactly the operations of
    // the one-head kernel; the key is read and converted once for the four.
    void (*dot4_f16)(const float* q, int64_t q_stride, const uint16_t* k, int64_t n, float* out);
    // Weighted sum of n_keys consecutive value rows of n values:
    // out[d] = Σ_{p < n_keys} w[p] · v[p · n + d], summed over p in ascending order (a fused
    // multiply-add per step in the SIMD versions), overwriting out.
    void (*wsum_f16)(const float* w, const uint16_t* v, int64_t n_keys, int64_t n, float* out);
    void (*wsum_f32)(const float* w, const float* v, int64_t n_keys, int64_t n, float* out);
    // wsum_f16 for four heads (weights w + h * w_stride, output out + h * out_stride), each
    // exactly as the one-head kernel; every value is read and converted once for the four.
    void (*wsum4_f16)(const float* w, int64_t w_stride, const uint16_t* v, int64_t n_keys,
                      int64_t n, float* out, int64_t out_stride);
    const char* name;
};

const AttentionKernels& attention_scalar();
const AttentionKernels* attention_avx2();  // compiled with AVX2/FMA/F16C
// The best for the active ISA.
const AttentionKernels& attention_kernels();

}  // namespace bitnet
