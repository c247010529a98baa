// Writer round trips: read -> write -> read keeps metadata and tensor bytes identical.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "bitnet/gguf.h"
#include "bitnet/synth.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

GgufMetadata every_value_type() {
    GgufMetadata m;
    m.set("general.architecture", "llama");
    m.set<uint8_t>("v.u8", 255);
    m.set<int8_t>("v.i8", -128);
    m.set<uint16_t>("v.u16", 65535);
    m.set<int16_t>("v.i16", -32768);
    m.set<uint32_t>("v.u32", 0xffffffffu);
    m.set<int32_t>("v.i32", -1);
    m.set<float>("v.f32", -0.0f);
    m.set<bool>("v.bool", false);
    m.set("v.string", std::string("multi\nline \xf0\x9f\x98\x80"));
    m.set<uint64_t>("v.u64", ~0ull);
    m.set<int64_t>("v.i64", std::numeric_limits<int64_t>::min());
    m.set<double>("v.f64", 1e-310);
    m.set("a.u8", GgufArray::of(std::vector<uint8_t>{0, 1, 2}));
    m.set("a.i8", GgufArray::of(std::vector<int8_t>{-1, 1}));
    m.set("a.u16", GgufArray::of(std::vector<uint16_t>{7}));
    m.set("a.i16", GgufArray::of(std::vector<int16_t>{-7, 7}));
    m.set("a.u32", GgufArray::of(std::vector<uint32_t>{1, 2, 3, 4}));
    m.set("a.i32", GgufArray::of(std::vector<int32_t>{-5}));
    m.set("a.f32",
          GgufArray::of(std::vector<float>{1.5f, std::numeric_limits<float>::quiet_NaN()}));
    m.set("a.u64", GgufArray::of(std::vector<uint64_t>{1ull << 40}));
    m.set("a.i64", GgufArray::of(std::vector<int64_t>{-(1ll << 40)}));
    m.set("a.f64", GgufArray::of(std::vector<double>{0.1, 0.2}));
    m.set("a.string", GgufArray::of(std::vector<std::string>{"x", "", std::string("\0y", 2)}));
    GgufArray bools;
    bools.elem_type = GgufType::Bool;
    bools.data = std::vector<uint8_t>{0, 1};
    m.set("a.bool", bools);
    return m;
}

void copy_file(const GgufFile& in, const std::string& out) {
    GgufWriter w(in.alignment());
    for (const auto& [k, v] : in.metadata().entries()) w.metadata().set(k, v);
    for (const GgufTensorInfo& t : in.tensors()) {
        w.add_tensor(t.name, t.type, std::span<const int64_t>(t.ne.data(), t.n_dims),
                     in.tensor_data(t));
    }
    w.write(out);
}

void expect_same(const GgufFile& a, const GgufFile& b) {
    EXPECT_TRUE(a.metadata() == b.metadata());
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
        const auto& x = a.tensors()[i];
        const auto& y = b.tensors()[i];
        EXPECT_EQ(x.name, y.name);
        EXPECT_EQ(x.type, y.type);
        EXPECT_EQ(x.n_dims, y.n_dims);
        EXPECT_EQ(x.ne, y.ne);
        EXPECT_EQ(x.bytes, y.bytes);
        const auto da = a.tensor_data(x);
        const auto db = b.tensor_data(y);
        EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end())) << x.name;
    }
}

TEST(GgufRoundTrip, EveryValueTypeAndTensorTypes) {
    TempDir tmp;
    for (uint32_t alignment : {32u, 64u, 1u, 4096u}) {
        SCOPED_TRACE(alignment);
        GgufWriter w(alignment);
        const GgufMetadata expected = every_value_type();
        for (const auto& [k, v] : expected.entries()) w.metadata().set(k, v);
        std::mt19937 rng(alignment);
        std::vector<std::vector<uint8_t>> payloads;
        for (GgmlType t :
             {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
              GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::IQ2_S, GgmlType::Q4_K, GgmlType::Q6_K}) {
            const int64_t ne[] = {256, 2, 3};
            std::vector<uint8_t> bytes(*tensor_bytes(t, 256, 256 * 6));
            for (auto& b : bytes) b = static_cast<uint8_t>(rng());
            payloads.push_back(std::move(bytes));
            w.add_tensor(std::string("t.") + std::string(type_name(t)), t, ne, payloads.back());
        }
        const std::string p1 = (tmp / "a.gguf").string();
        const std::string p2 = (tmp / "b.gguf").string();
        w.write(p1);
        const GgufFile f1 = GgufFile::open(p1);
        EXPECT_EQ(f1.alignment(), alignment);
        EXPECT_EQ(f1.data_offset() % alignment, 0u);
        for (const auto& [k, v] : expected.entries()) {
            ASSERT_NE(f1.metadata().find(k), nullptr) << k;
            EXPECT_TRUE(*f1.metadata().find(k) == v) << k;
        }
        for (size_t i = 0; i < payloads.size(); ++i) {
            const auto d = f1.tensor_data(f1.tensors()[i]);
            EXPECT_TRUE(std::equal(d.begin(), d.end(), payloads[i].begin(), payloads[i].end()));
        }
        copy_file(f1, p2);
        const GgufFile f2 = GgufFile::open(p2);
        expect_same(f1, f2);
        EXPECT_EQ(read_file(p1), read_file(p2)) << "a copy is byte-identical";
    }
}

TEST(GgufRoundTrip, MicrosoftI2SSizeRule) {
    TempDir tmp;
    GgufWriter w;
    w.metadata().set("general.architecture", "bitnet-b1.58");
    const int64_t ne[] = {256, 4};
    std::vector<uint8_t> bytes(256 * 4 / 4 + 32, 0xaa);
    w.add_tensor("blk.0.attn_q.weight", GgmlType::I2_S, ne, bytes);
    w.write((tmp / "i2s.gguf").string());
    const GgufFile f = GgufFile::open((tmp / "i2s.gguf").string());
    ASSERT_EQ(f.tensors().size(), 1u);
    EXPECT_EQ(f.tensors()[0].type, GgmlType::I2_S);
    EXPECT_EQ(f.tensors()[0].type_id, 36u);
    EXPECT_EQ(f.tensors()[0].bytes, 256u + 32u);

    GgufWriter bad;
    bad.metadata().set("general.architecture", "llama");
    bad.add_tensor("x", GgmlType::I2_S, ne, bytes);
    EXPECT_THROW(bad.write((tmp / "bad.gguf").string()), Error);
    EXPECT_FALSE(std::filesystem::exists(tmp / "bad.gguf"));
}

TEST(GgufRoundTrip, TypedAccessorsNameTheKey) {
    const GgufMetadata m = every_value_type();
    EXPECT_EQ(m.get<uint32_t>("v.u32"), 0xffffffffu);
    EXPECT_EQ(m.get_or<uint32_t>("missing", 5u), 5u);
    EXPECT_EQ(m.get_array<std::string>("a.string").size(), 3u);
    EXPECT_EQ(m.get_uint("v.u16"), 65535u);
    try {
        (void)m.get<uint32_t>("v.i32");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'v.i32' has type i32, expected u32"),
                  std::string::npos)
            << e.what();
    }
    try {
        (void)m.get<float>("nope");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'nope' is missing"), std::string::npos);
    }
    EXPECT_THROW((void)m.get_array<int32_t>("a.u32"), Error);
    EXPECT_THROW((void)m.get_uint("v.i8"), Error);  // negative
}

TEST(GgufRoundTrip, FailedWriteLeavesNoFile) {
    TempDir tmp;
    GgufWriter w;
    const int64_t ne[] = {8};
    w.add_tensor("short", GgmlType::F32, ne, [](ByteSink& s) {
        const float x[4] = {};
        s.write(x, sizeof(x));  // 16 of the 32 bytes promised
    });
    EXPECT_THROW(w.write((tmp / "out.gguf").string()), Error);
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));

    GgufWriter w2;
    w2.add_tensor("boom", GgmlType::F32, ne, [](ByteSink&) { throw Error("producer failed"); });
    write_file(tmp / "keep.gguf", "previous contents");
    EXPECT_THROW(w2.write((tmp / "keep.gguf").string()), Error);
    EXPECT_EQ(read_file(tmp / "keep.gguf"), "previous contents");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 1);
}

TEST(GgufRoundTrip, WriterRejectsBadTensors) {
    GgufWriter w;
    const int64_t ne[] = {100};
    std::vector<uint8_t> b(400);
    EXPECT_THROW(w.add_tensor("q", GgmlType::Q8_0, ne, b), Error);
    EXPECT_THROW(w.add_tensor(std::string(64, 'x'), GgmlType::F32, ne, b), Error);
    w.add_tensor("a", GgmlType::F32, ne, b);
    EXPECT_THROW(w.add_tensor("a", GgmlType::F32, ne, b), Error);
    EXPECT_THROW(GgufWriter(48), Error);
}

TEST(GgufRoundTrip, InspectJsonDescribesTheFile) {
    TempDir tmp;
    SynthOptions o;
    o.n_vocab = 300;
    o.n_layer = 1;
    const std::string path = (tmp / "s.gguf").string();
    write_synthetic_model(o, path);
    RunResult r = run_cli({"inspect", path, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(j["version"], 3);
    EXPECT_EQ(j["alignment"], 32);
    EXPECT_EQ(j["data_offset"], f.data_offset());
    EXPECT_EQ(j["metadata"]["general.architecture"]["type"], "string");
    EXPECT_EQ(j["metadata"]["general.architecture"]["value"], "bitnet");
    EXPECT_EQ(j["metadata"]["bitnet.block_count"]["type"], "u32");
    EXPECT_EQ(j["metadata"]["bitnet.block_count"]["value"], 1);
    ASSERT_EQ(j["tensors"].size(), f.tensors().size());
    const auto& t0 = j["tensors"][0];
    EXPECT_EQ(t0["name"], "token_embd.weight");
    EXPECT_EQ(t0["type"], "F16");
    EXPECT_EQ(t0["type_id"], 1);
    EXPECT_EQ(t0["shape"], nlohmann::json::array({256, 300}));
    EXPECT_EQ(t0["offset"], 0);
    EXPECT_EQ(t0["bytes"], 256 * 300 * 2);

    // Arrays over 64 elements are summarized unless --full.
    GgufWriter w;
    w.metadata().set("long", GgufArray::of(std::vector<std::string>(65, "t")));
    w.metadata().set("short", GgufArray::of(std::vector<int32_t>{1, 2}));
    w.write((tmp / "arr.gguf").string());
    r = run_cli({"inspect", (tmp / "arr.gguf").string(), "--json"});
    auto a = nlohmann::json::parse(r.out);
    EXPECT_EQ(a["metadata"]["long"],
              nlohmann::json({{"type", "array"}, {"elem_type", "string"}, {"count", 65}}));
    EXPECT_EQ(a["metadata"]["short"]["value"], nlohmann::json::array({1, 2}));
    r = run_cli({"inspect", (tmp / "arr.gguf").string(), "--json", "--full"});
    a = nlohmann::json::parse(r.out);
    EXPECT_EQ(a["metadata"]["long"]["value"].size(), 65u);

    r = run_cli({"inspect", path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("architecture:  bitnet"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bits per weight"), std::string::npos);
    EXPECT_NE(r.out.find("blk.0.ffn_down.weight"), std::string::npos);
}

}  // namespace
}  // namespace bitnet::test
