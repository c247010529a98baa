// fp16/bf16 conversions and the type table against libggml-base.
#include <gtest/gtest.h>

#include <bit>

#include "bitnet/types.h"
#include "core/fp16.h"
#include "parity/ggml_ref.h"

namespace bitnet::test {
namespace {

TEST(Fp16Parity, Fp32ToFp16MatchesGgmlOnStridedBitPatterns) {
    const GgmlRef& g = GgmlRef::get();
    uint64_t compared = 0;
    // A stride prime to 2^32 visits every exponent and many mantissas, signs and NaNs.
    for (uint64_t i = 0; i < (1ull << 32); i += 4099) {
        const float f = std::bit_cast<float>(static_cast<uint32_t>(i));
        ASSERT_EQ(fp32_to_fp16(f), g.fp32_to_fp16(f)) << std::hex << i;
        ASSERT_EQ(fp32_to_bf16(f), g.fp32_to_bf16(f)) << std::hex << i;
        ++compared;
    }
    // Every rounding boundary around every half: h's value, and the midpoints to h+1.
    for (uint32_t h = 0; h < 0x7c00; ++h) {
        const uint32_t bits = std::bit_cast<uint32_t>(g.fp16_to_fp32(static_cast<uint16_t>(h)));
        for (uint32_t d : {0u, 1u, 0xfffu, 0x1000u, 0x1001u, 0x1fffu}) {
            for (uint32_t sign : {0u, 0x80000000u}) {
                const float f = std::bit_cast<float>((bits + d) | sign);
                ASSERT_EQ(fp32_to_fp16(f), g.fp32_to_fp16(f)) << std::hex << (bits + d);
                ++compared;
            }
        }
    }
    std::printf("[ parity ] %llu fp32 values converted identically\n",
                static_cast<unsigned long long>(compared));
}

TEST(Fp16Parity, EveryHalfAndBfloatDecodesLikeGgml) {
    const GgmlRef& g = GgmlRef::get();
    for (uint32_t h = 0; h < 65536; ++h) {
        const auto x = static_cast<uint16_t>(h);
        ASSERT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(x)),
                  std::bit_cast<uint32_t>(g.fp16_to_fp32(x)))
            << std::hex << h;
        ASSERT_EQ(std::bit_cast<uint32_t>(bf16_to_fp32(x)),
                  std::bit_cast<uint32_t>(g.bf16_to_fp32(x)))
            << std::hex << h;
    }
}

TEST(TypeTableParity, BlockGeometryMatchesGgml) {
    const GgmlRef& g = GgmlRef::get();
    size_t n = 0;
    for (const TypeInfo& t : all_types()) {
        if (t.type == GgmlType::I2_S) continue;  // not an upstream type
        const int id = static_cast<int>(t.type);
        EXPECT_EQ(g.blck_size(id), t.block_size) << t.name;
        EXPECT_EQ(g.type_size(id), t.block_bytes) << t.name;
        std::string name = g.type_name(id);
        for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        EXPECT_EQ(name, t.name);
        ++n;
    }
    // Ids ggml has no type for are refused by us too.
    for (int id = 0; id < 64; ++id) {
        const bool ggml_knows = id < 43 && g.blck_size(id) > 0;
        bool we_know = true;
        try {
            resolve_type_id(static_cast<uint32_t>(id), "llama", "t");
        } catch (const std::exception&) {
            we_know = false;
        }
        EXPECT_EQ(we_know, ggml_knows) << "type id " << id;
    }
    EXPECT_GE(n, 35u);
}

}  // namespace
}  // namespace bitnet::test
