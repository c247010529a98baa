// IQ2_S decoding with AVX2, shared by the row dot (vec_dot_avx2.cpp) and the batch panels
// (gemm_avx2.cpp). Include only from files compiled with -mavx2.
//
// A block (quant/blocks.h, BlockIQ2S; ggml's block_iq2_s) holds 256 values in 8 groups of 32.
// Value 8l + j of group ib is byte j of grid point kIq2sGrid[index 4ib + l] (unsigned 8, 25 or
// 43), negated when bit j of sign byte qs[32 + 4ib + l] is set; the 10-bit index is
// qs[4ib + l] | bits 2l..2l+1 of qh[ib] << 8. Each 16 values share the scale 1 + 2 * nibble
// (low nibble of scales[ib] for the first 16 of group ib, high for the next).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/iq2s_tables.h"

namespace bitnet {

// The 32 grid indices of a block into gi (32-byte aligned), computed in vectors: as scalar
// shifts, masks and ors per lookup they were the busiest part of the row dot (7.5 -> 9.9
// GMAC/s single-threaded on a Zen 3 EPYC).
inline void iq2s_grid_indices(const BlockIQ2S& blk, uint16_t* gi) {
    // Index k takes qh byte k / 4 (lanes of 16 bits), shifted left by 8 - 2 (k % 4).
    const __m256i spread = _mm256_setr_epi8(0, -1, 0, -1, 0, -1, 0, -1, 1, -1, 1, -1, 1, -1, 1, -1,
                                            2, -1, 2, -1, 2, -1, 2, -1, 3, -1, 3, -1, 3, -1, 3, -1);
    const __m256i shift =
        _mm256_setr_epi16(256, 64, 16, 4, 256, 64, 16, 4, 256, 64, 16, 4, 256, 64, 16, 4);
    const __m256i mask = _mm256_set1_epi16(0x300);
    for (int half = 0; half < 2; ++half) {  // groups 0-3 (qh bytes 0-3), then 4-7
        int32_t qh = 0;
        std::memcpy(&qh, blk.qh + 4 * half, 4);
        const __m256i lo = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs + 16 * half)));
        const __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(gi + 16 * half),
            _mm256_or_si256(lo, _mm256_and_si256(_mm256_mullo_epi16(h, shift), mask)));
    }
    // The lookups read the indices back from memory (one load each): left to itself, GCC keeps
    // them in registers and extracts each with vpextrw, two shuffle-port uops per lookup.
    __asm__ volatile("" : : "r"(gi) : "memory");
}

// The four grid points of group ib as 32 unsigned bytes.
inline __m256i iq2s_grid_group(const uint16_t* gi, int ib) {
    const uint16_t* k = gi + 4 * ib;
    return _mm256_setr_epi64x(
        static_cast<int64_t>(kIq2sGrid[k[0]]), static_cast<int64_t>(kIq2sGrid[k[1]]),
        static_cast<int64_t>(kIq2sGrid[k[2]]), static_cast<int64_t>(kIq2sGrid[k[3]]));
}

// 0xff in the bytes of group ib whose value is negative, 0 elsewhere.
inline __m256i iq2s_negative_group(const BlockIQ2S& blk, int ib) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
    int32_t sign_bytes = 0;
    std::memcpy(&sign_bytes, blk.qs + 32 + 4 * ib, 4);
    const __m256i sb = _mm256_shuffle_epi8(_mm256_set1_epi32(sign_bytes), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(sb, bits), bits);
}

// x negated where neg is set (two's complement: (x ^ neg) - neg).
inline __m256i iq2s_apply_signs(__m256i x, __m256i neg) {
    return _mm256_sub_epi8(_mm256_xor_si256(x, neg), neg);
}

// The 16 scales 1 + 2 * nibble of a block as bytes in value order (the low nibble of byte ib at
// 2ib, the high one at 2ib + 1).
inline __m128i iq2s_scale_bytes(const uint8_t* scales) {
    const __m128i sb8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales));
    const __m128i nib =
        _mm_and_si128(_mm_unpacklo_epi8(sb8, _mm_srli_epi16(sb8, 4)), _mm_set1_epi8(0xF));
    return _mm_add_epi8(_mm_add_epi8(nib, nib), _mm_set1_epi8(1));
}

// kIq2sScaleSel[ib]: vpshufb selector giving scale 2ib as int16 in the low half and 2ib + 1 in
// the high half (selector bytes with the top bit set give zeros).
alignas(32) inline constexpr uint8_t kIq2sScaleSel[8][32] = {
#define BITNET_SEL(ib)                                                                            \
    {                                                                                             \
        2 * (ib), 0x80, 2 * (ib), 0x80, 2 * (ib), 0x80, 2 * (ib), 0x80, 2 * (ib), 0x80, 2 * (ib), \
            0x80, 2 * (ib), 0x80, 2 * (ib), 0x80, 2 * (ib) + 1, 0x80, 2 * (ib) + 1, 0x80,         \
            2 * (ib) + 1, 0x80, 2 * (ib) + 1, 0x80, 2 * (ib) + 1, 0x80, 2 * (ib) + 1, 0x80,       \
            2 * (ib) + 1, 0x80, 2 * (ib) + 1, 0x80                                                \
    }
    BITNET_SEL(0), BITNET_SEL(1), BITNET_SEL(2), BITNET_SEL(3),
    BITNET_SEL(4), BITNET_SEL(5), BITNET_SEL(6), BITNET_SEL(7)};
#undef BITNET_SEL

// The scales of group ib's two halves as int16 lanes (ls: iq2s_scale_bytes in both halves).
inline __m256i iq2s_group_scales(__m256i ls, int ib) {
    return _mm256_shuffle_epi8(
        ls, _mm256_load_si256(reinterpret_cast<const __m256i*>(kIq2sScaleSel[ib])));
}

}  // namespace bitnet
