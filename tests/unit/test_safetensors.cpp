// The safetensors reader: valid files (every dtype we read, empty tensors, metadata, shards)
// and each kind of malformed file refused with a message naming the field.
#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "bitnet/safetensors.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

using nlohmann::json;

// Header length, header text, then `data` bytes.
std::string raw(const std::string& header, const std::string& data, int64_t length = -1) {
    std::string out(8, '\0');
    const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
    for (int i = 0; i < 8; ++i)
        out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
}

SafetensorsFile parse(const std::string& bytes) {
    return SafetensorsFile::parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                                  "t.safetensors");
}

std::string error_of(const std::string& bytes) {
    try {
        parse(bytes);
    } catch (const Error& e) {
        return e.what();
    }
    return "(accepted)";
}

TEST(Safetensors, ValidFileReadsEveryDtype) {
    // F32 [2] = {1.5, -2}; BF16 [1] = 1.0 (0x3f80); F16 [1] = 1.0 (0x3c00); U8 [2]; I8 [1]; and
    // an empty tensor. Listed out of data order: the reader returns data order.
    std::string data;
    const float f[2] = {1.5f, -2.0f};
    data.append(reinterpret_cast<const char*>(f), 8);
    data += std::string("\x80\x3f", 2) + std::string("\x00\x3c", 2) + "\x03\xff" + "\xfe";
    const json h = {{"i8", {{"dtype", "I8"}, {"shape", {1}}, {"data_offsets", {14, 15}}}},
                    {"f32", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                    {"bf16", {{"dtype", "BF16"}, {"shape", {1, 1}}, {"data_offsets", {8, 10}}}},
                    {"f16", {{"dtype", "F16"}, {"shape", {1}}, {"data_offsets", {10, 12}}}},
                    {"u8", {{"dtype", "U8"}, {"shape", {2}}, {"data_offsets", {12, 14}}}},
                    {"empty", {{"dtype", "F32"}, {"shape", {0, 4}}, {"data_offsets", {15, 15}}}},
                    {"__metadata__", {{"format", "pt"}}}};
    const std::string bytes = raw(h.dump() + "   ", data);  // trailing spaces are allowed
    const SafetensorsFile st = parse(bytes);
    ASSERT_EQ(st.tensors().size(), 6u);
    EXPECT_EQ(st.tensors()[0].name, "f32");
    EXPECT_EQ(st.tensors()[4].name, "i8");
    EXPECT_EQ(st.tensors()[5].name, "empty");  // [15, 15): after i8's [14, 15)
    EXPECT_EQ(st_to_float(*st.find("f32")), (std::vector<float>{1.5f, -2.0f}));
    EXPECT_EQ(st_to_float(*st.find("bf16")), (std::vector<float>{1.0f}));
    EXPECT_EQ(st_to_float(*st.find("f16")), (std::vector<float>{1.0f}));
    EXPECT_EQ(st_to_float(*st.find("u8")), (std::vector<float>{3.0f, 255.0f}));
    EXPECT_EQ(st_to_float(*st.find("i8")), (std::vector<float>{-2.0f}));
    EXPECT_EQ(st.find("empty")->elements(), 0);
    EXPECT_EQ(st.find("bf16")->shape, (std::vector<int64_t>{1, 1}));
    EXPECT_EQ(st.metadata().at("format"), "pt");
    EXPECT_EQ(st.find("missing"), nullptr);
}

TEST(Safetensors, EachMalformedKindIsRefusedNamingTheField) {
    auto one = [](const json& entry, const std::string& data) {
        return raw(json{{"w", entry}}.dump(), data);
    };
    const json ok = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}};
    const std::string eight(8, '\0');
    ASSERT_EQ(error_of(one(ok, eight)), "(accepted)");
    struct Bad {
        std::string bytes, expect;
    };
    json extra = ok;
    extra["bias"] = 1;
    json no_shape = ok;
    no_shape.erase("shape");
    const std::vector<Bad> cases = {
        {"abc", "less than the 8-byte header length"},
        {raw("{}", "", 1000), "runs past the end of the file"},
        {raw("{}", "", int64_t{200} << 20), "over the format's 100 MB limit"},
        {raw("[1,2]", ""), "does not start with '{'"},
        {raw("{\"w\": ", ""), "header JSON"},
        {raw("{\"w\": 3}", ""), "tensor 'w': its entry is not an object"},
        // A number JSON can write but not hold (found by the fuzzer: out_of_range, not a
        // parse error).
        {raw("{\"w\": 2e88888888883}", ""), "header JSON"},
        {one(extra, eight), "unexpected field 'bias'"},
        {one(no_shape, eight), "missing field 'shape'"},
        {one({{"dtype", "F64"}, {"shape", {1}}, {"data_offsets", {0, 8}}}, eight),
         "not supported: t.safetensors: tensor 'w': dtype F64"},
        {one({{"dtype", "Q4"}, {"shape", {1}}, {"data_offsets", {0, 8}}}, eight),
         "unknown dtype 'Q4'"},
        {one({{"dtype", "F32"}, {"shape", {-2}}, {"data_offsets", {0, 8}}}, eight),
         "shape must hold non-negative integers"},
        {one({{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 8}}}, eight),
         "is 12 bytes but data_offsets span 8"},
        {one({{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {8, 0}}}, eight),
         "is before begin"},
        {one({{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 16}}}, eight),
         "run past the data area"},
        {one({{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0}}}, eight),
         "data_offsets must be [begin, end]"},
        {one({{"dtype", "F32"}, {"shape", {uint64_t{1} << 62, 8}}, {"data_offsets", {0, 8}}},
             eight),
         "is too large"},
        {one(ok, eight + "tail"), "the tensors cover 8 of the data area's 12 bytes"},
        {one({{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}}, eight),
         "a gap of 4 bytes before its data"},
        {raw(json{{"a", ok}, {"b", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}}}}
                 .dump(),
             eight),
         "overlaps the tensor before it"},
        {raw(json{{"__metadata__", {{"n", 1}}}}.dump(), ""), "__metadata__.n is not a string"},
        // Partial products of the dimensions must fit int64 even when a later one is 0.
        {one({{"dtype", "U8"},
              {"shape", {uint64_t{1} << 32, (uint64_t{1} << 31) + 1, 0}},
              {"data_offsets", {0, 0}}},
             ""),
         "is too large"},
        {raw(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
             R"( "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})",
             "x"),
         "the key 'w' appears twice"},
        {raw(R"({"w": {"dtype": "U8", "dtype": "I8", "shape": [1], "data_offsets": [0, 1]}})", "x"),
         "the key 'dtype' appears twice"},
        {raw(R"({"w": {"dtype": "U8", "shape": [[[[1]]]], "data_offsets": [0, 1]}})", "x"),
         "nests deeper than the format's three levels"},
        {raw("{\"w\": {\"shape\": " + std::string(100000, '[') + "}}", ""),
         "nests deeper than the format's three levels"},
        {one({{"dtype", "F32"}, {"shape", {"two"}}, {"data_offsets", {0, 8}}}, eight),
         "shape must hold non-negative integers, not a string"},
    };
    for (const Bad& c : cases) {
        const std::string e = error_of(c.bytes);
        EXPECT_NE(e.find(c.expect), std::string::npos)
            << "expected '" << c.expect << "', got: " << e;
        if (c.bytes.size() >= 8) {
            EXPECT_NE(e.find("t.safetensors"), std::string::npos) << e;
        }
    }
}

TEST(Safetensors, ShardedCheckpointsFollowTheIndex) {
    TempDir tmp;
    const json a = {{"x", {{"dtype", "U8"}, {"shape", {2}}, {"data_offsets", {0, 2}}}}};
    const json b = {{"y", {{"dtype", "U8"}, {"shape", {1}}, {"data_offsets", {0, 1}}}}};
    write_file(tmp / "model-00001-of-00002.safetensors", raw(a.dump(), "\x01\x02"));
    write_file(tmp / "model-00002-of-00002.safetensors", raw(b.dump(), "\x07"));
    json index = {
        {"metadata", {{"total_size", 3}}},
        {"weight_map",
         {{"x", "model-00001-of-00002.safetensors"}, {"y", "model-00002-of-00002.safetensors"}}}};
    write_file(tmp / "model.safetensors.index.json", index.dump());
    const SafetensorsCheckpoint c = SafetensorsCheckpoint::open_dir(tmp.path().string());
    ASSERT_NE(c.find("y"), nullptr);
    EXPECT_EQ(st_to_float(*c.find("y")), (std::vector<float>{7.0f}));
    EXPECT_EQ(c.tensors().size(), 2u);

    auto refused = [&](const json& idx, const std::string& expect) {
        write_file(tmp / "model.safetensors.index.json", idx.dump());
        try {
            SafetensorsCheckpoint::open_dir(tmp.path().string());
            ADD_FAILURE() << "accepted; expected " << expect;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
        }
    };
    index["weight_map"]["y"] = "model-00001-of-00002.safetensors";
    refused(index, "'y' is not in model-00001-of-00002.safetensors");
    index["weight_map"]["y"] = "../elsewhere.safetensors";
    refused(index, "is not a file in the folder");
    refused(json::array(), "no \"weight_map\" object");
    TempDir empty;
    try {
        SafetensorsCheckpoint::open_dir(empty.path().string());
        ADD_FAILURE() << "an empty folder was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("neither model.safetensors"), std::string::npos);
    }
}

}  // namespace
}  // namespace bitnet::test
