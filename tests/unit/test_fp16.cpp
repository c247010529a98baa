#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "core/fp16.h"

namespace bitnet {
namespace {

TEST(Fp16, EveryFiniteHalfRoundTrips) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const auto x = static_cast<uint16_t>(h);
        const float f = fp16_to_fp32(x);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
            continue;
        }
        ASSERT_EQ(fp32_to_fp16(f), x) << std::hex << h;
    }
}

TEST(Fp16, RoundsHalfToEven) {
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bffu);
    EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bffu);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00u);
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1.0p-11f), 0x3c00u);      // tie -> even
    EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1.0p-11f), 0x3c02u);  // tie -> even (up)
    EXPECT_EQ(fp32_to_fp16(0x1.0p-25f), 0x0000u);             // tie -> 0
    EXPECT_EQ(fp32_to_fp16(0x1.8p-25f), 0x0001u);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000u);
    EXPECT_EQ(fp32_to_bf16(1.0f + 0x1.0p-8f), 0x3f80u);
    EXPECT_EQ(fp32_to_bf16(1.0f + 0x1.8p-8f), 0x3f81u);
}

}  // namespace
}  // namespace bitnet
