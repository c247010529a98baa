// AVX2 (+FMA, F16C) row dot products. Integer formats give results identical to the scalar
// reference (the same integer sums, the same float operations: per block, or for Q4_K and Q6_K
// per lane of eight kept across blocks, as the reference defines them); float formats
// differ only in summation order. Compiled with -mavx2 -mfma -mf16c and only called when the
// CPU has them (see vec_dot_for).
#pragma once

#include "kernels/vec_dot.h"

namespace bitnet {

// nullptr when there is no AVX2 version for this weight type.
VecDotFn vec_dot_avx2(GgmlType weight, I2sLayout layout);

// Activation rows in Q8_K (ggml's quantize_row_q8_K) or I8Token form, identical to the scalar
// code of quantize_activation_row for finite inputs: the same maximum (the first element of
// largest magnitude), the same float products and round-half-to-even. Returns false, having
// written nothing useful, when the row holds Inf or NaN; the caller then runs the scalar code,
// whose treatment of those values is the reference.
bool q8_k_from_float_avx2(const float* x, void* dst, int64_t n);
bool i8_token_from_float_avx2(const float* x, void* dst, int64_t n);

// relu_squared_glu (kernels/ops.h): max(x, 0) keeps the scalar code's NaN -> 0, so results
// are identical.
void relu_squared_glu_avx2(float* g, const float* u, int64_t n);
// rms_norm (kernels/ops.h): its eight double sums in two vectors, the same operations.
void rms_norm_avx2(const float* x, const float* w, float* y, int64_t n, float eps);
// silu_glu and exp_f32 (kernels/ops.h): the scalar code's double operations, four lanes at a
// time, so results are identical.
void silu_glu_avx2(float* g, const float* u, int64_t n);
void exp_f32_avx2(const float* x, float* y, int64_t n);

}  // namespace bitnet
