// Row dot products between a weight row in its stored format and an activation row in the
// format that weight pairs with (ggml's vec_dot_type; per-token int8 for I2_S as bitnet.cpp).
// Each function is the scalar reference; ISA-specific versions are tested against it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bitnet/quant.h"
#include "bitnet/types.h"

namespace bitnet {

// How activations are stored for a matmul.
enum class ActFormat { F32, F16, BF16, Q8_0, Q8_K, I8Token };

// Per-token int8 activations (bitnet.cpp): q = round_half_even(x · s) clamped to [-128, 127]
// with s = 127 / max(|x|, 1e-5), plus the sum of q.
struct I8TokenHeader {
    float s;
    int32_t sum;
};

ActFormat act_format_for(GgmlType weight);
size_t act_row_bytes(ActFormat f, int64_t n);
// Quantizes one row of n activations.
void quantize_activation_row(ActFormat f, const float* x, void* dst, int64_t n);
// The scalar I8Token quantizer (BitNet's per-token absmax to int8), the reference for SIMD ones.
void i8_token_from_float(const float* x, void* dst, int64_t n);

// Dot product of one weight row (n values) with one activation row. For I2_S, `layout` says
// how codes are packed and the result excludes the per-tensor scale.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);
VecDotFn vec_dot_scalar(GgmlType weight, I2sLayout layout);

}  // namespace bitnet
