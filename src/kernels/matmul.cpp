#include "kernels/matmul.h"

#include "bitnet/cpu.h"
#include "kernels/vec_dot_avx2.h"

namespace bitnet {

VecDotFn vec_dot_for(GgmlType weight, I2sLayout layout) {
    if (active_isa() >= Isa::Avx2) {
        if (VecDotFn f = vec_dot_avx2(weight, layout)) return f;
    }
    return vec_dot_scalar(weight, layout);
}

std::string kernel_name(GgmlType weight, I2sLayout layout) {
    if (active_isa() >= Isa::Avx2 && vec_dot_avx2(weight, layout) != nullptr) return "avx2";
    return "scalar";
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
    // Rows in chunks of 16 keep a weight row hot while it meets every token.
    pool.parallel_for(w.rows, 16, [&](int, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const uint8_t* wr = w.data + static_cast<size_t>(r) * w.row_bytes;
            for (int64_t t = 0; t < n_tokens; ++t) {
                y[t * w.rows + r] = w.scale * dot(w.cols, wr, act + static_cast<size_t>(t) * arow);
            }
        }
    });
}

}  // namespace bitnet
