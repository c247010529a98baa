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
    const char* name;
};

const AttentionKernels& attention_scalar();
const AttentionKernels* attention_avx2();  // compiled with AVX2/FMA/F16C
// The best for the active ISA.
const AttentionKernels& attention_kernels();

}  // namespace bitnet
