#include <gtest/gtest.h>

#include "bitnet/cpu.h"
#include "bitnet/error.h"

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
