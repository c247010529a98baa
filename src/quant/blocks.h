// Packed block layouts, byte for byte as ggml stores them (ggml-common.h). fp16 fields are
// raw IEEE half bits.
#pragma once

#include <cstdint>

namespace bitnet {

constexpr int kQK = 256;  // super-block size of K, IQ and TQ formats

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[16];  // low nibbles: values 0..15, high nibbles: 16..31
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ8K {
    float d;
    int8_t qs[kQK];
    int16_t bsums[kQK / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

struct BlockQ4K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

struct BlockQ6K {
    uint8_t ql[kQK / 2];
    uint8_t qh[kQK / 4];
    int8_t scales[kQK / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

struct BlockTQ1_0 {
    uint8_t qs[48];  // 5 trits per byte
    uint8_t qh[4];   // 4 trits per byte
    uint16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);

struct BlockTQ2_0 {
    uint8_t qs[64];  // 2 bits per value
    uint16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

struct BlockIQ2S {
    uint16_t d;
    uint8_t qs[64];     // 32 grid index low bytes, then 32 sign bytes
    uint8_t qh[8];      // grid index bits 8..9, 2 bits per group
    uint8_t scales[8];  // 4-bit scale per 16 values
};
static_assert(sizeof(BlockIQ2S) == 82);

// ggml's nearest_int: round half to even through the float mantissa (|x| < 2^22).
inline int nearest_int(float x) {
    const float v = x + 12582912.0f;
    int32_t i = 0;
    __builtin_memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

}  // namespace bitnet
