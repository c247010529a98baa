// Scalar row functions of every format (internal; the traits table in quant.cpp publishes
// them). Signatures: to_float(src, dst, k), from_float(src, dst, k, importance).
#pragma once

#include <cstdint>

namespace bitnet::quant {

#define BITNET_QUANT_FORMAT(name)                                 \
    void name##_to_float(const void* src, float* dst, int64_t k); \
    void name##_from_float(const float* src, void* dst, int64_t k, const float* importance);

BITNET_QUANT_FORMAT(f32)
BITNET_QUANT_FORMAT(f16)
BITNET_QUANT_FORMAT(bf16)
BITNET_QUANT_FORMAT(q8_0)
BITNET_QUANT_FORMAT(q4_0)
BITNET_QUANT_FORMAT(q8_k)
BITNET_QUANT_FORMAT(q4_k)
BITNET_QUANT_FORMAT(q6_k)
BITNET_QUANT_FORMAT(tq1_0)
BITNET_QUANT_FORMAT(tq2_0)
BITNET_QUANT_FORMAT(iq2_s)
#undef BITNET_QUANT_FORMAT

// Q6_K with (avx2) or without the AVX2 steps of quant_kquants_avx2.cpp; q6_k_from_float takes
// them when the CPU has AVX2. The bytes are the same either way. The two *_avx2 functions below
// need a CPU with AVX2.
void q6_k_from_float_with(const float* src, void* dst, int64_t k, bool avx2);
// ggml's make_qx_quants (rmse_type 1, no importance) for the 8 sub-blocks of 16 values at x
// (one per lane): their scales, and their levels + nmax (0 for an all-zero sub-block).
void make_qx_quants_x8_avx2(const float* x, int nmax, float* scales, int8_t* levels);
// levels[i] = clamp(nearest_int(x[i] / d), lo, hi) + offset for 16 values.
void levels_for_scale_avx2(const float* x, float d, int lo, int hi, int offset, int8_t* levels);

}  // namespace bitnet::quant
