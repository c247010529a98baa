// Weights rearranged at load time for the tiled kernels ("rows16"): files keep their published
// layout; the engine may hold a matrix in this one instead (the file's pages are released, so
// nothing is kept twice; the same size, but for the formats below that say otherwise). Groups of 16
// rows are interleaved so that one 32-bit lane holds 4 consecutive codes of one row: one broadcast
// of 4 activation bytes then feeds 16 rows in one vpdpbusd, and the 16 row sums stay in the lanes
// of one register, with no horizontal reduction.
//
// Layout of a group of 16 rows, per 16 values (one 64-byte vector): lane r (bytes 4r..4r+3) is
// row r; byte j of the lane holds at bits 2s..2s+1 the code (value + 1, in 0..2) of value
// 16q + 4s + j of the row. TQ2_0 stores, per 256-value block, its 16 vectors followed by the
// 16 rows' fp16 scales (1056 bytes = 16 x 66); I2_S (x86 layout) stores only the vectors
// (cols / 16 of them per group), its one scale staying with the matrix.
#pragma once

#include <cstdint>
#include <span>

#include "bitnet/quant.h"
#include "bitnet/types.h"

namespace bitnet {

// Q8_0 (used for a requantized output head) stores per 32-value block 8 vectors of int8 values
// (lane r: 4 consecutive values of row r), the 16 rows' fp16 scales and their int16 value sums
// (kRows16Q8Block = 576 bytes for 16 x 34 stored: 6 % more).
//
// TQ1_0 (ternary values 5 to a byte in base 3, one fp16 scale per 256) is held as rows16
// TQ2_0: the same values and scales, so every product is identical (the scalar dots of both
// formats do the same integer sum and float steps), at 2.0625 instead of 1.6875 bits per value
// (22 % more memory for these matrices) and with TQ2_0's tiled kernels instead of base-3
// decoding. I2_S in the ARM layout (64-value blocks) is held as rows16 I2_S like the x86 one.
//
// IQ2_S (grid points gathered from a 1024-entry table, 2.5625 bits per value) is held as 4-bit
// codes, row by row rather than interleaved (its kernels, kernels/gemm_avx2.cpp, read a row at
// a time when decoding one token and decode 8-row panels for batches): per 256-value block a
// HeldIq2s. Code = magnitude (0, 1, 2 for grid bytes 8, 25, 43) + 3 when the value is negative,
// so a vpshufb turns 32 codes into 32 values. 138 bytes per block for 82: 68 % more memory for
// these matrices, and a third of the row dot's arithmetic (decoding an IQ2_S model is bound by
// that arithmetic, not by memory).
struct HeldIq2s {
    uint8_t q4[128];    // byte k: value k in the low nibble, value k + 128 in the high one
    uint8_t scales[8];  // as stored: 4-bit scale per 16 values
    uint16_t d;         // as stored
};
static_assert(sizeof(HeldIq2s) == 138);

// The type a matrix of `type` is held in as rows16.
GgmlType rows16_type(GgmlType type);

// Whether `type` (in `layout`, for I2_S) with these shapes can be held as rows16.
bool can_repack_rows16(GgmlType type, I2sLayout layout, int64_t rows, int64_t cols);

// Bytes a rows16 matrix of stored `type` takes (that of rows16_type, except for Q8_0 and
// IQ2_S, which have layouts of their own).
size_t rows16_bytes(GgmlType type, int64_t rows, int64_t cols);

// Rearranges `src` (rows x cols in the stored layout) into `dst` (rows16_bytes).
void repack_rows16(GgmlType type, I2sLayout layout, std::span<const uint8_t> src, int64_t rows,
                   int64_t cols, std::span<uint8_t> dst);

// The output head requantized at load (--head-type): rows of `from` (any type that dequantizes)
// become `to` (any type that quantizes) in its stored layout, or Q8_0 held rows16 when
// `rows16` (then dst is rows16_bytes). Runs on all hardware threads.
void requantize_rows(GgmlType from, GgmlType to, std::span<const uint8_t> src, int64_t rows,
                     int64_t cols, bool rows16, std::span<uint8_t> dst);

}  // namespace bitnet
