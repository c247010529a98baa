// The integer core of a Q6_K x Q8_K block product with AVX2, for the row dot
// (vec_dot_avx2.cpp). Include only from files compiled with -mavx2.
//
// Per block the exact sum is Σ_g scale_g · Σ_{16 values of g} (q - 32)·a. Here the 6-bit codes
// q stay unsigned for vpmaddubsw (pair sums at most 2·63·127), the group scales are applied
// with vpmaddwd, and 32 · scale_g · bsum_g (the activations' block sums) is subtracted: all
// exact in int32. Lane l of the result holds the chunk values 4l..4l+3 and the correction of
// groups 2l and 2l+1: the lanes that the scalar reference (dot_q6_k in vec_dot.cpp) forms.
#pragma once

#include <immintrin.h>

#include "quant/blocks.h"

namespace bitnet {

inline __m256i q6_k_block_lanes(const BlockQ6K& w, const BlockQ8K& a) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    // Lanes 0-7 of a 16 x int16 product belong to the first 16 values, lanes 8-15 to the next.
    const __m128i lo_hi = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const uint8_t* ql = w.ql;
    const uint8_t* qh = w.qh;
    const int8_t* q8 = a.qs;
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
    __m256i acc = _mm256_setzero_si256();
    for (int j = 0; j < 2; ++j, ql += 64, qh += 32, q8 += 128) {
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
        // The two high bits of value k of each qh byte (bits 2k, 2k+1) moved to bits 4-5; the
        // 16-bit shifts carry bits across bytes only into bits that the mask clears.
        const __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, m4),
                            _mm256_and_si256(_mm256_slli_epi16(h, 4), m30)),
            _mm256_or_si256(_mm256_and_si256(l1, m4),
                            _mm256_and_si256(_mm256_slli_epi16(h, 2), m30)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                            _mm256_and_si256(h, m30)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                            _mm256_and_si256(_mm256_srli_epi16(h, 2), m30)),
        };
        for (int k = 0; k < 4; ++k) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k));
            const __m256i p = _mm256_maddubs_epi16(q[k], x);
            // Scales of groups 8j + 2k and 8j + 2k + 1 in lanes 0-7 and 8-15.
            const __m128i pick =
                _mm_add_epi8(lo_hi, _mm_set1_epi8(static_cast<char>(8 * j + 2 * k)));
            const __m256i sg = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, sg));
        }
    }
    // - 32 · Σ_g scale_g · bsum_g
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
    const __m256i corr = _mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8));
    return _mm256_sub_epi32(acc, _mm256_slli_epi32(corr, 5));
}

}  // namespace bitnet
