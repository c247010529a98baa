#include "kernels/matmul.h"

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
    }
    return nullptr;
}

std::string kernel_name(const WeightMatrix& w) {
    if (w.rows16) return active_isa() >= Isa::Avx512Vnni ? "avx512vnni rows16" : "avx2 rows16";
    if (GemmFn g = gemm_for(w.type, w.i2s_layout); g != nullptr)
        return g == gemm_q8_0_avx2 ? "avx2 rows8" : "avx512vnni gemm";
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
    const ActFormat f = act_format_for(w.type);
    const size_t arow = act_row_bytes(f, w.cols);
    scratch.act.resize(arow * static_cast<size_t>(n_tokens));
    uint8_t* act = scratch.act.data();
    pool.parallel_for(n_tokens, 1, [&](int, int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
            quantize_activation_row(f, x + t * w.cols, act + static_cast<size_t>(t) * arow, w.cols);
    });
    const VecDotFn dot = vec_dot_for(w.type, w.i2s_layout);
    const GemmFn gemm = w.rows16 ? gemm_rows16_for(w.type) : gemm_for(w.type, w.i2s_layout);
    if (w.rows16 && gemm == nullptr) throw Error("internal: a rows16 matrix without its kernel");
    GemmArgs g;
    if (gemm != nullptr) {
        g = {w.data, w.row_bytes, w.cols, w.scale, act, arow, n_tokens, y, w.rows};
        if (f == ActFormat::Q8_K) {
            // Per token and block: the activation sum (for the unsigned-code offset) and scale.
            const int64_t nb = w.cols / 256;
            scratch.qsum.resize(static_cast<size_t>(n_tokens * nb));
            scratch.d.resize(static_cast<size_t>(n_tokens * nb));
            for (int64_t t = 0; t < n_tokens; ++t) {
                const auto* blocks =
                    reinterpret_cast<const BlockQ8K*>(act + static_cast<size_t>(t) * arow);
                for (int64_t b = 0; b < nb; ++b) {
                    int32_t s = 0;
                    for (int16_t v : blocks[b].bsums) s += v;
                    scratch.qsum[static_cast<size_t>(t * nb + b)] = s;
                    scratch.d[static_cast<size_t>(t * nb + b)] = blocks[b].d;
                }
            }
            g.block_qsum = scratch.qsum.data();
            g.block_d = scratch.d.data();
        } else if (f == ActFormat::Q8_0 && w.rows16) {
            // Scales as floats and values offset to unsigned, per token and 32-block.
            const int64_t nb = w.cols / 32;
            scratch.d.resize(static_cast<size_t>(n_tokens * nb));
            scratch.u8.resize(static_cast<size_t>(n_tokens * w.cols));
            for (int64_t t = 0; t < n_tokens; ++t) {
                const auto* blocks =
                    reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * arow);
                for (int64_t b = 0; b < nb; ++b) {
                    scratch.d[static_cast<size_t>(t * nb + b)] = fp16_to_fp32(blocks[b].d);
                    for (int v = 0; v < 32; ++v) {
                        scratch.u8[static_cast<size_t>(t * w.cols + 32 * b + v)] =
                            static_cast<uint8_t>(blocks[b].qs[v] + 128);
                    }
                }
            }
            g.block_d = scratch.d.data();
            g.act_u8 = scratch.u8.data();
        }
    }
    // Rows in chunks of 16 keep a weight row hot while it meets every token.
    pool.parallel_for(w.rows, 16, [&](int, int64_t r0, int64_t r1) {
        const int64_t done = gemm != nullptr ? gemm(g, r0, r1) : r0;
        for (int64_t r = done; r < r1; ++r) {
            const uint8_t* wr = w.data + static_cast<size_t>(r) * w.row_bytes;
            for (int64_t t = 0; t < n_tokens; ++t) {
                y[t * w.rows + r] = w.scale * dot(w.cols, wr, act + static_cast<size_t>(t) * arow);
            }
        }
    });
}

}  // namespace bitnet
