// y = W·x for a batch of tokens, with W read in its stored format: activations are quantized
// once into the format W pairs with, then output rows are split across threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bitnet/quant.h"
#include "bitnet/types.h"
#include "kernels/thread_pool.h"
#include "kernels/vec_dot.h"

namespace bitnet {

// A 2-D weight: `rows` output features of `cols` inputs each. `scale` multiplies every output
// (I2_S's per-tensor scale times any per-projection .scale tensor).
struct WeightMatrix {
    GgmlType type = GgmlType::F32;
    const uint8_t* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
    size_t row_bytes = 0;
    float scale = 1.0f;
    I2sLayout i2s_layout = I2sLayout::X86;
    bool rows16 = false;  // held in the interleaved layout of kernels/repack.h
    // The file's type when the matrix is held as another one (TQ1_0 held as rows16 TQ2_0).
    std::optional<GgmlType> converted_from;
};

// Scratch memory reused across calls (activation buffers grow as needed).
struct MatmulScratch {
    std::vector<uint8_t> act;
    std::vector<int32_t> qsum;  // per token and block (Q8_K activations, tiled kernels)
    std::vector<float> d;
    std::vector<uint8_t> u8;     // Q8_0 activations + 128 (rows16 Q8_0 weights)
    std::vector<uint8_t> tiles;  // token tiles (kernels/gemm.h) for the AVX2 rows16 kernels
};

// x: n_tokens rows of cols floats; y: n_tokens rows of `rows` floats.
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulScratch& scratch);

// Several matrices that read the same input (Q/K/V, gate/up): the input is quantized once and
// the rows of all of them are split across threads in one parallel region. ys[i] receives
// n_tokens rows of ws[i]->rows floats. Results are those of one matmul() per matrix.
void matmul_shared(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_tokens,
                   std::span<float* const> ys, ThreadPool& pool, MatmulScratch& scratch);

// The row dot product in use for a weight (the best for the active ISA).
VecDotFn vec_dot_for(GgmlType weight, I2sLayout layout);

// Which implementation matmul() uses for a weight ("avx512vnni rows16", "avx2", ...), for
// reports.
std::string kernel_name(const WeightMatrix& w);

// Bytes the matrix occupies as held (rows16 Q8_0 carries its block sums).
size_t held_bytes(const WeightMatrix& w);

}  // namespace bitnet
