// Tiled matrix multiplication kernels for whole batches of tokens (prompt processing and
// decode alike): a weight block is unpacked once and applied to several tokens. Each kernel is
// bit-identical to the row dot products of vec_dot.h (tested element for element), so results
// never depend on how rows and tokens were grouped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bitnet/quant.h"
#include "bitnet/types.h"
#include "kernels/vec_dot.h"

namespace bitnet {

struct BlockIQ2S;
struct HeldIq2s;

struct GemmArgs {
    const uint8_t* w = nullptr;  // weight rows in their stored format
    size_t row_bytes = 0;
    int64_t cols = 0;
    float scale = 1.0f;            // multiplies every output (WeightMatrix::scale)
    const uint8_t* act = nullptr;  // n_tokens activation rows in the weight's partner format
    size_t act_row_bytes = 0;
    int64_t n_tokens = 0;
    float* y = nullptr;  // y[t * ldy + r]
    int64_t ldy = 0;
    // Q8_K activations: per token and 256-block, the sum of the int8 values and the scale
    // ([t * blocks + b]); unused by I2_S.
    const int32_t* block_qsum = nullptr;
    const float* block_d = nullptr;  // Q8_0 activations: the scale of each 32-block
    // Q8_0 activations for rows16 Q8_0 weights: every value + 128 as unsigned ([t * cols + i]).
    const uint8_t* act_u8 = nullptr;
    // Token tiles (below) of the first n_tokens / 4 * 4 tokens, for the AVX2 rows16 TQ2_0 and
    // I2_S kernels: with them they take batches of 4 or more tokens four at a time, without them
    // one or two at a time.
    const uint8_t* act_tiles = nullptr;
};

// Token tiles: the int8 activations of tokens 4j..4j+3 (Q8_K or I8Token) interleaved by steps
// of 4 values, so that the AVX2 rows16 kernels' 4-token tile reads 16 consecutive bytes per
// step and walks every activation of a batch in one sequential stream. The values are cut into
// chunks of 256 (64 steps; the last chunk may be shorter); chunk c holds every tile in turn, and
// a tile's part of a chunk is a 16-byte header, then per step the 4 tokens' 4 values:
//   [chunk c][tile j] { int32 init[4]; int8 value[steps][4 tokens][4] }.
// init[k] is the starting value of token k's int16 accumulator pair (kernels/gemm_avx2.cpp):
// for Q8_K, minus the sums of the chunk's values 4i, 4i + 1 and 4i + 2, 4i + 3 (int16 each), so
// that the accumulated sums of codes 0..2 times values come out as sums of ternary weights -1..1
// times values; for I8Token, zero (its offset is subtracted once per row).
constexpr int64_t kActTileTokens = 4;
size_t act_tiles_bytes(int64_t cols, int64_t n_tokens);
// Writes tile j (tokens 4j..4j+3, quantized rows of row_bytes at act) of n_tiles into tiles.
void pack_act_tile_avx2(ActFormat f, const uint8_t* act, size_t row_bytes, int64_t cols,
                        int64_t n_tiles, int64_t j, uint8_t* tiles);

// The calling thread's scratch of at least n values for the kernels' per-token sums, kept by
// kernels/matmul.cpp, a file compiled for every x86-64: a std::vector grown inside a file compiled
// with -mavx2 instantiates members that scalar code shares, and the linker may keep those AVX2
// copies for the scalar callers too (an illegal instruction on CPUs without AVX).
float* thread_scratch_f32(size_t n);
int32_t* thread_scratch_i32(size_t n);

// Bytes of one 32-value block of a 16-row group in the rows16 Q8_0 layout (kernels/repack.h).
constexpr size_t kRows16Q8Block = 8 * 64 + 32 + 32;

// Computes rows [r0, r0 + k) for all tokens, k the largest multiple of the kernel's row tile
// that fits in [r0, r1); returns r0 + k. The caller finishes the remaining rows.
using GemmFn = int64_t (*)(const GemmArgs& args, int64_t r0, int64_t r1);

// The tiled kernel for a weight type on the active ISA, or nullptr.
GemmFn gemm_for(GgmlType weight, I2sLayout layout);

// For rows16 matrices (kernels/repack.h): covers every row of [r0, r1) (multiples of 16).
GemmFn gemm_rows16_for(GgmlType weight);

int64_t gemm_tq2_0_avx512vnni(const GemmArgs& args, int64_t r0, int64_t r1);
int64_t gemm_rows16_tq2_0_avx512vnni(const GemmArgs& args, int64_t r0, int64_t r1);
int64_t gemm_rows16_i2s_avx512vnni(const GemmArgs& args, int64_t r0, int64_t r1);
int64_t gemm_rows16_q8_0_avx512vnni(const GemmArgs& args, int64_t r0, int64_t r1);
// AVX2 (vpmaddubsw); no Q8_0: unsigned-offset activations times int8 weights overflow int16.
int64_t gemm_rows16_tq2_0_avx2(const GemmArgs& args, int64_t r0, int64_t r1);
int64_t gemm_rows16_i2s_avx2(const GemmArgs& args, int64_t r0, int64_t r1);
// IQ2_S in the stored layout for batches of kIq2sPanelMinTokens or more (fewer: returns r0, the
// row dots are faster): 8 rows at a time, each block decoded once for every token.
constexpr int64_t kIq2sPanelMinTokens = 2;
int64_t gemm_iq2_s_avx2(const GemmArgs& args, int64_t r0, int64_t r1);
// IQ2_S held as 4-bit codes (kernels/repack.h, HeldIq2s): row dots for one token, panels for
// batches; every row of [r0, r1).
int64_t gemm_rows16_iq2_s_avx2(const GemmArgs& args, int64_t r0, int64_t r1);
// n stored IQ2_S blocks into the held form of kernels/repack.h (repack_rows16 calls it; needs
// AVX2).
void hold_iq2s_avx2(const BlockIQ2S* in, HeldIq2s* out, int64_t n);
// Q8_0 in the stored layout, 8 rows at a time (decoding with a q8_0 head or Q8_0 weights).
int64_t gemm_q8_0_avx2(const GemmArgs& args, int64_t r0, int64_t r1);
int64_t gemm_i2s_x86_avx512vnni(const GemmArgs& args, int64_t r0, int64_t r1);

}  // namespace bitnet
