// Ternary GEMM tiles for AVX-512 VNNI (vpdpbusd): TQ2_0 x Q8_K and I2_S (x86 layout) x
// per-token int8. One tile is 16 (row, token) pairs, 4 rows x 4 tokens for prompts or 16 rows
// x 1 token for decode: each weight block is unpacked once into registers and meets every
// token of the tile. Codes {0, 1, 2} multiply signed activations as unsigned bytes; the
// activation sum is subtracted afterwards (code = value + 1).
//
// Results are bit-identical to the scalar reference: integer sums are exact, and each lane
// repeats the reference's float operations in its order (TQ2_0: per block,
// sum += float(isum) * (d_act * d_weight); I2_S: float(isum - sum_act) / s_act).
#include "kernels/gemm.h"

#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "quant/blocks.h"

namespace bitnet {

namespace {

// Lane i of the result holds the sum of the 16 int32 lanes of acc[i].
inline __m512i reduce16(const __m512i* acc) {
    __m512i l1[8], l2[4], l3[2];
    for (int k = 0; k < 8; ++k) {
        const __m512i a = acc[2 * k], b = acc[2 * k + 1];
        l1[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    }
    for (int k = 0; k < 4; ++k) {
        const __m512i a = l1[2 * k], b = l1[2 * k + 1];
        l2[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
    }
    for (int k = 0; k < 2; ++k) {
        const __m512i a = l2[2 * k], b = l2[2 * k + 1];
        l3[k] = _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    return _mm512_add_epi32(_mm512_shuffle_i32x4(l3[0], l3[1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(l3[0], l3[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// 16-bit shift counts: the low 256 bits by lo, the high 256 bits by hi.
inline __m512i shift_counts(short lo, short hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
}

// Codes of 64 values from 32 packed bytes held in 128-bit lanes (0, 1) (half 0) or (2, 3)
// (half 1) of x, shifted by the two counts of `counts`.
template <int Half>
inline __m512i codes(__m512i x, __m512i counts) {
    constexpr int kSel = Half == 0 ? 0x44 : 0xEE;
    return _mm512_and_si512(_mm512_srlv_epi16(_mm512_shuffle_i64x2(x, x, kSel), counts),
                            _mm512_set1_epi8(3));
}

// ---- TQ2_0 ------------------------------------------------------------------------------
// Block: qs[64] then fp16 d. Value 128h + 32l + k is (qs[32h + k] >> 2l) & 3.

template <int R, int T>
void tile_tq2_0(const GemmArgs& g, int64_t r, int64_t t) {
    static_assert(R * T == 16);
    const int64_t nb = g.cols / kQK;
    const __m512i c01 = shift_counts(0, 2), c23 = shift_counts(4, 6);
    // Lane i is (row r + i / T, token t + i % T).
    alignas(64) int32_t d_offset[16];
    for (int i = 0; i < 16; ++i) {
        d_offset[i] = static_cast<int32_t>(static_cast<size_t>(i / T) * g.row_bytes) +
                      static_cast<int32_t>(offsetof(BlockTQ2_0, d)) - 2;
    }
    const __m512i d_index = _mm512_load_si512(d_offset);
    const uint8_t* w0 = g.w + static_cast<size_t>(r) * g.row_bytes;
    __m512 sum = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m512i acc[16];
        for (__m512i& a : acc) a = _mm512_setzero_si512();
        __m512i x[R];
        for (int i = 0; i < R; ++i) {
            x[i] = _mm512_loadu_si512(w0 + static_cast<size_t>(i) * g.row_bytes +
                                      static_cast<size_t>(b) * sizeof(BlockTQ2_0));
        }
        const uint8_t* a0 = g.act + static_cast<size_t>(t) * g.act_row_bytes +
                            static_cast<size_t>(b) * sizeof(BlockQ8K) + offsetof(BlockQ8K, qs);
        for (int p = 0; p < 4; ++p) {
            __m512i av[T];
            for (int j = 0; j < T; ++j) {
                av[j] = _mm512_loadu_si512(a0 + static_cast<size_t>(j) * g.act_row_bytes +
                                           static_cast<size_t>(64 * p));
            }
            for (int i = 0; i < R; ++i) {
                const __m512i c = (p & 2) == 0
                                      ? ((p & 1) == 0 ? codes<0>(x[i], c01) : codes<0>(x[i], c23))
                                      : ((p & 1) == 0 ? codes<1>(x[i], c01) : codes<1>(x[i], c23));
                for (int j = 0; j < T; ++j)
                    acc[i * T + j] = _mm512_dpbusd_epi32(acc[i * T + j], c, av[j]);
            }
        }
        // Activation sums and scales of this block, per lane.
        __m512i qsum;
        __m512 dact;
        if constexpr (T == 1) {
            qsum = _mm512_set1_epi32(g.block_qsum[static_cast<size_t>(t * nb + b)]);
            dact = _mm512_set1_ps(g.block_d[static_cast<size_t>(t * nb + b)]);
        } else {
            alignas(64) int32_t qs[16];
            alignas(64) float ds[16];
            for (int i = 0; i < 16; ++i) {
                const auto k = static_cast<size_t>((t + i % T) * nb + b);
                qs[i] = g.block_qsum[k];
                ds[i] = g.block_d[k];
            }
            qsum = _mm512_load_si512(qs);
            dact = _mm512_load_ps(ds);
        }
        const __m512i isum = _mm512_sub_epi32(reduce16(acc), qsum);
        const __m512i half = _mm512_srli_epi32(
            _mm512_i32gather_epi32(d_index, w0 + static_cast<size_t>(b) * sizeof(BlockTQ2_0), 1),
            16);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(half));
        sum = _mm512_add_ps(sum, _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dact, dw)));
    }
    alignas(64) float out[16];
    _mm512_store_ps(out, sum);
    for (int i = 0; i < 16; ++i) {
        g.y[static_cast<size_t>(t + i % T) * static_cast<size_t>(g.ldy) +
            static_cast<size_t>(r + i / T)] = g.scale * out[i];
    }
}

// ---- I2_S, x86 layout -------------------------------------------------------------------
// 128 values in 32 bytes; value 32p + k is (byte[k] >> (6 - 2p)) & 3. Activations: a header
// {float s; int32 sum} then int8 values.

template <int R, int T>
void tile_i2s(const GemmArgs& g, int64_t r, int64_t t) {
    static_assert(R * T == 16);
    const __m512i c01 = shift_counts(6, 4), c23 = shift_counts(2, 0);
    const uint8_t* w0 = g.w + static_cast<size_t>(r) * g.row_bytes;
    const size_t head = 8;  // sizeof(I8TokenHeader)
    const uint8_t* a0 = g.act + static_cast<size_t>(t) * g.act_row_bytes + head;
    __m512i acc[16];
    for (__m512i& a : acc) a = _mm512_setzero_si512();
    auto step = [&](const __m512i* x, int64_t v0, auto half) {
        constexpr int kHalf = decltype(half)::value;
        for (int p = 0; p < 2; ++p) {
            __m512i av[T];
            for (int j = 0; j < T; ++j) {
                av[j] = _mm512_loadu_si512(a0 + static_cast<size_t>(j) * g.act_row_bytes +
                                           static_cast<size_t>(v0 + 64 * p));
            }
            for (int i = 0; i < R; ++i) {
                const __m512i c = p == 0 ? codes<kHalf>(x[i], c01) : codes<kHalf>(x[i], c23);
                for (int j = 0; j < T; ++j)
                    acc[i * T + j] = _mm512_dpbusd_epi32(acc[i * T + j], c, av[j]);
            }
        }
    };
    int64_t v = 0;
    __m512i x[R];
    for (; v + 256 <= g.cols; v += 256) {  // two blocks: 64 bytes per row
        for (int i = 0; i < R; ++i)
            x[i] = _mm512_loadu_si512(w0 + static_cast<size_t>(i) * g.row_bytes +
                                      static_cast<size_t>(v / 4));
        step(x, v, std::integral_constant<int, 0>{});
        step(x, v + 128, std::integral_constant<int, 1>{});
    }
    if (v < g.cols) {  // a last single block: 32 bytes, never read past the row
        for (int i = 0; i < R; ++i) {
            x[i] = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                w0 + static_cast<size_t>(i) * g.row_bytes + static_cast<size_t>(v / 4))));
        }
        step(x, v, std::integral_constant<int, 0>{});
    }
    alignas(64) float s[16];
    alignas(64) int32_t qsum[16];
    for (int i = 0; i < 16; ++i) {
        const uint8_t* h = g.act + static_cast<size_t>(t + i % T) * g.act_row_bytes;
        s[i] = *reinterpret_cast<const float*>(h);
        qsum[i] = *reinterpret_cast<const int32_t*>(h + 4);
    }
    const __m512i isum = _mm512_sub_epi32(reduce16(acc), _mm512_load_si512(qsum));
    const __m512 dot = _mm512_div_ps(_mm512_cvtepi32_ps(isum), _mm512_load_ps(s));
    alignas(64) float out[16];
    _mm512_store_ps(out, dot);
    for (int i = 0; i < 16; ++i) {
        g.y[static_cast<size_t>(t + i % T) * static_cast<size_t>(g.ldy) +
            static_cast<size_t>(r + i / T)] = g.scale * out[i];
    }
}

// Covers rows [r0, r1) x all tokens with 4x4 tiles, then 16x1 tiles for the tokens left;
// returns the first row not covered (the caller finishes the rest with row dot products).
template <void (*Tile44)(const GemmArgs&, int64_t, int64_t),
          void (*Tile161)(const GemmArgs&, int64_t, int64_t)>
int64_t run_tiles(const GemmArgs& g, int64_t r0, int64_t r1) {
    const int64_t t4 = g.n_tokens / 4 * 4;
    int64_t r = r0;
    for (; r + 16 <= r1; r += 16) {
        for (int64_t rr = r; rr < r + 16; rr += 4) {
            for (int64_t t = 0; t < t4; t += 4) Tile44(g, rr, t);
        }
        for (int64_t t = t4; t < g.n_tokens; ++t) Tile161(g, r, t);
    }
    return r;
}

}  // namespace

int64_t gemm_tq2_0_avx512vnni(const GemmArgs& g, int64_t r0, int64_t r1) {
    return run_tiles<tile_tq2_0<4, 4>, tile_tq2_0<16, 1>>(g, r0, r1);
}

int64_t gemm_i2s_x86_avx512vnni(const GemmArgs& g, int64_t r0, int64_t r1) {
    return run_tiles<tile_i2s<4, 4>, tile_i2s<16, 1>>(g, r0, r1);
}

}  // namespace bitnet

// ---- rows16 (see kernels/repack.h) ---------------------------------------------------------

namespace bitnet {

namespace {

inline __m512i bcast4(const uint8_t* p) {
    int32_t v = 0;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// Independent dependency chains per token: vpdpbusd's latency would otherwise bound a lone
// accumulator (decode) well below memory speed. Integer sums, so the split changes nothing.
template <int T>
constexpr int kChainsFor = T >= 4 ? 1 : 4 / T;

// acc[t * C + c] += codes x the 4 activation bytes at act[t] + off, for 4 shifts s (chain s % C).
template <int T, int C>
inline void rows16_step(__m512i* acc, __m512i packed, const uint8_t* const* act, size_t off) {
    const __m512i mask = _mm512_set1_epi8(3);
    for (int s = 0; s < 4; ++s) {
        const __m512i codes = _mm512_and_si512(_mm512_srli_epi16(packed, 2 * s), mask);
        for (int t = 0; t < T; ++t) {
            __m512i& a = acc[t * C + s % C];
            a = _mm512_dpbusd_epi32(a, codes, bcast4(act[t] + off + static_cast<size_t>(4 * s)));
        }
    }
}

template <int T, int C>
inline __m512i chain_sum(const __m512i* acc, int t) {
    __m512i v = acc[t * C];
    for (int c = 1; c < C; ++c) v = _mm512_add_epi32(v, acc[t * C + c]);
    return v;
}

template <int T>
void rows16_tq2_0(const GemmArgs& g, int64_t group, int64_t t0) {
    constexpr int kC = kChainsFor<T>;
    const int64_t nb = g.cols / kQK;
    constexpr size_t kGroupBlock = 16 * sizeof(BlockTQ2_0);
    const uint8_t* base = g.w + static_cast<size_t>(group * nb) * kGroupBlock;
    __m512 sum[T];
    for (__m512& s : sum) s = _mm512_setzero_ps();
    const uint8_t* act[T];
    for (int t = 0; t < T; ++t) {
        act[t] = g.act + static_cast<size_t>(t0 + t) * g.act_row_bytes + offsetof(BlockQ8K, qs);
    }
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = base + static_cast<size_t>(b) * kGroupBlock;
        const size_t a_off = static_cast<size_t>(b) * sizeof(BlockQ8K);
        __m512i acc[T * kC];
        for (__m512i& a : acc) a = _mm512_setzero_si512();
        for (int q = 0; q < 16; ++q) {
            rows16_step<T, kC>(acc, _mm512_loadu_si512(blk + 64 * q), act,
                               a_off + static_cast<size_t>(16 * q));
        }
        const __m512 dw =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 * 64)));
        for (int t = 0; t < T; ++t) {
            const auto k = static_cast<size_t>((t0 + t) * nb + b);
            const __m512i isum =
                _mm512_sub_epi32(chain_sum<T, kC>(acc, t), _mm512_set1_epi32(g.block_qsum[k]));
            const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(g.block_d[k]), dw);
            sum[t] = _mm512_add_ps(sum[t], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), scale));
        }
    }
    for (int t = 0; t < T; ++t) {
        _mm512_storeu_ps(g.y + static_cast<size_t>(t0 + t) * static_cast<size_t>(g.ldy) +
                             static_cast<size_t>(group * 16),
                         _mm512_mul_ps(_mm512_set1_ps(g.scale), sum[t]));
    }
}

template <int T>
void rows16_i2s(const GemmArgs& g, int64_t group, int64_t t0) {
    constexpr int kC = kChainsFor<T>;
    const int64_t nq = g.cols / 16;
    const uint8_t* base = g.w + static_cast<size_t>(group * nq) * 64;
    const uint8_t* act[T];
    for (int t = 0; t < T; ++t) act[t] = g.act + static_cast<size_t>(t0 + t) * g.act_row_bytes;
    __m512i acc[T * kC];
    for (__m512i& a : acc) a = _mm512_setzero_si512();
    for (int64_t q = 0; q < nq; ++q) {
        rows16_step<T, kC>(acc, _mm512_loadu_si512(base + static_cast<size_t>(q) * 64), act,
                           8 + static_cast<size_t>(16 * q));
    }
    for (int t = 0; t < T; ++t) {
        float s = 0;
        int32_t qsum = 0;
        std::memcpy(&s, act[t], 4);
        std::memcpy(&qsum, act[t] + 4, 4);
        const __m512i isum = _mm512_sub_epi32(chain_sum<T, kC>(acc, t), _mm512_set1_epi32(qsum));
        const __m512 dot = _mm512_div_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(s));
        _mm512_storeu_ps(g.y + static_cast<size_t>(t0 + t) * static_cast<size_t>(g.ldy) +
                             static_cast<size_t>(group * 16),
                         _mm512_mul_ps(_mm512_set1_ps(g.scale), dot));
    }
}

// Q8_0 rows16 (the requantized output head): per 32-value block, 8 vectors of int8 weights
// (lane r: 4 consecutive values of row r), the 16 rows' fp16 scales and their int16 weight sums.
// Activations are offset to unsigned (a + 128, precomputed per matmul) so vpdpbusd can take
// them; isum = Σ w·(a + 128) - 128 Σ w is the reference's Σ w·a exactly.
template <int T>
void rows16_q8_0(const GemmArgs& g, int64_t group, int64_t t0) {
    constexpr int kC = T >= 2 ? 1 : 2;
    const int64_t nb = g.cols / 32;
    const uint8_t* base = g.w + static_cast<size_t>(group * nb) * kRows16Q8Block;
    __m512 sum[T];
    for (__m512& s : sum) s = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = base + static_cast<size_t>(b) * kRows16Q8Block;
        __m512i acc[T * kC];
        for (__m512i& a : acc) a = _mm512_setzero_si512();
        for (int k = 0; k < 8; ++k) {
            const __m512i wv = _mm512_loadu_si512(blk + 64 * k);
            for (int t = 0; t < T; ++t) {
                const uint8_t* au = g.act_u8 + static_cast<size_t>(t0 + t) * g.cols +
                                    static_cast<size_t>(32 * b + 4 * k);
                __m512i& a = acc[t * kC + k % kC];
                a = _mm512_dpbusd_epi32(a, bcast4(au), wv);
            }
        }
        const __m512 dw =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 8 * 64)));
        const __m512i wsum128 = _mm512_slli_epi32(
            _mm512_cvtepi16_epi32(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 8 * 64 + 32))),
            7);
        for (int t = 0; t < T; ++t) {
            const __m512i isum = _mm512_sub_epi32(chain_sum<T, kC>(acc, t), wsum128);
            const __m512 d = _mm512_mul_ps(
                dw, _mm512_set1_ps(g.block_d[static_cast<size_t>((t0 + t) * nb + b)]));
            sum[t] = _mm512_add_ps(sum[t], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), d));
        }
    }
    for (int t = 0; t < T; ++t) {
        _mm512_storeu_ps(g.y + static_cast<size_t>(t0 + t) * static_cast<size_t>(g.ldy) +
                             static_cast<size_t>(group * 16),
                         _mm512_mul_ps(_mm512_set1_ps(g.scale), sum[t]));
    }
}

// Every 16-row group in [r0, r1) against all tokens, 8 tokens at a time, then 4, 2, 1.
template <
    void (*T8)(const GemmArgs&, int64_t, int64_t), void (*T4)(const GemmArgs&, int64_t, int64_t),
    void (*T2)(const GemmArgs&, int64_t, int64_t), void (*T1)(const GemmArgs&, int64_t, int64_t)>
int64_t run_rows16(const GemmArgs& g, int64_t r0, int64_t r1) {
    for (int64_t grp = r0 / 16; grp < r1 / 16; ++grp) {
        int64_t t = 0;
        for (; t + 8 <= g.n_tokens; t += 8) T8(g, grp, t);
        if (t + 4 <= g.n_tokens) {
            T4(g, grp, t);
            t += 4;
        }
        if (t + 2 <= g.n_tokens) {
            T2(g, grp, t);
            t += 2;
        }
        if (t < g.n_tokens) T1(g, grp, t);
    }
    return r1;
}

}  // namespace

int64_t gemm_rows16_tq2_0_avx512vnni(const GemmArgs& g, int64_t r0, int64_t r1) {
    return run_rows16<rows16_tq2_0<8>, rows16_tq2_0<4>, rows16_tq2_0<2>, rows16_tq2_0<1>>(g, r0,
                                                                                          r1);
}

int64_t gemm_rows16_q8_0_avx512vnni(const GemmArgs& g, int64_t r0, int64_t r1) {
    return run_rows16<rows16_q8_0<8>, rows16_q8_0<4>, rows16_q8_0<2>, rows16_q8_0<1>>(g, r0, r1);
}

int64_t gemm_rows16_i2s_avx512vnni(const GemmArgs& g, int64_t r0, int64_t r1) {
    return run_rows16<rows16_i2s<8>, rows16_i2s<4>, rows16_i2s<2>, rows16_i2s<1>>(g, r0, r1);
}

}  // namespace bitnet
