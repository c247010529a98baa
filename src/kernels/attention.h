// The inner loops of attention over the KV cache, per cache type (llama.cpp's --cache-type-k /
// --cache-type-v: f16, the default; f32; q8_0, ggml's blocks of 32 int8 values and an fp16
// scale): a query against cached keys (dot products) and the weighted sum of cached values.
// The SIMD versions differ from the scalar ones only in float summation order; each query row
// is computed the same way whatever the batch, so results never depend on batching.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bitnet/types.h"

namespace bitnet {

// Kernels for one cache type. A key or value row holds n values in that type
// (cache_row_bytes); `v` points at n_keys consecutive rows.
struct CacheKernels {
    // q · k.
    float (*dot)(const float* q, const void* k, int64_t n);
    // Four query heads that share a KV head (grouped-query attention):
    // out[h] = dot(q + h * q_stride, k, n) for h < 4, each with exactly the operations of dot;
    // the key is read and converted once for the four.
    void (*dot4)(const float* q, int64_t q_stride, const void* k, int64_t n, float* out);
    // out[d] = Σ_{p < n_keys} w[p] · value_p[d], summed over p in ascending order (a fused
    // multiply-add per step in the SIMD versions), overwriting out.
    void (*wsum)(const float* w, const void* v, int64_t n_keys, int64_t n, float* out);
    // wsum for four heads (weights w + h * w_stride, output out + h * out_stride), each exactly
    // as wsum; every value is read and converted once for the four.
    void (*wsum4)(const float* w, int64_t w_stride, const void* v, int64_t n_keys, int64_t n,
                  float* out, int64_t out_stride);
};

struct AttentionKernels {
    CacheKernels f16, f32, q8_0;
    // The softmax numerator of n scores in place: returns their maximum m and sets
    // x[i] = exp(x[i] - m) and *sum = Σ x[i] (accumulated in double). A NaN score gives NaN.
    float (*exp_shift)(float* x, int64_t n, double* sum);
    const char* name;
    // The kernels of a cache type (F16, F32 or Q8_0).
    const CacheKernels& of(GgmlType type) const;
};

// Whether `type` can hold a KV cache with rows of n values (Q8_0: n a multiple of 32).
bool cache_type_supported(GgmlType type, int64_t n);
// Bytes of one cached row of n values.
size_t cache_row_bytes(GgmlType type, int64_t n);
// Stores n floats as one cached row (Q8_0: as ggml's reference quantize_row_q8_0_ref, byte for
// byte; a block holding Inf or NaN gets a NaN scale).
void cache_store_row(GgmlType type, const float* x, int64_t n, void* dst);

const AttentionKernels& attention_scalar();
const AttentionKernels* attention_avx2();  // compiled with AVX2/FMA/F16C
// The best for the active ISA.
const AttentionKernels& attention_kernels();

}  // namespace bitnet
