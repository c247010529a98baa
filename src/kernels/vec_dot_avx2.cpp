#include "kernels/vec_dot_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/iq2s_avx2.h"
#include "kernels/ops.h"
#include "kernels/q6k_avx2.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

inline float hsum_f32(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Σ u8 codes × s8 values over 32 lanes, as 8 i32 partial sums.
inline __m256i dot_u8_s8(__m256i codes, __m256i values) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, values), _mm256_set1_epi16(1));
}

// The sum of a Q8_K block's 256 values from its sixteen 16-value sums, as 8 int32 lanes.
inline __m256i block_sum_lanes(const BlockQ8K& a) {
    return _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)),
                             _mm256_set1_epi16(1));
}

float dot_tq2_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockTQ2_0*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    const __m256i mask = _mm256_set1_epi8(3);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 64; j += 32) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + j));
            for (int l = 0; l < 4; ++l) {
                const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(x, 2 * l), mask);
                const __m256i q =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs + j * 4 + l * 32));
                acc = _mm256_add_epi32(acc, dot_u8_s8(codes, q));
            }
        }
        const int32_t isum = hsum_i32(_mm256_sub_epi32(acc, block_sum_lanes(a[b])));
        sum += static_cast<float>(isum) * (a[b].d * _cvtsh_ss(w[b].d));
    }
    return sum;
}

float dot_i2s_x86(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint8_t*>(vw);
    const auto* h = static_cast<const I8TokenHeader*>(va);
    const auto* q = reinterpret_cast<const int8_t*>(h + 1);
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc = _mm256_setzero_si256();
    int64_t b = 0;
    for (; b < n / 128; ++b) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * 32));
        const int8_t* qb = q + b * 128;
        // Plane p holds values 32p..32p+31 at bit shift 6 - 2p.
        for (int p = 0; p < 4; ++p) {
            const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(x, 6 - 2 * p), mask);
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 32 * p));
            acc = _mm256_add_epi32(acc, dot_u8_s8(codes, v));
        }
    }
    const int64_t isum = static_cast<int64_t>(hsum_i32(acc));
    return static_cast<float>(isum - h->sum) / h->s;
}

// I2_S in the ARM layout: 64-value blocks of 16 bytes, plane p holding values 16p..16p+15 at
// bit shift 6 - 2p. Two blocks per 32-byte load; a last odd block with 128-bit vectors.
float dot_i2s_arm(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint8_t*>(vw);
    const auto* h = static_cast<const I8TokenHeader*>(va);
    const auto* q = reinterpret_cast<const int8_t*>(h + 1);
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc = _mm256_setzero_si256();
    int64_t b = 0;
    for (; b + 2 <= n / 64; b += 2) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * 16));
        const int8_t* qb = q + b * 64;
        for (int p = 0; p < 4; ++p) {
            const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(x, 6 - 2 * p), mask);
            const __m256i v =
                _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qb + 64 + 16 * p),
                                    reinterpret_cast<const __m128i*>(qb + 16 * p));
            acc = _mm256_add_epi32(acc, dot_u8_s8(codes, v));
        }
    }
    int64_t isum = hsum_i32(acc);
    if (b < n / 64) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * 16));
        const int8_t* qb = q + b * 64;
        __m128i acc4 = _mm_setzero_si128();
        for (int p = 0; p < 4; ++p) {
            const __m128i codes = _mm_and_si128(_mm_srli_epi16(x, 6 - 2 * p), _mm_set1_epi8(3));
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qb + 16 * p));
            acc4 =
                _mm_add_epi32(acc4, _mm_madd_epi16(_mm_maddubs_epi16(codes, v), _mm_set1_epi16(1)));
        }
        acc4 = _mm_add_epi32(acc4, _mm_shuffle_epi32(acc4, _MM_SHUFFLE(1, 0, 3, 2)));
        acc4 = _mm_add_epi32(acc4, _mm_shuffle_epi32(acc4, _MM_SHUFFLE(2, 3, 0, 1)));
        isum += _mm_cvtsi128_si32(acc4);
    }
    return static_cast<float>(isum - h->sum) / h->s;
}

float dot_q8_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ8_0*>(vw);
    const auto* a = static_cast<const BlockQ8_0*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
        const __m256i p = dot_u8_s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        sum += static_cast<float>(hsum_i32(p)) * (_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d));
    }
    return sum;
}

// Float rows: four independent accumulators of 8 lanes, so that the FMA latency does not
// bound the loop (two left it at half the load rate); the sum order differs from the scalar
// code's eight lanes only by rounding.
template <typename Load, typename Tail>
float dot_float(int64_t n, const float* a, Load load, Tail tail) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(load(i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load(i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load(i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(a + i), acc0);
    float sum = hsum_f32(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; ++i) sum += tail(i) * a[i];
    return sum;
}

float dot_f16(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint16_t*>(vw);
    return dot_float(
        n, static_cast<const float*>(va),
        [w](int64_t i) {
            return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        },
        [w](int64_t i) { return fp16_to_fp32(w[i]); });
}

// BF16 is the high half of an f32: widen and shift.
float dot_bf16(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint16_t*>(vw);
    return dot_float(
        n, static_cast<const float*>(va),
        [w](int64_t i) {
            const __m256i h =
                _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
            return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
        },
        [w](int64_t i) { return bf16_to_fp32(w[i]); });
}

float dot_f32(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const float*>(vw);
    return dot_float(
        n, static_cast<const float*>(va), [w](int64_t i) { return _mm256_loadu_ps(w + i); },
        [w](int64_t i) { return w[i]; });
}

// IQ2_S x Q8_K. Per 32 values: four 8-byte grid points (unsigned 8, 25, 43) gathered from the
// table, the sign bits applied to the activations (Q8_K never holds -128, so negation is
// exact), vpmaddubsw, then the two 4-bit scales of the halves through vpmaddwd; the int32 sum
// per block is the reference's, and so are the float steps. Two groups of 32 per step with
// their own accumulators, and the scale selectors come from a table: written as a loop over
// single groups, GCC rebuilt each selector from scalars on every step. (Held matrices use the
// 4-bit codes of kernels/repack.h instead: gemm_avx2.cpp, held_iq2s_row_dot.)
float dot_iq2_s(int64_t n, const void* vw, const void* va);

// The scale-weighted int32 lanes of one 32-value group ib of an IQ2_S block against q8.
inline __m256i iq2s_group(const BlockIQ2S& blk, const uint16_t* gi, int ib, const int8_t* q8,
                          __m256i ls8) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
    const __m256i ls = iq2s_group_scales(ls8, ib);
    return _mm256_madd_epi16(
        _mm256_maddubs_epi16(iq2s_grid_group(gi, ib),
                             iq2s_apply_signs(x, iq2s_negative_group(blk, ib))),
        ls);
}

float dot_iq2_s(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockIQ2S*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sum = 0;
    alignas(32) uint16_t gi[32];
    for (int64_t b = 0; b < n / kQK; ++b) {
        const BlockIQ2S& blk = w[b];
        const int8_t* q8 = a[b].qs;
        iq2s_grid_indices(blk, gi);
        const __m256i ls8 = _mm256_broadcastsi128_si256(iq2s_scale_bytes(blk.scales));
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib += 2) {
            acc0 = _mm256_add_epi32(acc0, iq2s_group(blk, gi, ib, q8 + 32 * ib, ls8));
            acc1 = _mm256_add_epi32(acc1, iq2s_group(blk, gi, ib + 1, q8 + 32 * ib + 32, ls8));
        }
        const float d = _cvtsh_ss(blk.d);
        sum += d * a[b].d * static_cast<float>(hsum_i32(_mm256_add_epi32(acc0, acc1)));
    }
    return 0.125f * sum;
}

// Q4_K x Q8_K: the 6-bit scales and mins decoded as the reference does; nibbles (unsigned)
// times activations in vpmaddubsw, the scale of each 32 values through vpmaddwd; the mins meet
// the activations' 16-value sums. The reference's eight int32 lanes and float lanes, so the
// result is identical to it.
float dot_q4_k(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ4K*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 sums = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQK; ++b) {
        const BlockQ4K& blk = w[b];
        // The reference's unpacking of the 6-bit scales and mins, on 32-bit words.
        uint32_t u[3];
        std::memcpy(u, blk.scales, 12);
        const uint32_t sc_lo = u[0] & 0x3f3f3f3fu;
        const uint32_t mn_lo = u[1] & 0x3f3f3f3fu;
        const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
        const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
        // 16-bit scales 0..7 and mins 0..7.
        const __m256i sm =
            _mm256_cvtepu8_epi16(_mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi),
                                                static_cast<int>(mn_lo), static_cast<int>(mn_hi)));
        // Σ bsum_k · min_{k/2}: the mins repeated in pairs against the sixteen 16-value sums.
        const __m128i mins = _mm256_extracti128_si256(sm, 1);
        const __m256i mins2 =
            _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].bsums));
        const __m256i macc = _mm256_madd_epi16(bs, mins2);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm));
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * j));
            const __m256i lo = _mm256_maddubs_epi16(
                _mm256_and_si256(x, m4),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs + 64 * j)));
            const __m256i hi = _mm256_maddubs_epi16(
                _mm256_and_si256(_mm256_srli_epi16(x, 4), m4),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs + 64 * j + 32)));
            // Scale 2j in every lane, then scale 2j + 1.
            const __m256i s_lo = _mm256_shuffle_epi8(
                scales, _mm256_set1_epi16(static_cast<short>((4 * j + 1) << 8 | 4 * j)));
            const __m256i s_hi = _mm256_shuffle_epi8(
                scales, _mm256_set1_epi16(static_cast<short>((4 * j + 3) << 8 | (4 * j + 2))));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(lo, s_lo));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(hi, s_hi));
        }
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk.d) * a[b].d);
        const __m256 dmin = _mm256_set1_ps(_cvtsh_ss(blk.dmin) * a[b].d);
        sums = _mm256_add_ps(sums, _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(acc)),
                                                 _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(macc))));
    }
    return hsum_f32(sums);
}

// Q6_K x Q8_K (kernels/q6k_avx2.h): the reference's eight int32 lanes per block, each scaled
// and summed in its own float lane, the lanes added in the reference's order at the end, so
// the result is identical to it.
float dot_q6_k(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ6K*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    __m256 sums = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQK; ++b) {
        // 2 KiB ahead (the next row when near the end: a thread's rows are consecutive, at
        // least within a piece of a batch):
        // 17.2-18.2 -> 20.0 GB/s for a 2B-4T head on a Zen 3 EPYC, 2 threads. The lighter
        // F16 and Q8_0 head kernels got slower with the same prefetch and have none.
        const char* ahead = reinterpret_cast<const char*>(w + b) + 2048;
        for (int l = 0; l < 4; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * a[b].d);
        const __m256 lanes = _mm256_cvtepi32_ps(q6_k_block_lanes(w[b], a[b]));
        sums = _mm256_add_ps(sums, _mm256_mul_ps(d, lanes));
    }
    return hsum_f32(sums);
}

// TQ1_0 stores a trit t_l of each byte q at l (0..4) as q·3^l: the trit is ((q·3^l mod 256)·3)
// >> 8. Here for 32 bytes at once, with factors per byte given as 16-bit lanes (`even`: the
// even bytes' factors shifted left by 8; `odd`: the odd bytes' factors): each 16-bit multiply
// leaves one byte's product mod 256 in the high half of its lane with zeros below, and an
// unsigned high multiply by 3 then yields the trit. Result: one trit (0..2) per byte.
inline __m256i trits_times(__m256i x, __m256i even, __m256i odd) {
    const __m256i three = _mm256_set1_epi16(3);
    const __m256i high = _mm256_set1_epi16(static_cast<short>(0xFF00));
    const __m256i te = _mm256_mulhi_epu16(_mm256_mullo_epi16(x, even), three);
    const __m256i to =
        _mm256_mulhi_epu16(_mm256_mullo_epi16(_mm256_and_si256(x, high), odd), three);
    return _mm256_or_si256(te, _mm256_slli_epi16(to, 8));
}

inline __m256i trits_times(__m256i x, int factor) {
    return trits_times(x, _mm256_set1_epi16(static_cast<short>(factor << 8)),
                       _mm256_set1_epi16(static_cast<short>(factor)));
}

// Two factors, one per 128-bit half.
inline __m256i trits_times(__m256i x, int f_lo, int f_hi) {
    const auto lanes = [](int lo, int hi) {
        return _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(hi)),
                                _mm_set1_epi16(static_cast<short>(lo)));
    };
    return trits_times(x, lanes(f_lo << 8, f_hi << 8), lanes(f_lo, f_hi));
}

// TQ1_0 x Q8_K: the trits (0..2) meet the int8 activations in vpmaddubsw and the activations'
// block sum removes the +1 offset, so the integer sum per block is the reference's; the float
// steps are the reference's too.
float dot_tq1_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockTQ1_0*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    // Values 240..255 (qh[j]'s trit l at 240 + 4l + j) share a vector with values 224..239
    // (qs[32..47]'s trit 4): factor 81 in the low half, 1, 3, 9, 27 per 4 bytes in the high.
    const __m256i tail_even = _mm256_set_m128i(
        _mm_setr_epi16(1 << 8, 1 << 8, 3 << 8, 3 << 8, 9 << 8, 9 << 8, 27 << 8, 27 << 8),
        _mm_set1_epi16(81 << 8));
    const __m256i tail_odd =
        _mm256_set_m128i(_mm_setr_epi16(1, 1, 3, 3, 9, 9, 27, 27), _mm_set1_epi16(81));
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        const int8_t* q = a[b].qs;
        const auto act = [q](int at) {
            return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + at));
        };
        // Values 0..159: qs[0..31]'s trit l at 32l.
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
        __m256i acc = dot_u8_s8(trits_times(x, 1), act(0));
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(x, 3), act(32)));
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(x, 9), act(64)));
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(x, 27), act(96)));
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(x, 81), act(128)));
        // Values 160..239: qs[32..47]'s trit l at 160 + 16l, two trits per vector.
        const __m128i x16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs + 32));
        const __m256i xx = _mm256_set_m128i(x16, x16);
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(xx, 1, 3), act(160)));
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(xx, 9, 27), act(192)));
        uint32_t qh;
        std::memcpy(&qh, w[b].qh, 4);
        const __m256i xt = _mm256_set_m128i(_mm_set1_epi32(static_cast<int>(qh)), x16);
        acc = _mm256_add_epi32(acc, dot_u8_s8(trits_times(xt, tail_even, tail_odd), act(224)));
        const int32_t isum = hsum_i32(_mm256_sub_epi32(acc, block_sum_lanes(a[b])));
        sum += static_cast<float>(isum) * (_cvtsh_ss(w[b].d) * a[b].d);
    }
    return sum;
}

// The largest |x| over 8k floats and whether any is Inf or NaN.
inline float abs_max(const float* x, int64_t n, bool& bad) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 inf = _mm256_set1_ps(INFINITY);
    __m256 m = _mm256_setzero_ps();
    __m256 nonfinite = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 ax = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(ax, inf, _CMP_NLT_UQ));
        m = _mm256_max_ps(ax, m);
    }
    bad = _mm256_movemask_ps(nonfinite) != 0;
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// round-half-to-even(s * x) for 8 floats as int32: what nearest_int gives for |s * x| < 2^22.
inline __m256i round_scaled(__m256 s, const float* x) {
    return _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(s, _mm256_loadu_ps(x)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Four int32 vectors (32 values in order) to 32 int8 in order, and the two int16 halves.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d, __m256i& lo, __m256i& hi) {
    lo = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    hi = _mm256_permute4x64_epi64(_mm256_packs_epi32(c, d), 0xD8);
    return _mm256_permute4x64_epi64(_mm256_packs_epi16(lo, hi), 0xD8);
}

}  // namespace

bool q8_k_from_float_avx2(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ8K*>(vy);
    const __m256i max127 = _mm256_set1_epi32(127);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        bool bad = false;
        const float amax = abs_max(x, kQK, bad);
        if (bad) return false;
        std::memset(&y[i], 0, sizeof(BlockQ8K));
        if (amax == 0.0f) continue;
        float max = 0.0f;
        for (int j = 0; j < kQK; ++j) {  // the first element of largest magnitude
            if (std::fabs(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.0f / max;
        // A block whose largest magnitude is below 127 / FLT_MAX overflows the scale; the
        // scalar code's rounding of ±Inf products (to 0) is the reference there.
        if (!std::isfinite(iscale)) return false;
        const __m256 s = _mm256_set1_ps(iscale);
        for (int j = 0; j < kQK; j += 32) {
            __m256i lo, hi;
            const __m256i q = pack32(_mm256_min_epi32(round_scaled(s, x + j), max127),
                                     _mm256_min_epi32(round_scaled(s, x + j + 8), max127),
                                     _mm256_min_epi32(round_scaled(s, x + j + 16), max127),
                                     _mm256_min_epi32(round_scaled(s, x + j + 24), max127), lo, hi);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), q);
            y[i].bsums[j / 16] = static_cast<int16_t>(hsum_i32(_mm256_madd_epi16(lo, ones)));
            y[i].bsums[j / 16 + 1] = static_cast<int16_t>(hsum_i32(_mm256_madd_epi16(hi, ones)));
        }
        y[i].d = 1.0f / iscale;
    }
    return true;
}

bool i8_token_from_float_avx2(const float* x, void* dst, int64_t n) {
    const int64_t n8 = n / 8 * 8;
    bool bad = false;
    float max = abs_max(x, n8, bad);
    for (int64_t i = n8; i < n; ++i) {
        bad = bad || !std::isfinite(x[i]);
        max = std::max(max, std::fabs(x[i]));
    }
    if (bad) return false;
    auto* h = static_cast<I8TokenHeader*>(dst);
    auto* q = reinterpret_cast<int8_t*>(h + 1);
    const float s = 127.0f / std::max(max, 1e-5f);
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i lo_clamp = _mm256_set1_epi32(-128), hi_clamp = _mm256_set1_epi32(127);
    const auto clamp = [&](__m256i v) {
        return _mm256_max_epi32(_mm256_min_epi32(v, hi_clamp), lo_clamp);
    };
    __m256i sum = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i lo, hi;
        const __m256i v = pack32(clamp(round_scaled(vs, x + i)), clamp(round_scaled(vs, x + i + 8)),
                                 clamp(round_scaled(vs, x + i + 16)),
                                 clamp(round_scaled(vs, x + i + 24)), lo, hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), v);
        sum = _mm256_add_epi32(
            sum, _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones)));
    }
    int32_t total = hsum_i32(sum);
    for (; i < n; ++i) {
        const int v = std::clamp(nearest_int(x[i] * s), -128, 127);
        q[i] = static_cast<int8_t>(v);
        total += v;
    }
    h->s = s;
    h->sum = total;
    return true;
}

void rms_norm_avx2(const float* x, const float* w, float* y, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;  // lanes 0-3 and 4-7 of rms_norm's eight sums
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(x + k);
        const __m256 sq = _mm256_mul_ps(v, v);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    alignas(32) double t[4];
    _mm256_store_pd(t, _mm256_add_pd(s0, s1));  // t[j] = s[j] + s[j + 4]
    double sum = (t[0] + t[1]) + (t[2] + t[3]);
    for (; k < n; ++k) sum += static_cast<double>(x[k] * x[k]);
    const float scale = rms_scale(sum, n, eps);
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (w != nullptr) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; ++i) y[i] = w != nullptr ? (x[i] * scale) * w[i] : x[i] * scale;
}

void relu_squared_glu_avx2(float* g, const float* u, int64_t n) {
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 r = _mm256_max_ps(_mm256_loadu_ps(g + i), zero);  // NaN -> 0, as x > 0 ? x : 0
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; ++i) {
        const float r = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = r * r * u[i];
    }
}

namespace {

// exp_f32 of four floats, in double: the scalar code's clamp, rounding, Horner steps (no fused
// operations) and exponent addition.
inline __m128 exp4(__m128 x) {
    // minps/maxps return their second operand when either is NaN: a NaN x stays NaN.
    x = _mm_max_ps(_mm_set1_ps(-150.0f), _mm_min_ps(_mm_set1_ps(100.0f), x));
    const __m256d z = _mm256_mul_pd(_mm256_cvtps_pd(x), _mm256_set1_pd(kExpLog2e));
    const __m256d kd = _mm256_add_pd(z, _mm256_set1_pd(kExpRound));
    const __m256d r = _mm256_sub_pd(z, _mm256_sub_pd(kd, _mm256_set1_pd(kExpRound)));
    __m256d p = _mm256_set1_pd(kExpPoly[10]);
    for (int i = 9; i >= 0; --i)
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(kExpPoly[i]));
    const __m256i scaled =
        _mm256_add_epi64(_mm256_castpd_si256(p), _mm256_slli_epi64(_mm256_castpd_si256(kd), 52));
    return _mm256_cvtpd_ps(_mm256_castsi256_pd(scaled));
}

inline __m256 exp8(__m256 x) {
    return _mm256_set_m128(exp4(_mm256_extractf128_ps(x, 1)), exp4(_mm256_castps256_ps128(x)));
}

}  // namespace

void exp_f32_avx2(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; ++i) y[i] = exp_f32(x[i]);
}

void silu_glu_avx2(float* g, const float* u, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 neg = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = exp8(_mm256_xor_ps(x, neg));
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    // silu's operations, spelled out: an inline function from ops.h used here would be emitted
    // with AVX2 code, and the linker may pick that copy for the scalar callers too.
    for (; i < n; ++i) g[i] = g[i] / (1.0f + exp_f32(-g[i])) * u[i];
}

VecDotFn vec_dot_avx2(GgmlType weight, I2sLayout layout) {
    switch (weight) {
        case GgmlType::TQ2_0:
            return dot_tq2_0;
        case GgmlType::TQ1_0:
            return dot_tq1_0;
        case GgmlType::IQ2_S:
            return dot_iq2_s;
        case GgmlType::Q4_K:
            return dot_q4_k;
        case GgmlType::BF16:
            return dot_bf16;
        case GgmlType::I2_S:
            return layout == I2sLayout::Arm ? dot_i2s_arm : dot_i2s_x86;
        case GgmlType::Q8_0:
            return dot_q8_0;
        case GgmlType::Q6_K:
            return dot_q6_k;
        case GgmlType::F16:
            return dot_f16;
        case GgmlType::F32:
            return dot_f32;
        default:
            return nullptr;
    }
}

}  // namespace bitnet
