// Every ISA-specific kernel against its scalar reference: integer formats must agree exactly,
// float formats to rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "bitnet/cpu.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/vec_dot_avx2.h"

namespace bitnet {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

TEST(Kernels, Avx2DotsMatchScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    const struct {
        GgmlType type;
        bool exact;
    } cases[] = {{GgmlType::TQ2_0, true},
                 {GgmlType::I2_S, true},
                 {GgmlType::Q8_0, true},
                 {GgmlType::F16, false},
                 {GgmlType::F32, false}};
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(type_name(c.type)));
        for (int64_t n : {256, 512, 2560, 6912}) {
            const auto w = randn(static_cast<size_t>(n), static_cast<uint32_t>(n));
            const auto x = randn(static_cast<size_t>(n), static_cast<uint32_t>(n + 1), 3.0f);
            std::vector<uint8_t> wq(*tensor_bytes(c.type, n, n));
            quantize_tensor(c.type, w.data(), 1, n, wq);
            const ActFormat f = act_format_for(c.type);
            std::vector<uint8_t> xq(act_row_bytes(f, n));
            quantize_activation_row(f, x.data(), xq.data(), n);
            const float ref = vec_dot_scalar(c.type, I2sLayout::X86)(n, wq.data(), xq.data());
            const float got = vec_dot_avx2(c.type, I2sLayout::X86)(n, wq.data(), xq.data());
            if (c.exact) {
                EXPECT_EQ(got, ref) << "n=" << n;
            } else {
                EXPECT_NEAR(got, ref, 1e-5f * (std::fabs(ref) + static_cast<float>(n)))
                    << "n=" << n;
            }
        }
    }
}

TEST(Kernels, MatmulMatchesDequantizedProduct) {
    ThreadPool pool(3);
    MatmulScratch scratch;
    for (GgmlType type :
         {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
          GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::IQ2_S, GgmlType::I2_S}) {
        SCOPED_TRACE(std::string(type_name(type)));
        const int64_t rows = 37, cols = 512, tokens = 5;
        const auto w = randn(static_cast<size_t>(rows * cols), 1, 0.05f);
        const auto x = randn(static_cast<size_t>(tokens * cols), 2);
        std::vector<uint8_t> wq(*tensor_bytes(type, cols, rows * cols));
        quantize_tensor(type, w.data(), rows, cols, wq);
        std::vector<float> wd(w.size());
        dequantize_tensor(type, wq, rows, cols, wd.data());
        WeightMatrix m;
        m.type = type;
        m.data = wq.data();
        m.rows = rows;
        m.cols = cols;
        m.row_bytes = type == GgmlType::I2_S ? static_cast<size_t>(cols / 4)
                                             : *tensor_bytes(type, cols, cols);
        if (type == GgmlType::I2_S) m.scale = i2s_scale(wq, rows * cols);
        std::vector<float> y(static_cast<size_t>(tokens * rows));
        matmul(m, x.data(), tokens, y.data(), pool, scratch);
        // Against the float product with dequantized weights: off only by the 8-bit (or exact)
        // activation rounding.
        for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
                double ref = 0, mag = 0;
                for (int64_t c = 0; c < cols; ++c) {
                    ref += static_cast<double>(wd[r * cols + c]) * x[t * cols + c];
                    mag += std::fabs(static_cast<double>(wd[r * cols + c]) * x[t * cols + c]);
                }
                ASSERT_NEAR(y[t * rows + r], ref, 0.02 * mag + 1e-6)
                    << "token " << t << " row " << r;
            }
        }
    }
}

TEST(Kernels, RopeRotatesPairs) {
    std::vector<float> v = {1, 0, 0, 1, 1, 0, 0, 1};
    std::vector<float> n = v;
    rope(v.data(), 1, 8, 8, 0, 10000.0f, RopeStyle::Normal);
    EXPECT_EQ(v, n) << "position 0 is the identity";
    rope(v.data(), 1, 8, 8, 1, 10000.0f, RopeStyle::Normal);
    EXPECT_NEAR(v[0], std::cos(1.0f), 1e-6);  // pair (0, 1) at angle 1
    EXPECT_NEAR(v[1], std::sin(1.0f), 1e-6);
    std::vector<float> x = {1, 0, 0, 0, 0, 0, 0, 0};
    rope(x.data(), 1, 8, 8, 1, 10000.0f, RopeStyle::Neox);
    EXPECT_NEAR(x[0], std::cos(1.0f), 1e-6);  // NeoX pairs (0, 4)
    EXPECT_NEAR(x[4], std::sin(1.0f), 1e-6);
}

}  // namespace
}  // namespace bitnet
