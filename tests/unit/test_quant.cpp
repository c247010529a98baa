// Format facts that need no reference: table contents, I2_S layouts, round-trip accuracy.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "bitnet/quant.h"
#include "quant/formats.h"
#include "quant/iq2s_tables.h"

namespace bitnet {
namespace {

TEST(Iq2sTables, GridDecodesToTheDocumentedValueSet) {
    constexpr int kByteOf[3] = {8, 25, 43};
    std::set<int> values;
    for (size_t k = 0; k < kIq2sGrid.size(); ++k) {
        for (int j = 0; j < 8; ++j) {
            const int byte = static_cast<int>((kIq2sGrid[k] >> (8 * j)) & 0xff);
            values.insert(byte);
            // The dequantization grid and the quantizer's 2-bit grid name the same point.
            const int l = (kIq2sGridCodes[k] >> (2 * j)) & 3;
            ASSERT_LE(l, 2) << "grid point " << k;
            ASSERT_EQ(byte, kByteOf[l]) << "grid point " << k << " coordinate " << j;
        }
    }
    EXPECT_EQ(values, (std::set<int>{8, 25, 43}));
    EXPECT_EQ(std::set<uint64_t>(kIq2sGrid.begin(), kIq2sGrid.end()).size(), 1024u)
        << "points are distinct";
}

TEST(Iq2sTables, EveryOffGridPointHasNearestNeighbours) {
    const Iq2sSearch& s = Iq2sSearch::get();
    int on = 0, off = 0;
    for (int code = 0; code < Iq2sSearch::kMapSize; ++code) {
        bool in_range = true;
        for (int i = 0; i < 8; ++i) in_range = in_range && ((code >> (2 * i)) & 3) <= 2;
        if (!in_range) continue;
        const auto c = static_cast<uint16_t>(code);
        if (s.grid_index(c) >= 0) {
            ++on;
            continue;
        }
        ++off;
        const auto n = s.neighbours(c);
        ASSERT_FALSE(n.empty()) << code;
        for (size_t i = 1; i < n.size(); ++i) ASSERT_LT(n[i - 1], n[i]);
    }
    EXPECT_EQ(on, 1024);
    EXPECT_EQ(on + off, 6561);  // 3^8 points with coordinates 0..2
}

// Packs ternary codes the documented way (FORMATS.md), independently of the library.
std::vector<uint8_t> pack_i2s(const std::vector<int>& codes, float scale, int64_t block) {
    const int64_t n = static_cast<int64_t>(codes.size());
    std::vector<uint8_t> out(static_cast<size_t>(n / 4 + 32), 0);
    const int64_t stride = block / 4;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t b = i / block, j = i % block;
        out[static_cast<size_t>(b * stride + j % stride)] |=
            static_cast<uint8_t>(codes[static_cast<size_t>(i)] << (6 - 2 * (j / stride)));
    }
    std::memcpy(out.data() + n / 4, &scale, 4);
    return out;
}

TEST(I2s, DocumentedLayoutsDecodeToTheirCodesAndScale) {
    std::mt19937 rng(5);
    const int64_t rows = 6, cols = 256;
    std::vector<int> codes(static_cast<size_t>(rows * cols));
    for (int& c : codes) c = std::uniform_int_distribution<int>(0, 2)(rng);
    const float scale = 0.8125f;
    for (const auto& [layout, block] :
         {std::pair{I2sLayout::X86, 128}, std::pair{I2sLayout::Arm, 64}}) {
        const auto packed = pack_i2s(codes, scale, block);
        EXPECT_EQ(i2s_scale(packed, rows * cols), scale);
        std::vector<float> out(codes.size());
        QuantOptions o;
        o.i2s_layout = layout;
        dequantize_tensor(GgmlType::I2_S, packed, rows, cols, out.data(), o);
        for (size_t i = 0; i < codes.size(); ++i) {
            ASSERT_EQ(i2s_code(packed, static_cast<int64_t>(i), layout), codes[i]);
            ASSERT_EQ(out[i], scale * static_cast<float>(codes[i] - 1)) << i;
        }
        // Our quantizer writes exactly the documented bytes.
        std::vector<float> w(codes.size());
        for (size_t i = 0; i < codes.size(); ++i) w[i] = scale * static_cast<float>(codes[i] - 1);
        std::vector<uint8_t> q(packed.size(), 0xee);
        quantize_tensor(GgmlType::I2_S, w.data(), rows, cols, q, o);
        EXPECT_EQ(q, packed);
    }
}

TEST(I2s, SameTernaryWeightsAsTq2_0DequantizeIdentically) {
    std::mt19937 rng(9);
    const int64_t rows = 4, cols = 512;
    const float scale = 0.046875f;  // exact in fp16, so TQ2_0's fp16 d loses nothing
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (float& x : w)
        x = scale * static_cast<float>(std::uniform_int_distribution<int>(-1, 1)(rng));
    for (int64_t r = 0; r < rows; ++r)
        w[static_cast<size_t>(r * cols)] = scale;  // every block's absmax = scale
    for (int64_t b = 0; b < rows * cols; b += 256) w[static_cast<size_t>(b)] = scale;
    std::vector<uint8_t> i2s(*tensor_bytes(GgmlType::I2_S, cols, rows * cols));
    std::vector<uint8_t> tq2(*tensor_bytes(GgmlType::TQ2_0, cols, rows * cols));
    quantize_tensor(GgmlType::I2_S, w.data(), rows, cols, i2s);
    quantize_tensor(GgmlType::TQ2_0, w.data(), rows, cols, tq2);
    std::vector<float> a(w.size()), b(w.size());
    dequantize_tensor(GgmlType::I2_S, i2s, rows, cols, a.data());
    dequantize_tensor(GgmlType::TQ2_0, tq2, rows, cols, b.data());
    EXPECT_EQ(a, w);
    EXPECT_EQ(b, w);
}

TEST(I2s, LayoutChoiceAndErrors) {
    EXPECT_EQ(resolve_i2s_layout(I2sLayout::Auto, 256), I2sLayout::X86);
    EXPECT_EQ(resolve_i2s_layout(I2sLayout::Auto, 192), I2sLayout::Arm);
    EXPECT_THROW(resolve_i2s_layout(I2sLayout::Auto, 100), Error);
    EXPECT_THROW(resolve_i2s_layout(I2sLayout::X86, 192), Error);
    EXPECT_EQ(resolve_i2s_layout(I2sLayout::Arm, 128), I2sLayout::Arm);
}

TEST(Quant, RoundTripErrorIsBoundedPerFormat) {
    std::mt19937 rng(3);
    const int64_t rows = 8, cols = 1024;
    std::vector<float> x(static_cast<size_t>(rows * cols));
    for (float& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    // Relative RMS error ceilings well above what each format reaches on Gaussian data.
    const std::pair<GgmlType, double> cases[] = {
        {GgmlType::F32, 0.0},    {GgmlType::F16, 1e-3},  {GgmlType::BF16, 5e-3},
        {GgmlType::Q8_0, 0.01},  {GgmlType::Q4_0, 0.15}, {GgmlType::Q8_K, 0.01},
        {GgmlType::IQ2_S, 0.45},
    };
    double sum2 = 0;
    for (float v : x) sum2 += static_cast<double>(v) * v;
    for (const auto& [type, limit] : cases) {
        std::vector<uint8_t> q(*tensor_bytes(type, cols, rows * cols));
        quantize_tensor(type, x.data(), rows, cols, q);
        std::vector<float> y(x.size());
        dequantize_tensor(type, q, rows, cols, y.data());
        double err2 = 0;
        for (size_t i = 0; i < x.size(); ++i) err2 += std::pow(static_cast<double>(x[i]) - y[i], 2);
        EXPECT_LE(std::sqrt(err2 / sum2), limit) << type_name(type);
    }
}

TEST(Quant, TernaryFormatsAreExactOnTernaryData) {
    std::mt19937 rng(4);
    const int64_t rows = 3, cols = 768;
    std::vector<float> x(static_cast<size_t>(rows * cols));
    for (float& v : x)
        v = 0.5f * static_cast<float>(std::uniform_int_distribution<int>(-1, 1)(rng));
    for (int64_t b = 0; b < rows * cols; b += 256) x[static_cast<size_t>(b)] = -0.5f;
    for (GgmlType type : {GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::I2_S}) {
        std::vector<uint8_t> q(*tensor_bytes(type, cols, rows * cols));
        quantize_tensor(type, x.data(), rows, cols, q);
        std::vector<float> y(x.size());
        dequantize_tensor(type, q, rows, cols, y.data());
        EXPECT_EQ(y, x) << type_name(type);
    }
}

TEST(Quant, ThreadsGiveTheSameBytes) {
    std::mt19937 rng(8);
    const int64_t rows = 7, cols = 512;
    std::vector<float> x(static_cast<size_t>(rows * cols));
    for (float& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    std::vector<uint8_t> a(*tensor_bytes(GgmlType::IQ2_S, cols, rows * cols)), b(a.size());
    quantize_tensor(GgmlType::IQ2_S, x.data(), rows, cols, a);
    QuantOptions o;
    o.threads = 3;
    quantize_tensor(GgmlType::IQ2_S, x.data(), rows, cols, b, o);
    EXPECT_EQ(a, b);
}

TEST(Quant, RefusesWhatItCannotDo) {
    std::vector<float> x(256, 1.0f);
    std::vector<uint8_t> q(144);
    EXPECT_THROW(quantize_tensor(GgmlType::IQ1_S, x.data(), 1, 256, q), NotSupported);
    std::vector<uint8_t> small(10);
    EXPECT_THROW(quantize_tensor(GgmlType::Q8_0, x.data(), 1, 256, small), Error);
    std::vector<uint8_t> any(66);
    EXPECT_THROW(quantize_tensor(GgmlType::TQ2_0, x.data(), 1, 100, any), Error);  // 100 % 256
    x[17] = std::nanf("");
    std::vector<uint8_t> q80(8 * 34);
    try {
        quantize_tensor(GgmlType::Q8_0, x.data(), 1, 256, q80);
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("value 17 is NaN"), std::string::npos) << e.what();
    }
    std::vector<float> imp(256, 1.0f);
    QuantOptions o;
    o.importance = imp.data();
    std::vector<float> y(256, 0.5f);
    std::vector<uint8_t> q40(8 * 18);
    EXPECT_THROW(quantize_tensor(GgmlType::Q4_0, y.data(), 1, 256, q40, o), NotSupported);
    // The K-quants are written without importance weights only (ggml's reference quantizers).
    std::vector<uint8_t> q6(210);
    EXPECT_THROW(quantize_tensor(GgmlType::Q6_K, y.data(), 1, 256, q6, o), NotSupported);
    EXPECT_TRUE(can_quantize(GgmlType::Q6_K));
    EXPECT_TRUE(can_dequantize(GgmlType::Q6_K));
    EXPECT_FALSE(can_quantize(GgmlType::IQ1_S));
    EXPECT_FALSE(can_dequantize(GgmlType::IQ1_S));
}

// The AVX2 steps of the Q6_K quantizer give the scalar quantizer's bytes (the parity tests
// compare the one this CPU uses with libggml-base): random rows at several scales, all-zero and
// tiny sub-blocks (the GROUP_MAX_EPS branch), a block whose sub-block scales quantize to 0, and
// ties on the largest magnitude.
TEST(Quant, Q6kAvx2StepsMatchScalar) {
    if (active_isa() < Isa::Avx2) GTEST_SKIP() << "no AVX2 (or BITNET_ISA below it)";
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t blocks = 64;
    std::vector<float> x(static_cast<size_t>(256 * blocks));
    for (size_t i = 0; i < x.size(); ++i) {
        const auto b = static_cast<int64_t>(i / 256);
        x[i] = nd(rng) * std::pow(10.0f, static_cast<float>(b % 9 - 4));
    }
    std::fill(x.begin() + 256, x.begin() + 256 + 40, 0.0f);                // zero sub-blocks
    std::fill(x.begin() + 512, x.begin() + 512 + 16, 1e-17f);              // below GROUP_MAX_EPS
    for (int i = 0; i < 256; ++i) x[768 + i] = i < 16 ? 1000.0f : 1e-4f;   // scales round to 0
    for (int i = 0; i < 16; ++i) x[1024 + i] = i % 2 == 0 ? 2.0f : -2.0f;  // ties on |max|
    std::vector<uint8_t> a(static_cast<size_t>(210 * blocks)), b(a.size());
    quant::q6_k_from_float_with(x.data(), a.data(), 256 * blocks, false);
    quant::q6_k_from_float_with(x.data(), b.data(), 256 * blocks, true);
    for (int64_t k = 0; k < blocks; ++k) {
        ASSERT_EQ(0, std::memcmp(a.data() + 210 * k, b.data() + 210 * k, 210)) << "block " << k;
    }
}

}  // namespace
}  // namespace bitnet
