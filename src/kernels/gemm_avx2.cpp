// rows16 kernels (kernels/repack.h) for AVX2: the same interleaved tiles as the AVX-512 VNNI
// ones, multiplied with vpmaddubsw. A 64-byte vector of the layout is two ymm halves (rows 0-7
// and 8-15). Products of a code (0..2) and an int8 activation summed in pairs fit int16, and so
// do up to 64 of those pair sums: both activation formats stay within [-127, 127] (Q8_K and
// I8Token scale the largest magnitude to 127), so a pair sum is at most 508 and 64 of them
// 32512. int16 lanes therefore accumulate 64 steps (256 values: a TQ2_0 block, two I2_S
// blocks) before one vpmaddwd widens them. (The batched TQ2_0 kernel starts each lane from minus
// the sum of the activations it will meet, the token tiles' header, so that it ends at the sum of
// weights -1..1 times activations, at most 128 x 127 in magnitude; vpaddw wraps, so only that
// final value has to fit.) Integer sums are exact and each lane repeats the scalar
// reference's float operations, so results are bit-identical to it. IQ2_S (its panels for
// batches and its held 4-bit codes) follows further down, with its own bounds.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/iq2s_avx2.h"
#include "kernels/repack.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

inline __m256i bcast4(const uint8_t* p) {
    int32_t v = 0;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Decoding (one or two tokens) streams the weights once and spends about two thirds of a Zen 3
// core on unpacking them at full bandwidth: without help, the memory stalls and the arithmetic
// do not overlap well. A software prefetch of the lines kPrefetchAhead bytes past the ones being
// read keeps the next blocks on their way; measured on a Zen 3 EPYC with 2B-4T shapes (120
// regions per token, 2 threads, alternating in one process), 2 KiB ahead against none: TQ2_0
// 18.8 -> 21.0 GB/s, I2_S 18.4 -> 23.2 GB/s; 1 and 4 KiB are within noise of 2. Prefetching
// past the end of the matrix is harmless (a prefetch never faults). The F16 head's row dots
// (kernels/vec_dot_avx2.cpp) and q8_0_rows8 need no help: the same prefetch made them 11-15 %
// slower; the Q6_K head's dots have it (dot_q6_k). The TQ2_0 kernel spreads its prefetches, one
// per 64-byte step: issuing a 1056-byte block's 17 in one burst before its 16 steps streamed the
// ternary regions of a token at 15.6 GB/s against 19.0 spread (5 alternating runs, Zen 3 EPYC),
// and behind I2_S's bursts of 8 per 512 bytes.
constexpr size_t kPrefetchAhead = 2048;

inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
    const char* ahead = reinterpret_cast<const char*>(p) + kPrefetchAhead;
    for (size_t l = 0; l < bytes; l += 64) _mm_prefetch(ahead + l, _MM_HINT_T0);
}

// acc16[t][h] += codes · activations over the 4 shifts of one 64-byte vector.
template <int T>
inline void step(__m256i (*acc16)[2], const uint8_t* vec, const uint8_t* const* act, size_t off) {
    const __m256i mask = _mm256_set1_epi8(3);
    const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vec));
    const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vec + 32));
    for (int s = 0; s < 4; ++s) {
        const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(p0, 2 * s), mask);
        const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(p1, 2 * s), mask);
        for (int t = 0; t < T; ++t) {
            const __m256i a = bcast4(act[t] + off + static_cast<size_t>(4 * s));
            acc16[t][0] = _mm256_add_epi16(acc16[t][0], _mm256_maddubs_epi16(c0, a));
            acc16[t][1] = _mm256_add_epi16(acc16[t][1], _mm256_maddubs_epi16(c1, a));
        }
    }
}

template <int T>
void rows16_tq2_0(const GemmArgs& g, int64_t group, int64_t t0) {
    const int64_t nb = g.cols / kQK;
    constexpr size_t kGroupBlock = 16 * sizeof(BlockTQ2_0);
    const uint8_t* base = g.w + static_cast<size_t>(group * nb) * kGroupBlock;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 sum[T][2];
    const uint8_t* act[T];
    for (int t = 0; t < T; ++t) {
        sum[t][0] = sum[t][1] = _mm256_setzero_ps();
        act[t] = g.act + static_cast<size_t>(t0 + t) * g.act_row_bytes + offsetof(BlockQ8K, qs);
    }
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = base + static_cast<size_t>(b) * kGroupBlock;
        const size_t a_off = static_cast<size_t>(b) * sizeof(BlockQ8K);
        __m256i acc16[T][2];
        for (int t = 0; t < T; ++t) acc16[t][0] = acc16[t][1] = _mm256_setzero_si256();
        for (int q = 0; q < 16; ++q) {
            _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchAhead + 64 * q, _MM_HINT_T0);
            step<T>(acc16, blk + 64 * q, act, a_off + static_cast<size_t>(16 * q));
        }
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchAhead + 1024, _MM_HINT_T0);
        const __m128i* d = reinterpret_cast<const __m128i*>(blk + 16 * 64);
        const __m256 dw[2] = {_mm256_cvtph_ps(_mm_loadu_si128(d)),
                              _mm256_cvtph_ps(_mm_loadu_si128(d + 1))};
        for (int t = 0; t < T; ++t) {
            const auto k = static_cast<size_t>((t0 + t) * nb + b);
            const __m256i qsum = _mm256_set1_epi32(g.block_qsum[k]);
            const __m256 da = _mm256_set1_ps(g.block_d[k]);
            for (int h = 0; h < 2; ++h) {
                const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(acc16[t][h], ones), qsum);
                sum[t][h] = _mm256_add_ps(
                    sum[t][h], _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(da, dw[h])));
            }
        }
    }
    const __m256 scale = _mm256_set1_ps(g.scale);
    for (int t = 0; t < T; ++t) {
        float* y = g.y + static_cast<size_t>(t0 + t) * static_cast<size_t>(g.ldy) +
                   static_cast<size_t>(group * 16);
        _mm256_storeu_ps(y, _mm256_mul_ps(scale, sum[t][0]));
        _mm256_storeu_ps(y + 8, _mm256_mul_ps(scale, sum[t][1]));
    }
}

template <int T>
void rows16_i2s(const GemmArgs& g, int64_t group, int64_t t0) {
    const int64_t nq = g.cols / 16;
    const uint8_t* base = g.w + static_cast<size_t>(group * nq) * 64;
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t* act[T];
    __m256i acc[T][2];
    for (int t = 0; t < T; ++t) {
        act[t] = g.act + static_cast<size_t>(t0 + t) * g.act_row_bytes;
        acc[t][0] = acc[t][1] = _mm256_setzero_si256();
    }
    for (int64_t q0 = 0; q0 < nq; q0 += 8) {  // one 128-value block at a time
        prefetch_ahead(base + static_cast<size_t>(q0) * 64, 8 * 64);
        __m256i acc16[T][2];
        for (int t = 0; t < T; ++t) acc16[t][0] = acc16[t][1] = _mm256_setzero_si256();
        for (int64_t q = q0; q < q0 + 8; ++q)
            step<T>(acc16, base + static_cast<size_t>(q) * 64, act,
                    8 + static_cast<size_t>(16 * q));
        for (int t = 0; t < T; ++t) {
            for (int h = 0; h < 2; ++h)
                acc[t][h] = _mm256_add_epi32(acc[t][h], _mm256_madd_epi16(acc16[t][h], ones));
        }
    }
    const __m256 scale = _mm256_set1_ps(g.scale);
    for (int t = 0; t < T; ++t) {
        float s = 0;
        int32_t qsum = 0;
        std::memcpy(&s, act[t], 4);
        std::memcpy(&qsum, act[t] + 4, 4);
        float* y = g.y + static_cast<size_t>(t0 + t) * static_cast<size_t>(g.ldy) +
                   static_cast<size_t>(group * 16);
        for (int h = 0; h < 2; ++h) {
            const __m256i isum = _mm256_sub_epi32(acc[t][h], _mm256_set1_epi32(qsum));
            const __m256 dot = _mm256_div_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(s));
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(scale, dot));
        }
    }
}

// Batches of 4 or more tokens: each 256-value block of a 16-row group is unpacked once into
// 4 KiB of byte codes (64 steps of 2 x 32 bytes) that stay in L1 while every token of the
// batch meets them, so the inner loop is loads, vpmaddubsw and vpaddw only. Tokens go 4 at a
// time from their token tiles (kernels/gemm.h), the last n_tokens % 4 one at a time from their
// rows. The integer sums are exact and the float steps per lane are those of rows16_tq2_0 in
// the same order, so the results are bit-identical to it and to the scalar reference.
// n consecutive 64-byte vectors of a group -> 4n x 64 bytes of codes, shift by shift.
inline void unpack_vectors(const uint8_t* blk, int64_t n, uint8_t* u) {
    const __m256i mask = _mm256_set1_epi8(3);
    for (int64_t q = 0; q < n; ++q) {
        const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * q));
        const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * q + 32));
        for (int s = 0; s < 4; ++s) {
            uint8_t* dst = u + 64 * (4 * q + s);
            _mm256_store_si256(reinterpret_cast<__m256i*>(dst),
                               _mm256_and_si256(_mm256_srli_epi16(p0, 2 * s), mask));
            _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32),
                               _mm256_and_si256(_mm256_srli_epi16(p1, 2 * s), mask));
        }
    }
}

// Token tiles (kernels/gemm.h): chunks of 64 steps of 4 values (256 values), the last one
// shorter when the row is.
constexpr int64_t kChunkSteps = 64;

inline int64_t act_chunks(int64_t cols) {
    return (cols / 4 + kChunkSteps - 1) / kChunkSteps;
}

inline int64_t chunk_steps(int64_t cols, int64_t c) {
    return std::min<int64_t>(kChunkSteps, cols / 4 - kChunkSteps * c);
}

// Bytes of one tile's part of a chunk of `steps` steps: the header, then 4 tokens x 4 values.
constexpr size_t tile_bytes(int64_t steps) {
    return static_cast<size_t>(16 + 16 * steps);
}

// Where tile j's part of chunk c starts (every chunk before c is whole).
inline size_t act_tile_offset(int64_t cols, int64_t n_tiles, int64_t c, int64_t j) {
    return static_cast<size_t>(c * n_tiles) * tile_bytes(kChunkSteps) +
           static_cast<size_t>(j) * tile_bytes(chunk_steps(cols, c));
}

// acc16[h] = codes · activations of one token (its row, act) over N unpacked steps of 4 values.
template <int N>
inline void mac1_unpacked(const uint8_t* u, const uint8_t* act, __m256i acc16[2]) {
    __m256i r0 = _mm256_setzero_si256(), r1 = r0;
#pragma GCC unroll 4
    for (int i = 0; i < N; ++i) {
        const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(u + 64 * i));
        const __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(u + 64 * i + 32));
        const __m256i a = bcast4(act + static_cast<size_t>(4 * i));
        r0 = _mm256_add_epi16(r0, _mm256_maddubs_epi16(c0, a));
        r1 = _mm256_add_epi16(r1, _mm256_maddubs_epi16(c1, a));
    }
    acc16[0] = r0;
    acc16[1] = r1;
}

// A 4-token tile over n (a multiple of 4) unpacked steps, in assembly: GCC's schedule of the
// intrinsics hoists all four broadcasts, runs out of the 16 ymm registers and adds copies and a
// spill to every step (37 instructions for 8 vpmaddubsw). Here a step is 2 loads, 4 broadcasts,
// 8 vpmaddubsw and 8 vpaddw, four steps per loop iteration. `tile` is the tile's part of a
// chunk: token k's accumulators (acc16[k][0], rows 0-7, and acc16[k][1], rows 8-15) start from
// its header word and add the products of its 4 values at tile + 16 + 16 * step + 4 * k.
#define BITNET_MAC4_STEP(I)                   \
    "vmovdqa " #I                             \
    "*64(%[u]), %%ymm8\n\t"                   \
    "vmovdqa " #I                             \
    "*64+32(%[u]), %%ymm9\n\t"                \
    "vpbroadcastd " #I                        \
    "*16(%[a]), %%ymm10\n\t"                  \
    "vpmaddubsw %%ymm10, %%ymm8, %%ymm11\n\t" \
    "vpmaddubsw %%ymm10, %%ymm9, %%ymm12\n\t" \
    "vpaddw %%ymm11, %[r0], %[r0]\n\t"        \
    "vpaddw %%ymm12, %[r1], %[r1]\n\t"        \
    "vpbroadcastd " #I                        \
    "*16+4(%[a]), %%ymm13\n\t"                \
    "vpmaddubsw %%ymm13, %%ymm8, %%ymm14\n\t" \
    "vpmaddubsw %%ymm13, %%ymm9, %%ymm15\n\t" \
    "vpaddw %%ymm14, %[r2], %[r2]\n\t"        \
    "vpaddw %%ymm15, %[r3], %[r3]\n\t"        \
    "vpbroadcastd " #I                        \
    "*16+8(%[a]), %%ymm10\n\t"                \
    "vpmaddubsw %%ymm10, %%ymm8, %%ymm11\n\t" \
    "vpmaddubsw %%ymm10, %%ymm9, %%ymm12\n\t" \
    "vpaddw %%ymm11, %[r4], %[r4]\n\t"        \
    "vpaddw %%ymm12, %[r5], %[r5]\n\t"        \
    "vpbroadcastd " #I                        \
    "*16+12(%[a]), %%ymm13\n\t"               \
    "vpmaddubsw %%ymm13, %%ymm8, %%ymm14\n\t" \
    "vpmaddubsw %%ymm13, %%ymm9, %%ymm15\n\t" \
    "vpaddw %%ymm14, %[r6], %[r6]\n\t"        \
    "vpaddw %%ymm15, %[r7], %[r7]\n\t"

inline void mac4_tile(const uint8_t* u, const uint8_t* tile, int64_t n, __m256i (*acc16)[2]) {
    __m256i r0 = bcast4(tile), r1 = r0, r2 = bcast4(tile + 4), r3 = r2, r4 = bcast4(tile + 8),
            r5 = r4, r6 = bcast4(tile + 12), r7 = r6;
    const uint8_t* a = tile + 16;
    __asm__(
        "1:\n\t" BITNET_MAC4_STEP(0) BITNET_MAC4_STEP(1) BITNET_MAC4_STEP(2) BITNET_MAC4_STEP(3)
        "add $256, %[u]\n\t"
        "add $64, %[a]\n\t"
        "sub $4, %[n]\n\t"
        "jnz 1b\n\t"
        : [r0] "+x"(r0), [r1] "+x"(r1), [r2] "+x"(r2), [r3] "+x"(r3), [r4] "+x"(r4),
          [r5] "+x"(r5), [r6] "+x"(r6), [r7] "+x"(r7), [u] "+r"(u), [a] "+r"(a), [n] "+r"(n)
        :
        : "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    acc16[0][0] = r0;
    acc16[0][1] = r1;
    acc16[1][0] = r2;
    acc16[1][1] = r3;
    acc16[2][0] = r4;
    acc16[2][1] = r5;
    acc16[3][0] = r6;
    acc16[3][1] = r7;
}
#undef BITNET_MAC4_STEP

// One TQ2_0 block of one token: isum[h] (rows 8h..8h+7) joins its float sums as the reference
// adds it, sum += isum * (da * dw), from sum = 0 at the first block (not read: the buffer is not
// cleared); after the last block y = scale * sum goes out directly, amid the arithmetic (a pass
// of its own stalled on the stores' cache misses).
inline void tq2_0_block_sums(const __m256i isum[2], float da, const __m256 dw[2], float* sum,
                             float* y, bool first, bool last, float scale) {
    const __m256 vda = _mm256_set1_ps(da);
    for (int h = 0; h < 2; ++h) {
        const __m256 s =
            _mm256_add_ps(first ? _mm256_setzero_ps() : _mm256_loadu_ps(sum + 8 * h),
                          _mm256_mul_ps(_mm256_cvtepi32_ps(isum[h]), _mm256_mul_ps(vda, dw[h])));
        if (last)
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(_mm256_set1_ps(scale), s));
        else
            _mm256_storeu_ps(sum + 8 * h, s);
    }
}

void rows16_tq2_0_batched(const GemmArgs& g, int64_t group) {
    const int64_t nb = g.cols / kQK, n = g.n_tokens, n_tiles = n / kActTileTokens;
    constexpr size_t kGroupBlock = 16 * sizeof(BlockTQ2_0);
    const uint8_t* base = g.w + static_cast<size_t>(group * nb) * kGroupBlock;
    // GemmArgs' fields in locals: the stores through float pointers below would otherwise make
    // the compiler read them again for every token.
    const float* const block_d = g.block_d;
    const int32_t* const block_qsum = g.block_qsum;
    float* const y = g.y + static_cast<size_t>(group * 16);
    const auto ldy = static_cast<size_t>(g.ldy);
    const float scale = g.scale;
    const __m256i ones = _mm256_set1_epi16(1);
    alignas(32) uint8_t u[64 * 64];
    float* const sum = thread_scratch_f32(static_cast<size_t>(16 * n));
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = base + static_cast<size_t>(b) * kGroupBlock;
        unpack_vectors(blk, 16, u);
        const __m128i* d = reinterpret_cast<const __m128i*>(blk + 16 * 64);
        const __m256 dw[2] = {_mm256_cvtph_ps(_mm_loadu_si128(d)),
                              _mm256_cvtph_ps(_mm_loadu_si128(d + 1))};
        const bool first = b == 0, last = b + 1 == nb;
        const uint8_t* tile = g.act_tiles + act_tile_offset(g.cols, n_tiles, b, 0);
        for (int64_t j = 0; j < n_tiles; ++j, tile += tile_bytes(kChunkSteps)) {
            // The next block's 17 lines of codes and scales, one per tile.
            if (j < 17)
                _mm_prefetch(reinterpret_cast<const char*>(blk) + kGroupBlock + 64 * j,
                             _MM_HINT_T0);
            __m256i acc16[4][2];
            mac4_tile(u, tile, kChunkSteps, acc16);  // sums of weights -1..1 times values
            for (int k = 0; k < 4; ++k) {
                const auto t = static_cast<size_t>(4 * j + k);
                const __m256i isum[2] = {_mm256_madd_epi16(acc16[k][0], ones),
                                         _mm256_madd_epi16(acc16[k][1], ones)};
                tq2_0_block_sums(isum, block_d[t * static_cast<size_t>(nb) + b], dw, sum + 16 * t,
                                 y + t * ldy, first, last, scale);
            }
        }
        for (int64_t t = 4 * n_tiles; t < n; ++t) {
            const auto k = static_cast<size_t>(t * nb + b);
            __m256i acc16[2];
            mac1_unpacked<kChunkSteps>(u,
                                       g.act + static_cast<size_t>(t) * g.act_row_bytes +
                                           offsetof(BlockQ8K, qs) +
                                           static_cast<size_t>(b) * sizeof(BlockQ8K),
                                       acc16);  // sums of codes 0..2 times values
            const __m256i qsum = _mm256_set1_epi32(block_qsum[k]);
            const __m256i isum[2] = {_mm256_sub_epi32(_mm256_madd_epi16(acc16[0], ones), qsum),
                                     _mm256_sub_epi32(_mm256_madd_epi16(acc16[1], ones), qsum)};
            tq2_0_block_sums(isum, block_d[k], dw, sum + 16 * t, y + static_cast<size_t>(t) * ldy,
                             first, last, scale);
        }
    }
}

// The same for I2_S: two 128-value blocks of a group (16 vectors, a chunk of 64 steps; a last
// single block is a chunk of 32) unpacked into 4 KiB, int16 sums per chunk widened into
// per-token int32 sums (the tiles' headers are zero), the scalar reference's epilogue at the end.
void rows16_i2s_batched(const GemmArgs& g, int64_t group) {
    const int64_t nq = g.cols / 16, n = g.n_tokens, n_tiles = n / kActTileTokens;
    const uint8_t* base = g.w + static_cast<size_t>(group * nq) * 64;
    const __m256i ones = _mm256_set1_epi16(1);
    alignas(32) uint8_t u[64 * 64];
    int32_t* const isums = thread_scratch_i32(static_cast<size_t>(16 * n));
    bool first = true;  // the first chunk's sums are stored, not added (the buffer is not cleared)
    const auto add_sums = [&](int64_t t, const __m256i acc16[2]) {
        for (int h = 0; h < 2; ++h) {
            auto* p = reinterpret_cast<__m256i*>(isums + 16 * t + 8 * h);
            const __m256i s = _mm256_madd_epi16(acc16[h], ones);
            _mm256_storeu_si256(p, first ? s : _mm256_add_epi32(_mm256_loadu_si256(p), s));
        }
    };
    for (int64_t q0 = 0, c = 0; q0 < nq; q0 += 16, ++c, first = false) {
        const int64_t nv = std::min<int64_t>(16, nq - q0);  // 16, or 8 for a last single block
        const uint8_t* chunk = base + static_cast<size_t>(q0) * 64;
        unpack_vectors(chunk, nv, u);
        const int64_t steps = 4 * nv;
        const uint8_t* tile = g.act_tiles + act_tile_offset(g.cols, n_tiles, c, 0);
        for (int64_t j = 0; j < n_tiles; ++j, tile += tile_bytes(steps)) {
            if (j < 16)  // the next chunk's lines, one per tile
                _mm_prefetch(reinterpret_cast<const char*>(chunk) + 1024 + 64 * j, _MM_HINT_T0);
            __m256i acc16[4][2];
            mac4_tile(u, tile, steps, acc16);
            for (int k = 0; k < 4; ++k) add_sums(4 * j + k, acc16[k]);
        }
        for (int64_t t = 4 * n_tiles; t < n; ++t) {
            const uint8_t* a =
                g.act + static_cast<size_t>(t) * g.act_row_bytes + 8 + static_cast<size_t>(16 * q0);
            __m256i acc16[2];
            if (nv == 16)
                mac1_unpacked<64>(u, a, acc16);
            else
                mac1_unpacked<32>(u, a, acc16);
            add_sums(t, acc16);
        }
    }
    const __m256 scale = _mm256_set1_ps(g.scale);
    for (int64_t t = 0; t < n; ++t) {
        const uint8_t* a = g.act + static_cast<size_t>(t) * g.act_row_bytes;
        float s = 0;
        int32_t qsum = 0;
        std::memcpy(&s, a, 4);
        std::memcpy(&qsum, a + 4, 4);
        float* y = g.y + static_cast<size_t>(t) * static_cast<size_t>(g.ldy) +
                   static_cast<size_t>(group * 16);
        for (int h = 0; h < 2; ++h) {
            const __m256i acc =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(isums + 16 * t + 8 * h));
            const __m256i isum = _mm256_sub_epi32(acc, _mm256_set1_epi32(qsum));
            const __m256 dot = _mm256_div_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(s));
            _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(scale, dot));
        }
    }
}

// Q8_0 weights in their stored layout, 8 rows at a time: per 32-value block the 8 integer dots
// (the sign trick: |w| times sign(a, w), summed in pairs) are reduced into one vector with a
// lane per row, converted, scaled by the two block scales and added: per lane the scalar
// reference's operations in its order (integer sums exact; then sum += isum * (dw * da)), so
// the results are bit-identical to it, while 8 rows hide the latency of that serial sum.
inline __m256i q8_block_dot(const BlockQ8_0* w, const __m256i y) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w->qs));
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

void q8_0_rows8(const GemmArgs& g, int64_t r0) {
    const int64_t nb = g.cols / 32;
    const BlockQ8_0* rows[8];
    for (int r = 0; r < 8; ++r)
        rows[r] =
            reinterpret_cast<const BlockQ8_0*>(g.w + static_cast<size_t>(r0 + r) * g.row_bytes);
    for (int64_t t = 0; t < g.n_tokens; ++t) {
        const auto* a =
            reinterpret_cast<const BlockQ8_0*>(g.act + static_cast<size_t>(t) * g.act_row_bytes);
        __m256 sum = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
            __m256i p[8];
            alignas(16) uint16_t d[8];
            for (int r = 0; r < 8; ++r) {
                p[r] = q8_block_dot(rows[r] + b, y);
                d[r] = rows[r][b].d;
            }
            // Eight 8-lane vectors to one vector of their sums (lane r = row r).
            const __m256i s01 = _mm256_hadd_epi32(p[0], p[1]);
            const __m256i s23 = _mm256_hadd_epi32(p[2], p[3]);
            const __m256i s45 = _mm256_hadd_epi32(p[4], p[5]);
            const __m256i s67 = _mm256_hadd_epi32(p[6], p[7]);
            const __m256i s0123 = _mm256_hadd_epi32(s01, s23);
            const __m256i s4567 = _mm256_hadd_epi32(s45, s67);
            const __m256i isum = _mm256_add_epi32(_mm256_permute2x128_si256(s0123, s4567, 0x20),
                                                  _mm256_permute2x128_si256(s0123, s4567, 0x31));
            const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d)));
            const __m256 da = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<int16_t>(a[b].d)));
            sum =
                _mm256_add_ps(sum, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, da)));
        }
        float out[8];
        _mm256_storeu_ps(out, sum);
        for (int r = 0; r < 8; ++r)
            g.y[static_cast<size_t>(t) * static_cast<size_t>(g.ldy) + static_cast<size_t>(r0 + r)] =
                g.scale * out[r];
    }
}

// IQ2_S batches: each 256-value block of 8 rows is decoded once into signed int8 weights
// (grid point times sign, |w| <= 43) laid out as 64 vectors of 8 rows x 4 columns (row r in
// dword r), with their magnitudes beside them, and the 16 sub-block scales 1 + 2 * nibble as
// int16 lanes (row r in lanes 2r and 2r + 1). Every token of the batch then meets them with the
// sign trick: vpmaddubsw(|w|, vpsignb(x, w)) = w * x in pairs (at most 2 * 43 * 127 = 10922),
// two vectors summed in int16 (21844), a sub-block's 16 columns weighted by its scale in
// vpmaddwd. Lane r of the int32 sum is row r's exact integer block sum, the reference's
// (kernels/vec_dot.cpp, dot_iq2_s), and the float steps are its steps in its order, so every
// output equals the scalar row dot bit for bit.
struct Iq2sPanel {
    alignas(32) int8_t w[64 * 32];    // vector v: columns 4v..4v+3 of rows 0..7
    alignas(32) uint8_t aw[64 * 32];  // |w|
    alignas(32) int16_t ls[16 * 16];  // sub-block s: lanes 2r, 2r + 1 = scale of row r
    alignas(32) float d[8];           // the rows' block scales
};

// The panel's 8 x 256 weights from row_group(r, ib) (the 32 signed values of group ib of row
// r), transposed to 8 rows x 4 columns per vector.
template <class RowGroup>
inline void fill_iq2s_panel(Iq2sPanel& p, RowGroup&& row_group) {
    for (int ib = 0; ib < 8; ++ib) {  // 32 columns: 8 vectors of the panel
        __m256i v[8];
        for (int r = 0; r < 8; ++r) v[r] = row_group(r, ib);
        // 8 x 8 transpose of dwords: vector j of the panel = dword j of every row.
        const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]),
                      t1 = _mm256_unpackhi_epi32(v[0], v[1]);
        const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]),
                      t3 = _mm256_unpackhi_epi32(v[2], v[3]);
        const __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]),
                      t5 = _mm256_unpackhi_epi32(v[4], v[5]);
        const __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]),
                      t7 = _mm256_unpackhi_epi32(v[6], v[7]);
        const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
        const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
        const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
        const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
        const __m256i out[8] = {
            _mm256_permute2x128_si256(u0, u4, 0x20), _mm256_permute2x128_si256(u1, u5, 0x20),
            _mm256_permute2x128_si256(u2, u6, 0x20), _mm256_permute2x128_si256(u3, u7, 0x20),
            _mm256_permute2x128_si256(u0, u4, 0x31), _mm256_permute2x128_si256(u1, u5, 0x31),
            _mm256_permute2x128_si256(u2, u6, 0x31), _mm256_permute2x128_si256(u3, u7, 0x31)};
        for (int j = 0; j < 8; ++j) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(p.w + 32 * (8 * ib + j)), out[j]);
            _mm256_store_si256(reinterpret_cast<__m256i*>(p.aw + 32 * (8 * ib + j)),
                               _mm256_abs_epi8(out[j]));
        }
    }
}

// The panel's scales from the rows' 8 scale bytes and fp16 d (the same fields in both layouts).
template <class Block>
inline void iq2s_panel_scales(const Block* const* blk, Iq2sPanel& p) {
    alignas(16) uint16_t dh[8];
    for (int r = 0; r < 8; ++r) {
        dh[r] = blk[r]->d;
        for (int ib = 0; ib < 8; ++ib) {
            const auto lo = static_cast<int16_t>(1 + 2 * (blk[r]->scales[ib] & 0xf));
            const auto hi = static_cast<int16_t>(1 + 2 * (blk[r]->scales[ib] >> 4));
            p.ls[16 * (2 * ib) + 2 * r] = p.ls[16 * (2 * ib) + 2 * r + 1] = lo;
            p.ls[16 * (2 * ib + 1) + 2 * r] = p.ls[16 * (2 * ib + 1) + 2 * r + 1] = hi;
        }
    }
    _mm256_store_ps(p.d, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dh))));
}

// Block b of rows r0..r0+7 of a stored IQ2_S matrix (row stride row_bytes) into p.
inline void decode_iq2s_panel(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t b,
                              Iq2sPanel& p) {
    const BlockIQ2S* blk[8];
    for (int r = 0; r < 8; ++r)
        blk[r] =
            reinterpret_cast<const BlockIQ2S*>(w + static_cast<size_t>(r0 + r) * row_bytes) + b;
    iq2s_panel_scales(blk, p);
    alignas(32) uint16_t gi[8][32];
    for (int r = 0; r < 8; ++r) iq2s_grid_indices(*blk[r], gi[r]);
    fill_iq2s_panel(p, [&](int r, int ib) {
        return iq2s_apply_signs(iq2s_grid_group(gi[r], ib), iq2s_negative_group(*blk[r], ib));
    });
}

// Held IQ2_S (kernels/repack.h): code -> value, and code -> value + 43 (unsigned, for vpmaddubsw).
inline __m256i held_iq2s_lut(bool offset) {
    return offset ? _mm256_setr_epi8(51, 68, 86, 35, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 68,
                                     86, 35, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                  : _mm256_setr_epi8(8, 25, 43, -8, -25, -43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 25,
                                     43, -8, -25, -43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

// The 32 codes of group ib (values 32ib..32ib+31) of a held block.
inline __m256i held_iq2s_codes(const HeldIq2s& blk, int ib) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q4 + 32 * (ib % 4)));
    const __m256i m4 = _mm256_set1_epi8(0xF);
    return ib < 4 ? _mm256_and_si256(v, m4) : _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
}

// Block b of rows r0..r0+7 of a held IQ2_S matrix into p.
inline void decode_held_iq2s_panel(const HeldIq2s* w, int64_t nb, int64_t r0, int64_t b,
                                   Iq2sPanel& p) {
    const HeldIq2s* blk[8];
    for (int r = 0; r < 8; ++r) blk[r] = w + (r0 + r) * nb + b;
    iq2s_panel_scales(blk, p);
    const __m256i lut = held_iq2s_lut(false);
    fill_iq2s_panel(
        p, [&](int r, int ib) { return _mm256_shuffle_epi8(lut, held_iq2s_codes(*blk[r], ib)); });
}

// sums[8t + r] += the block's term for row r and the T tokens whose activation blocks are act[t].
template <int T>
inline void iq2s_panel_tile(const Iq2sPanel& p, const BlockQ8K* const* act, float* sums) {
    __m256i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
    for (int s = 0; s < 16; ++s) {
        const __m256i ls = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.ls + 16 * s));
        for (int half = 0; half < 2; ++half) {
            const int v0 = 4 * s + 2 * half;
            const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.w + 32 * v0));
            const __m256i w1 =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(p.w + 32 * (v0 + 1)));
            const __m256i a0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.aw + 32 * v0));
            const __m256i a1 =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(p.aw + 32 * (v0 + 1)));
            for (int t = 0; t < T; ++t) {
                const int8_t* x = act[t]->qs + 4 * v0;
                const __m256i x0 = bcast4(reinterpret_cast<const uint8_t*>(x));
                const __m256i x1 = bcast4(reinterpret_cast<const uint8_t*>(x + 4));
                const __m256i pr =
                    _mm256_add_epi16(_mm256_maddubs_epi16(a0, _mm256_sign_epi8(x0, w0)),
                                     _mm256_maddubs_epi16(a1, _mm256_sign_epi8(x1, w1)));
                acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(pr, ls));
            }
        }
    }
    const __m256 dw = _mm256_load_ps(p.d);
    for (int t = 0; t < T; ++t) {
        const __m256 term =
            _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(act[t]->d)), _mm256_cvtepi32_ps(acc[t]));
        _mm256_storeu_ps(sums + 8 * t, _mm256_add_ps(_mm256_loadu_ps(sums + 8 * t), term));
    }
}

template <void (*T2)(const GemmArgs&, int64_t, int64_t),
          void (*T1)(const GemmArgs&, int64_t, int64_t)>
int64_t run(const GemmArgs& g, int64_t r0, int64_t r1) {
    for (int64_t grp = r0 / 16; grp < r1 / 16; ++grp) {
        int64_t t = 0;
        for (; t + 2 <= g.n_tokens; t += 2) T2(g, grp, t);
        if (t < g.n_tokens) T1(g, grp, t);
    }
    return r1;
}

}  // namespace

int64_t gemm_rows16_tq2_0_avx2(const GemmArgs& g, int64_t r0, int64_t r1) {
    if (g.n_tokens >= kActTileTokens && g.act_tiles != nullptr) {
        for (int64_t grp = r0 / 16; grp < r1 / 16; ++grp) rows16_tq2_0_batched(g, grp);
        return r1;
    }
    return run<rows16_tq2_0<2>, rows16_tq2_0<1>>(g, r0, r1);
}

namespace {

// Rows [r, r1) in 8-row panels for every token; decode(row, block, panel). Returns the first row
// not covered.
template <class Decode>
int64_t iq2s_panels(const GemmArgs& g, int64_t r, int64_t r1, Decode&& decode) {
    const int64_t nb = g.cols / kQK;
    float* const sums = thread_scratch_f32(static_cast<size_t>(8 * g.n_tokens));
    thread_local std::vector<const BlockQ8K*> act;  // only this file grows such vectors
    act.resize(static_cast<size_t>(g.n_tokens));
    Iq2sPanel p;
    for (; r + 8 <= r1; r += 8) {
        std::memset(sums, 0, static_cast<size_t>(8 * g.n_tokens) * sizeof(float));
        for (int64_t b = 0; b < nb; ++b) {
            decode(r, b, p);
            for (int64_t t = 0; t < g.n_tokens; ++t) {
                act[static_cast<size_t>(t)] =
                    reinterpret_cast<const BlockQ8K*>(g.act +
                                                      static_cast<size_t>(t) * g.act_row_bytes) +
                    b;
            }
            int64_t t = 0;
            for (; t + 4 <= g.n_tokens; t += 4) iq2s_panel_tile<4>(p, act.data() + t, sums + 8 * t);
            for (; t < g.n_tokens; ++t) iq2s_panel_tile<1>(p, act.data() + t, sums + 8 * t);
        }
        for (int64_t t = 0; t < g.n_tokens; ++t) {
            for (int k = 0; k < 8; ++k) {
                g.y[static_cast<size_t>(t * g.ldy + r + k)] = g.scale * (0.125f * sums[8 * t + k]);
            }
        }
    }
    return r;
}

inline int32_t hsum8_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

// One held IQ2_S row against one token's Q8_K activations: the codes become value + 43
// (unsigned) for vpmaddubsw (pair sums at most 2 * 86 * 127 = 21844), each 16 values weighted
// by their scale in vpmaddwd, and 43 * sum(scale * activation sum) of the 16 subtracted
// (the activations' 16-value sums are in the Q8_K block). The int32 sum per block equals the
// reference's (kernels/vec_dot.cpp, dot_iq2_s); the float steps are its steps in its order.
// kIq2sScaleSel (kernels/iq2s_avx2.h) picks a group's two scales.
float held_iq2s_row_dot(const HeldIq2s* w, const BlockQ8K* a, int64_t nb) {
    const __m256i lut = held_iq2s_lut(true);
    const __m256i m4 = _mm256_set1_epi8(0xF);
    float sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
        const HeldIq2s& blk = w[b];
        const int8_t* q8 = a[b].qs;
        const __m128i ls8 = iq2s_scale_bytes(blk.scales);
        const __m256i ls16 = _mm256_cvtepu8_epi16(ls8);
        const __m256i lsb = _mm256_broadcastsi128_si256(ls8);
        const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].bsums));
        __m256i acc0 = _mm256_madd_epi16(_mm256_mullo_epi16(ls16, _mm256_set1_epi16(-43)), bsums);
        __m256i acc1 = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q4 + 32 * j));
            const __m256i lo = _mm256_and_si256(v, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * j));
            const __m256i x1 =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 128 + 32 * j));
            acc0 = _mm256_add_epi32(
                acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_shuffle_epi8(lut, lo), x0),
                                        iq2s_group_scales(lsb, j)));
            acc1 = _mm256_add_epi32(
                acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_shuffle_epi8(lut, hi), x1),
                                        iq2s_group_scales(lsb, j + 4)));
        }
        const float d = _cvtsh_ss(blk.d);
        sum += d * a[b].d * static_cast<float>(hsum8_i32(_mm256_add_epi32(acc0, acc1)));
    }
    return 0.125f * sum;
}

}  // namespace

void hold_iq2s_avx2(const BlockIQ2S* in, HeldIq2s* out, int64_t n) {
    const __m256i c8 = _mm256_set1_epi8(8), c25 = _mm256_set1_epi8(25), c3 = _mm256_set1_epi8(3);
    alignas(32) uint16_t gi[32];
    for (int64_t k = 0; k < n; ++k) {
        iq2s_grid_indices(in[k], gi);
        __m256i code[8];
        for (int ib = 0; ib < 8; ++ib) {  // magnitude 0, 1, 2 for 8, 25, 43; + 3 if negative
            const __m256i grid = iq2s_grid_group(gi, ib);
            const __m256i mag = _mm256_sub_epi8(
                _mm256_setzero_si256(),
                _mm256_add_epi8(_mm256_cmpgt_epi8(grid, c8), _mm256_cmpgt_epi8(grid, c25)));
            code[ib] = _mm256_add_epi8(mag, _mm256_and_si256(iq2s_negative_group(in[k], ib), c3));
        }
        for (int j = 0; j < 4; ++j) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[k].q4 + 32 * j),
                                _mm256_or_si256(code[j], _mm256_slli_epi16(code[j + 4], 4)));
        }
        std::memcpy(out[k].scales, in[k].scales, sizeof(out[k].scales));
        out[k].d = in[k].d;
    }
}

int64_t gemm_iq2_s_avx2(const GemmArgs& g, int64_t r0, int64_t r1) {
    if (g.n_tokens < kIq2sPanelMinTokens) return r0;
    return iq2s_panels(g, r0, r1, [&](int64_t r, int64_t b, Iq2sPanel& p) {
        decode_iq2s_panel(g.w, g.row_bytes, r, b, p);
    });
}

int64_t gemm_rows16_iq2_s_avx2(const GemmArgs& g, int64_t r0, int64_t r1) {
    const int64_t nb = g.cols / kQK;
    const auto* w = reinterpret_cast<const HeldIq2s*>(g.w);
    if (g.n_tokens >= kIq2sPanelMinTokens) {
        const int64_t done = iq2s_panels(g, r0, r1, [&](int64_t r, int64_t b, Iq2sPanel& p) {
            decode_held_iq2s_panel(w, nb, r, b, p);
        });
        if (done == r1) return r1;
        r0 = done;
    }
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t t = 0; t < g.n_tokens; ++t) {
            const auto* a =
                reinterpret_cast<const BlockQ8K*>(g.act + static_cast<size_t>(t) * g.act_row_bytes);
            g.y[static_cast<size_t>(t * g.ldy + r)] =
                g.scale * held_iq2s_row_dot(w + r * nb, a, nb);
        }
    }
    return r1;
}

int64_t gemm_q8_0_avx2(const GemmArgs& g, int64_t r0, int64_t r1) {
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) q8_0_rows8(g, r);
    return r;
}

int64_t gemm_rows16_i2s_avx2(const GemmArgs& g, int64_t r0, int64_t r1) {
    if (g.n_tokens >= kActTileTokens && g.act_tiles != nullptr) {
        for (int64_t grp = r0 / 16; grp < r1 / 16; ++grp) rows16_i2s_batched(g, grp);
        return r1;
    }
    return run<rows16_i2s<2>, rows16_i2s<1>>(g, r0, r1);
}

size_t act_tiles_bytes(int64_t cols, int64_t n_tokens) {
    return static_cast<size_t>(n_tokens / kActTileTokens * (16 * act_chunks(cols) + 4 * cols));
}

void pack_act_tile_avx2(ActFormat f, const uint8_t* act, size_t row_bytes, int64_t cols,
                        int64_t n_tiles, int64_t j, uint8_t* tiles) {
    const bool q8_k = f == ActFormat::Q8_K;
    const __m128i ones = _mm_set1_epi8(1);
    for (int64_t c = 0; c < act_chunks(cols); ++c) {
        const uint8_t* src[4];
        for (int k = 0; k < 4; ++k) {
            const uint8_t* row = act + static_cast<size_t>(4 * j + k) * row_bytes;
            src[k] = q8_k ? row + static_cast<size_t>(c) * sizeof(BlockQ8K) + offsetof(BlockQ8K, qs)
                          : row + sizeof(I8TokenHeader) + static_cast<size_t>(4 * kChunkSteps * c);
        }
        uint8_t* dst = tiles + act_tile_offset(cols, n_tiles, c, j);
        // Per token, int16 lanes 2i and 2i + 1: values 4i, 4i + 1 and 4i + 2, 4i + 3 summed (at
        // most 2 x 127 per step, 16 steps per lane).
        __m128i pairs[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(),
                            _mm_setzero_si128()};
        const int64_t steps = chunk_steps(cols, c);
        for (int64_t s = 0; s < steps; s += 4) {  // 4 steps of 4 tokens: a 4 x 4 dword transpose
            __m128i x[4];
            for (int k = 0; k < 4; ++k) {
                x[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[k] + 4 * s));
                if (q8_k) pairs[k] = _mm_add_epi16(pairs[k], _mm_maddubs_epi16(ones, x[k]));
            }
            const __m128i t0 = _mm_unpacklo_epi32(x[0], x[1]), t1 = _mm_unpackhi_epi32(x[0], x[1]);
            const __m128i t2 = _mm_unpacklo_epi32(x[2], x[3]), t3 = _mm_unpackhi_epi32(x[2], x[3]);
            auto* out = reinterpret_cast<__m128i*>(dst + 16 + 16 * s);
            _mm_storeu_si128(out, _mm_unpacklo_epi64(t0, t2));
            _mm_storeu_si128(out + 1, _mm_unpackhi_epi64(t0, t2));
            _mm_storeu_si128(out + 2, _mm_unpacklo_epi64(t1, t3));
            _mm_storeu_si128(out + 3, _mm_unpackhi_epi64(t1, t3));
        }
        int32_t init[4] = {0, 0, 0, 0};
        if (q8_k) {
            for (int k = 0; k < 4; ++k) {  // the chunk's two pair sums (|sum| <= 128 x 127)
                __m128i p = _mm_add_epi16(pairs[k], _mm_shuffle_epi32(pairs[k], 0x4E));
                p = _mm_add_epi16(p, _mm_shuffle_epi32(p, 0xB1));
                init[k] = _mm_cvtsi128_si32(_mm_sub_epi16(_mm_setzero_si128(), p));
            }
        }
        std::memcpy(dst, init, sizeof(init));
    }
}

}  // namespace bitnet
