#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "core/page_buffer.h"

namespace bitnet {
namespace {

TEST(Cpu, DetectsAConsistentLevel) {
    const CpuFeatures& f = cpu_features();
    const Isa best = best_isa();
    if (best >= Isa::Avx512) {
        EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx2);
    }
    if (best == Isa::Avx512Vnni) {
        EXPECT_TRUE(f.avx512vnni);
    }
    if (best >= Isa::Avx2) {
        EXPECT_TRUE(f.avx2 && f.fma);
    }
    EXPECT_LE(static_cast<int>(active_isa()), static_cast<int>(best));
}

// The memory weights and KV caches are held in: zero-filled, 2 MiB aligned from a huge page
// up (so that the kernel can back it with huge pages), movable without copying.
TEST(PageBuffer, ZeroFilledAlignedAndMovable) {
    constexpr size_t kHuge = size_t{2} << 20;
    PageBuffer big(3 * kHuge + 100);
    ASSERT_NE(big.data(), nullptr);
    EXPECT_EQ(big.size(), 3 * kHuge + 100);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % kHuge, 0u);
    for (size_t i = 0; i < big.size(); i += 4093) ASSERT_EQ(big.data()[i], 0) << i;
    EXPECT_EQ(big.data()[big.size() - 1], 0);
    big.data()[big.size() - 1] = 7;
    const uint8_t* where = big.data();
    PageBuffer moved(std::move(big));
    EXPECT_EQ(big.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state
    EXPECT_EQ(big.size(), 0u);
    EXPECT_EQ(moved.data(), where);
    EXPECT_EQ(moved.data()[moved.size() - 1], 7);
    PageBuffer small(100);  // below a huge page: plain pages, page aligned
    ASSERT_NE(small.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data()) % 4096, 0u);
    EXPECT_EQ(small.data()[99], 0);
    small = std::move(moved);
    EXPECT_EQ(small.data(), where);
    EXPECT_EQ(PageBuffer(0).data(), nullptr);
    EXPECT_THROW(PageBuffer(SIZE_MAX - 5), Error);
}

TEST(Cpu, ParsesIsaNames) {
    EXPECT_EQ(parse_isa("scalar"), Isa::Scalar);
    EXPECT_EQ(parse_isa("avx2"), Isa::Avx2);
    EXPECT_EQ(parse_isa("avx512"), Isa::Avx512);
    EXPECT_EQ(parse_isa("avx512vnni"), Isa::Avx512Vnni);
    EXPECT_THROW(parse_isa("neon"), Error);
    EXPECT_EQ(isa_name(Isa::Avx2), "avx2");
}

}  // namespace
}  // namespace bitnet
