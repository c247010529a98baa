// The inner loops of attention over the KV cache: a query against one cached key (a dot
// product) and the weighted sum of cached values (out += w · v), for fp16 and float32 caches.
// The SIMD versions differ from the scalar ones only in float summation order; each query
// row is computed the same way whatever the batch, so results never depend on batching.
#pragma once

#include <cstdint>

namespace bitnet {

struct AttentionKernels {
    float (*dot_f16)(const float* q, const uint16_t* k, int64_t n);
    float (*dot_f32)(const float* q, const float* k, int64_t n);
    void (*axpy_f16)(float w, const uint16_t* v, float* out, int64_t n);
    void (*axpy_f32)(float w, const float* v, float* out, int64_t n);
    // Four query heads that share a KV head (grouped-query attention), for the fp16 cache:
    // out[h] = dot_f16(q + h * q_stride, k, n) and out + h * out_stride += w[h] · v, for h < 4,
    // each with exactly the operations of the one-head kernel; the key or value is read and
    // converted once for the four.
    void (*dot4_f16)(const float* q, int64_t q_stride, const uint16_t* k, int64_t n, float* out);
    void (*axpy4_f16)(const float* w, const uint16_t* v, float* out, int64_t out_stride, int64_t n);
    const char* name;
};

const AttentionKernels& attention_scalar();
const AttentionKernels* attention_avx2();  // compiled with AVX2/FMA/F16C
// The best for the active ISA.
const AttentionKernels& attention_kernels();

}  // namespace bitnet
