#include <gtest/gtest.h>

#include "bitnet/error.h"
#include "bitnet/types.h"

namespace bitnet {
namespace {

TEST(Types, NamesAndSizes) {
    EXPECT_EQ(type_info(GgmlType::IQ2_S).block_bytes, 82u);
    EXPECT_EQ(type_info(GgmlType::TQ2_0).block_bytes, 66u);
    EXPECT_EQ(type_info(GgmlType::TQ1_0).block_bytes, 54u);
    EXPECT_EQ(type_info(GgmlType::Q8_K).block_bytes, 292u);
    EXPECT_EQ(type_from_name("tq2_0"), GgmlType::TQ2_0);
    EXPECT_EQ(type_from_name("I2_S"), GgmlType::I2_S);
    EXPECT_FALSE(type_from_name("q4_2").has_value());
    EXPECT_EQ(tensor_bytes(GgmlType::I2_S, 2560, 2560 * 2560), 2560u * 2560u / 4 + 32);
    EXPECT_EQ(tensor_bytes(GgmlType::IQ2_S, 512, 1024), 4u * 82u);
    EXPECT_FALSE(tensor_bytes(GgmlType::Q8_0, 33, 33).has_value());
}

TEST(Types, IdsResolveByArchitecture) {
    EXPECT_EQ(resolve_type_id(36, "bitnet-b1.58", "t"), GgmlType::I2_S);
    EXPECT_EQ(resolve_type_id(36, "bitnet-25", "t"), GgmlType::I2_S);
    EXPECT_THROW(resolve_type_id(36, "bitnet", "t"), Error);
    EXPECT_EQ(resolve_type_id(39, "llama", "t"), GgmlType::MXFP4);
    EXPECT_THROW(resolve_type_id(39, "bitnet-b1.58", "t"), NotSupported);
    EXPECT_THROW(resolve_type_id(38, "bitnet-b1.58", "t"), NotSupported);
    EXPECT_THROW(resolve_type_id(4, "llama", "t"), Error);
    EXPECT_THROW(resolve_type_id(1000, "llama", "t"), Error);
    try {
        resolve_type_id(36, "llama", "tensor 'w'");
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("tensor 'w'"), std::string::npos);
        EXPECT_NE(m.find("I2_S"), std::string::npos);
        EXPECT_NE(m.find("'llama'"), std::string::npos);
    }
}

}  // namespace
}  // namespace bitnet
