// IEEE half and bfloat16 conversions, round-to-nearest-even, bit-identical to ggml's
// reference conversions (tested against libggml-base in the parity suite).
#pragma once

#include <bit>
#include <cstdint>

namespace bitnet {

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) {
        // Infinity, or a NaN delivered quiet (as arithmetic conversions do).
        return std::bit_cast<float>(sign | (man != 0 ? 0x7fc00000u : 0x7f800000u) | (man << 13));
    }
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
    // Subnormal (or zero): man · 2^-24, exact in float.
    const float mag = static_cast<float>(man) * 0x1.0p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(mag));
}

inline uint16_t fp32_to_fp16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u;   // NaN -> quiet NaN
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
    if (ax < 0x38800000u) {                        // below 2^-14: half subnormal
        if (ax < 0x33000000u) return sign;         // below 2^-25 rounds to zero
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e;  // units of 2^-24; 14..24
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u) != 0)) ++q;
        return static_cast<uint16_t>(sign | q);
    }
    const uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u;
    return static_cast<uint16_t>(sign | (r >> 13));
}

inline float bf16_to_fp32(uint16_t h) {
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64u);
    return static_cast<uint16_t>((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

}  // namespace bitnet
