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

}  // namespace bitnet::quant
