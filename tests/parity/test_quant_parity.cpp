// Every quantizer ggml has, byte for byte, and every dequantizer, bit for bit, against
// libggml-base.so on data of several distributions and row lengths.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "bitnet/quant.h"
#include "core/fp16.h"
#include "parity/ggml_ref.h"

namespace bitnet::test {
namespace {

struct Dist {
    const char* name;
    float (*gen)(std::mt19937&, int64_t row, int64_t col);
};

float normal(std::mt19937& r) {
    return std::normal_distribution<float>(0.0f, 1.0f)(r);
}

const Dist kDists[] = {
    {"normal", [](std::mt19937& r, int64_t, int64_t) { return 0.02f * normal(r); }},
    {"uniform", [](std::mt19937& r, int64_t,
                   int64_t) { return std::uniform_real_distribution<float>(-1.0f, 1.0f)(r); }},
    {"zero rows",
     [](std::mt19937& r, int64_t row, int64_t) { return row % 2 == 0 ? 0.0f : normal(r); }},
    {"constant rows", [](std::mt19937&, int64_t row,
                         int64_t) { return 0.37f * static_cast<float>(row + 1) - 1.0f; }},
    {"rare outliers",
     [](std::mt19937& r, int64_t, int64_t) {
         const float x = 0.01f * normal(r);
         return std::uniform_int_distribution<int>(0, 999)(r) == 0 ? x * 3000.0f : x;
     }},
    {"near 1e-7", [](std::mt19937& r, int64_t, int64_t) { return 1e-7f * normal(r); }},
    {"ternary x scale",
     [](std::mt19937& r, int64_t, int64_t) {
         return 0.0625f * static_cast<float>(std::uniform_int_distribution<int>(-1, 1)(r));
     }},
};

const int64_t kRowLengths[] = {256, 768, 2560, 6912, 16384};
constexpr int64_t kRows = 3;

std::vector<float> make(const Dist& d, int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) v[static_cast<size_t>(r * cols + c)] = d.gen(rng, r, c);
    }
    return v;
}

std::map<std::string, uint64_t>& block_counts() {
    static std::map<std::string, uint64_t> counts;
    return counts;
}

void report(const std::string& what, uint64_t blocks) {
    block_counts()[what] += blocks;
}

class QuantParity : public ::testing::Test {
  protected:
    static void TearDownTestSuite() {
        for (const auto& [what, n] : block_counts()) {
            std::printf("[ parity ] %-28s %8llu blocks identical\n", what.c_str(),
                        static_cast<unsigned long long>(n));
        }
    }
};

void expect_quantize_parity(GgmlType type, bool with_importance) {
    const GgmlRef& g = GgmlRef::get();
    const int id = static_cast<int>(type);
    g.quantize_init(id);
    const auto ref = g.quantizer(id);
    ASSERT_NE(ref, nullptr);
    const TypeInfo& ti = type_info(type);
    uint64_t blocks = 0;
    uint32_t seed = 1;
    for (const Dist& d : kDists) {
        for (int64_t cols : kRowLengths) {
            SCOPED_TRACE(std::string(d.name) + " cols=" + std::to_string(cols));
            const auto x = make(d, kRows, cols, seed++);
            std::vector<float> imatrix;
            if (with_importance) {
                std::mt19937 rng(seed * 7);
                imatrix.resize(static_cast<size_t>(cols));
                for (float& w : imatrix) w = std::exponential_distribution<float>(1.0f)(rng);
            }
            const size_t bytes = *tensor_bytes(type, cols, kRows * cols);
            std::vector<uint8_t> ours(bytes, 0xcd), theirs(bytes, 0xcd);
            QuantOptions o;
            o.importance = with_importance ? imatrix.data() : nullptr;
            quantize_tensor(type, x.data(), kRows, cols, ours, o);
            EXPECT_EQ(ref(x.data(), theirs.data(), kRows, cols, o.importance), bytes);
            for (size_t b = 0; b < bytes; b += ti.block_bytes) {
                ASSERT_EQ(std::memcmp(ours.data() + b, theirs.data() + b, ti.block_bytes), 0)
                    << "first difference in block " << b / ti.block_bytes;
            }
            blocks += bytes / ti.block_bytes;
            // And those bytes dequantize identically.
            std::vector<float> a(x.size()), c(x.size());
            dequantize_tensor(type, ours, kRows, cols, a.data());
            g.dequantizer(id)(theirs.data(), c.data(), kRows * cols);
            ASSERT_EQ(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)), 0);
        }
    }
    report(std::string("quantize ") + std::string(ti.name) + (with_importance ? " +imatrix" : ""),
           blocks);
}

TEST_F(QuantParity, Q8_0) {
    expect_quantize_parity(GgmlType::Q8_0, false);
}
TEST_F(QuantParity, Q4_0) {
    expect_quantize_parity(GgmlType::Q4_0, false);
}
TEST_F(QuantParity, Q4_K) {
    expect_quantize_parity(GgmlType::Q4_K, false);
}
TEST_F(QuantParity, Q6_K) {
    expect_quantize_parity(GgmlType::Q6_K, false);
}
TEST_F(QuantParity, TQ1_0) {
    expect_quantize_parity(GgmlType::TQ1_0, false);
}
TEST_F(QuantParity, TQ2_0) {
    expect_quantize_parity(GgmlType::TQ2_0, false);
}
TEST_F(QuantParity, IQ2_S) {
    expect_quantize_parity(GgmlType::IQ2_S, false);
}
TEST_F(QuantParity, IQ2_SWithImportance) {
    expect_quantize_parity(GgmlType::IQ2_S, true);
}

TEST_F(QuantParity, Q8_K) {
    const GgmlRef& g = GgmlRef::get();
    uint64_t blocks = 0;
    uint32_t seed = 100;
    for (const Dist& d : kDists) {
        for (int64_t cols : kRowLengths) {
            const auto x = make(d, 1, cols, seed++);
            const size_t bytes = static_cast<size_t>(cols / 256 * 292);
            std::vector<uint8_t> ours(bytes), theirs(bytes, 0);
            quantize_tensor(GgmlType::Q8_K, x.data(), 1, cols, ours);
            g.quantize_row_q8_K_ref(x.data(), theirs.data(), cols);
            ASSERT_EQ(ours, theirs) << d.name << " cols=" << cols;
            blocks += bytes / 292;
            std::vector<float> a(x.size()), c(x.size());
            dequantize_tensor(GgmlType::Q8_K, ours, 1, cols, a.data());
            g.dequantizer(15)(theirs.data(), c.data(), cols);
            ASSERT_EQ(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)), 0);
        }
    }
    report("quantize Q8_K", blocks);
}

// Random blocks (with finite fp16 scales) through both dequantizers.
TEST_F(QuantParity, DequantizeRandomBlocks) {
    const GgmlRef& g = GgmlRef::get();
    struct Layout {
        GgmlType type;
        std::vector<size_t> half_offsets;  // fp16 fields inside a block
    };
    const Layout layouts[] = {
        {GgmlType::Q8_0, {0}},   {GgmlType::Q4_0, {0}},   {GgmlType::Q4_K, {0, 2}},
        {GgmlType::Q6_K, {208}}, {GgmlType::TQ1_0, {52}}, {GgmlType::TQ2_0, {64}},
        {GgmlType::IQ2_S, {0}},
    };
    std::mt19937 rng(42);
    for (const Layout& l : layouts) {
        const TypeInfo& ti = type_info(l.type);
        const int64_t n_blocks = 4096;
        std::vector<uint8_t> data(static_cast<size_t>(n_blocks) * ti.block_bytes);
        for (auto& b : data) b = static_cast<uint8_t>(rng());
        for (int64_t i = 0; i < n_blocks; ++i) {
            for (size_t off : l.half_offsets) {
                const uint16_t h = fp32_to_fp16(0.01f * normal(rng));
                std::memcpy(data.data() + static_cast<size_t>(i) * ti.block_bytes + off, &h, 2);
            }
        }
        const int64_t k = n_blocks * ti.block_size;
        std::vector<float> ours(static_cast<size_t>(k)), theirs(static_cast<size_t>(k));
        dequantize_tensor(l.type, data, 1, k, ours.data());
        g.dequantizer(static_cast<int>(l.type))(data.data(), theirs.data(), k);
        for (int64_t i = 0; i < k; ++i) {
            ASSERT_EQ(std::bit_cast<uint32_t>(ours[static_cast<size_t>(i)]),
                      std::bit_cast<uint32_t>(theirs[static_cast<size_t>(i)]))
                << ti.name << " value " << i;
        }
        report(std::string("dequantize ") + std::string(ti.name), static_cast<uint64_t>(n_blocks));
    }
}

}  // namespace
}  // namespace bitnet::test
