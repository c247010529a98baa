#include "kernels/matmul.h"

#include <algorithm>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "core/fp16.h"
#include "kernels/gemm.h"
#include "kernels/repack.h"
#include "kernels/vec_dot_avx2.h"
#include "kernels/vec_dot_avx512.h"
#include "quant/blocks.h"

namespace bitnet {

VecDotFn vec_dot_for(GgmlType weight, I2sLayout layout) {
    if (active_isa() >= Isa::Avx512) {
        if (VecDotFn f = vec_dot_avx512(weight)) return f;
    }
    if (active_isa() >= Isa::Avx2) {
        if (VecDotFn f = vec_dot_avx2(weight, layout)) return f;
    }
    return vec_dot_scalar(weight, layout);
}

GemmFn gemm_for(GgmlType weight, I2sLayout layout) {
    if (active_isa() >= Isa::Avx512Vnni) {
        if (weight == GgmlType::TQ2_0) return gemm_tq2_0_avx512vnni;
        if (weight == GgmlType::I2_S && layout != I2sLayout::Arm) return gemm_i2s_x86_avx512vnni;
    }
    if (active_isa() >= Isa::Avx2 && weight == GgmlType::Q8_0) return gemm_q8_0_avx2;
    if (active_isa() >= Isa::Avx2 && weight == GgmlType::IQ2_S) return gemm_iq2_s_avx2;
    return nullptr;
}

GemmFn gemm_rows16_for(GgmlType weight) {
    if (active_isa() >= Isa::Avx512Vnni) {
        if (weight == GgmlType::TQ2_0) return gemm_rows16_tq2_0_avx512vnni;
        if (weight == GgmlType::I2_S) return gemm_rows16_i2s_avx512vnni;
        if (weight == GgmlType::Q8_0) return gemm_rows16_q8_0_avx512vnni;
    }
    if (active_isa() >= Isa::Avx2) {
        if (weight == GgmlType::TQ2_0) return gemm_rows16_tq2_0_avx2;
        if (weight == GgmlType::I2_S) return gemm_rows16_i2s_avx2;
        if (weight == GgmlType::IQ2_S) return gemm_rows16_iq2_s_avx2;
    }
    return nullptr;
}

float* thread_scratch_f32(size_t n) {
    thread_local std::vector<float> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

int32_t* thread_scratch_i32(size_t n) {
    thread_local std::vector<int32_t> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

std::string kernel_name(const WeightMatrix& w) {
    if (w.rows16 && w.type == GgmlType::IQ2_S) return "avx2 4-bit codes";
    if (w.rows16) return active_isa() >= Isa::Avx512Vnni ? "avx512vnni rows16" : "avx2 rows16";
    if (GemmFn g = gemm_for(w.type, w.i2s_layout); g != nullptr)
        return g == gemm_q8_0_avx2    ? "avx2 rows8"
               : g == gemm_iq2_s_avx2 ? "avx2, panels for batches"
                                      : "avx512vnni gemm";
    if (active_isa() >= Isa::Avx512 && vec_dot_avx512(w.type) != nullptr) return "avx512";
    if (active_isa() >= Isa::Avx2 && vec_dot_avx2(w.type, w.i2s_layout) != nullptr) return "avx2";
    return "scalar";
}

size_t held_bytes(const WeightMatrix& w) {
    if (w.rows16) return rows16_bytes(w.type, w.rows, w.cols);
    return static_cast<size_t>(w.rows) * w.row_bytes;
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulScratch& scratch) {
    const WeightMatrix* ws[] = {&w};
    float* ys[] = {y};
    matmul_shared(ws, x, n_tokens, ys, pool, scratch);
}

namespace {

// Batches of this many tokens or more (a prompt's) split their rows into pieces that free
// threads take (ThreadPool::parallel_pieces); smaller ones, one fixed share per thread.
constexpr int64_t kPiecesMinTokens = 8;

// Rows of a matrix inside the combined row space of matmul_shared: each matrix starts at a
// multiple of 16, so that 16-row groups never straddle two matrices.
int64_t padded_rows(const WeightMatrix& w) {
    return (w.rows + 15) / 16 * 16;
}

// The kernels that take a batch's tokens 4 at a time from token tiles.
bool reads_act_tiles(const WeightMatrix& w) {
    if (!w.rows16) return false;
    const GemmFn f = gemm_rows16_for(w.type);
    return f == gemm_rows16_tq2_0_avx2 || f == gemm_rows16_i2s_avx2;
}

}  // namespace

void matmul_shared(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_tokens,
                   std::span<float* const> ys, ThreadPool& pool, MatmulScratch& scratch) {
    if (ws.size() != ys.size()) throw Error("internal: matmul_shared needs an output per matrix");
    const WeightMatrix& w0 = *ws[0];
    const ActFormat f = act_format_for(w0.type);
    bool any_rows16_q8 = false;
    bool tiles = false;
    for (const WeightMatrix* w : ws) {
        if (w->cols != w0.cols || act_format_for(w->type) != f) {
            // Matrices of different input formats (a mixed-type file): one call each.
            for (size_t i = 0; i < ws.size(); ++i)
                matmul(*ws[i], x, n_tokens, ys[i], pool, scratch);
            return;
        }
        any_rows16_q8 = any_rows16_q8 || (f == ActFormat::Q8_0 && w->rows16);
        tiles = tiles || (n_tokens >= kActTileTokens && reads_act_tiles(*w));
    }
    const int64_t cols = w0.cols;
    const size_t arow = act_row_bytes(f, cols);
    scratch.act.resize(arow * static_cast<size_t>(n_tokens));
    uint8_t* act = scratch.act.data();
    // Per token: the quantized row and, for the tiled kernels, the per-block values they read
    // (Q8_K: activation sum, for the unsigned-code offset, and scale; rows16 Q8_0: scales as
    // floats and values offset to unsigned).
    const int64_t nb = f == ActFormat::Q8_K ? cols / 256 : f == ActFormat::Q8_0 ? cols / 32 : 0;
    if (f == ActFormat::Q8_K) {
        scratch.qsum.resize(static_cast<size_t>(n_tokens * nb));
        scratch.d.resize(static_cast<size_t>(n_tokens * nb));
    } else if (any_rows16_q8) {
        scratch.d.resize(static_cast<size_t>(n_tokens * nb));
        scratch.u8.resize(static_cast<size_t>(n_tokens * cols));
    }
    const int64_t n_tiles = tiles ? n_tokens / kActTileTokens : 0;
    if (tiles) scratch.tiles.resize(act_tiles_bytes(cols, n_tokens));
    // With tiles, tokens go in fours: the thread that quantizes a tile's rows packs it.
    const int64_t unit = tiles ? kActTileTokens : 1;
    pool.parallel_for((n_tokens + unit - 1) / unit, 1, [&](int, int64_t u0, int64_t u1) {
        for (int64_t t = u0 * unit; t < std::min(u1 * unit, n_tokens); ++t) {
            uint8_t* row = act + static_cast<size_t>(t) * arow;
            quantize_activation_row(f, x + t * cols, row, cols);
            if (f == ActFormat::Q8_K) {
                const auto* blocks = reinterpret_cast<const BlockQ8K*>(row);
                for (int64_t b = 0; b < nb; ++b) {
                    int32_t s = 0;
                    for (int16_t v : blocks[b].bsums) s += v;
                    scratch.qsum[static_cast<size_t>(t * nb + b)] = s;
                    scratch.d[static_cast<size_t>(t * nb + b)] = blocks[b].d;
                }
            } else if (any_rows16_q8) {
                const auto* blocks = reinterpret_cast<const BlockQ8_0*>(row);
                for (int64_t b = 0; b < nb; ++b) {
                    scratch.d[static_cast<size_t>(t * nb + b)] = fp16_to_fp32(blocks[b].d);
                    for (int v = 0; v < 32; ++v) {
                        scratch.u8[static_cast<size_t>(t * cols + 32 * b + v)] =
                            static_cast<uint8_t>(blocks[b].qs[v] + 128);
                    }
                }
            }
        }
        for (int64_t j = u0; j < std::min(u1, n_tiles); ++j)
            pack_act_tile_avx2(f, act, arow, cols, n_tiles, j, scratch.tiles.data());
    });
    struct Job {
        const WeightMatrix* w;
        float* y;
        VecDotFn dot;
        GemmFn gemm;
        GemmArgs g;
        int64_t begin;  // first row in the combined row space
    };
    std::vector<Job> jobs;
    jobs.reserve(ws.size());
    int64_t total = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
        const WeightMatrix& w = *ws[i];
        Job j{&w,
              ys[i],
              vec_dot_for(w.type, w.i2s_layout),
              w.rows16 ? gemm_rows16_for(w.type) : gemm_for(w.type, w.i2s_layout),
              {},
              total};
        if (w.rows16 && j.gemm == nullptr)
            throw Error("internal: a rows16 matrix without its kernel");
        if (j.gemm != nullptr) {
            j.g = {w.data, w.row_bytes, w.cols, w.scale, act, arow, n_tokens, ys[i], w.rows};
            if (tiles) j.g.act_tiles = scratch.tiles.data();
            if (f == ActFormat::Q8_K) {
                j.g.block_qsum = scratch.qsum.data();
                j.g.block_d = scratch.d.data();
            } else if (f == ActFormat::Q8_0 && w.rows16) {
                j.g.block_d = scratch.d.data();
                j.g.act_u8 = scratch.u8.data();
            }
        }
        jobs.push_back(j);
        total += padded_rows(w);
    }
    // Rows in chunks of 16 keep a weight row hot while it meets every token; all matrices'
    // rows are split in one parallel region. A prompt's batch takes milliseconds per region:
    // there the rows go one 16-row group at a time to whichever thread is free, so a thread
    // held up by the host (a shared machine's vCPU) delays the region by at most the group it
    // holds, not by its whole share, and the threads end within a group of each other (pieces of
    // 1/8 of a thread's share left the other thread spinning for half a piece on average: pool
    // spin 1.2 -> 0.6 % of a pp128's samples). Decoding (one token, or a few sequences' tokens
    // at once) has short regions, bound by bandwidth, and each thread streams one contiguous
    // share; pieces measured no better for one token.
    const auto body = [&](int, int64_t c0, int64_t c1) {
        for (const Job& j : jobs) {
            const int64_t r0 = std::max<int64_t>(c0 - j.begin, 0);
            const int64_t r1 = std::min<int64_t>(c1 - j.begin, j.w->rows);
            if (r0 >= r1) continue;
            const int64_t done = j.gemm != nullptr ? j.gemm(j.g, r0, r1) : r0;
            for (int64_t r = done; r < r1; ++r) {
                const uint8_t* wr = j.w->data + static_cast<size_t>(r) * j.w->row_bytes;
                for (int64_t t = 0; t < n_tokens; ++t) {
                    j.y[t * j.w->rows + r] =
                        j.w->scale * j.dot(j.w->cols, wr, act + static_cast<size_t>(t) * arow);
                }
            }
        }
    };
    if (n_tokens >= kPiecesMinTokens && pool.size() > 1) {
        pool.parallel_pieces(total, 16, body);
    } else {
        pool.parallel_for(total, 16, body);
    }
}

}  // namespace bitnet
