// Malformed and hostile GGUF files: each is refused with a message naming what is wrong,
// never a crash, a hang or an unbounded allocation. Then the same through the CLI.
#include <gtest/gtest.h>

#include <functional>

#include "bitnet/gguf.h"
#include "support/raw_gguf.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

struct MalformedCase {
    std::string name;
    std::function<std::string()> build;
    std::string expected;  // a substring of the error message
};

// A small valid file: 2 keys, 2 F32 tensors of 8 and 4 values.
RawGguf valid_prefix(uint64_t n_tensors = 2) {
    RawGguf g;
    g.header(n_tensors, 2).kv_str("general.architecture", "llama").kv_u32("x.count", 7);
    return g;
}

std::string valid_file() {
    RawGguf g = valid_prefix();
    g.tensor("a", {8}, 0, 0).tensor("b", {4}, 0, 32).pad().zeros(32 + 16);
    return g.bytes;
}

std::vector<MalformedCase> cases() {
    std::vector<MalformedCase> c;
    const std::string good = valid_file();
    auto truncated = [good](size_t n) { return [good, n] { return good.substr(0, n); }; };
    c.push_back({"empty file", [] { return std::string(); }, "byte 0: magic: file truncated"});
    c.push_back({"bad magic", [] { return std::string("GGML\3\0\0\0") + std::string(16, '\0'); },
                 "not a GGUF file"});
    c.push_back({"truncated in magic", truncated(3), "magic: file truncated"});
    c.push_back({"truncated in version", truncated(6), "byte 4: version: file truncated"});
    c.push_back({"truncated in tensor count", truncated(12), "tensor count: file truncated"});
    c.push_back({"truncated in kv count", truncated(20), "metadata count: file truncated"});
    c.push_back({"version 1",
                 [] {
                     RawGguf g;
                     g.header(0, 0, 1);
                     return g.bytes;
                 },
                 "version 1 is obsolete"});
    c.push_back({"version 0",
                 [] {
                     RawGguf g;
                     g.header(0, 0, 0);
                     return g.bytes;
                 },
                 "unknown GGUF version 0"});
    c.push_back({"version 4",
                 [] {
                     RawGguf g;
                     g.header(0, 0, 4);
                     return g.bytes;
                 },
                 "unknown GGUF version 4"});
    c.push_back({"big-endian version",
                 [] {
                     RawGguf g;
                     g.header(0, 0, 0x03000000);
                     return g.bytes;
                 },
                 "big-endian"});
    c.push_back({"kv count lies",
                 [] {
                     RawGguf g;
                     g.header(0, 1ull << 60);
                     return g.bytes;
                 },
                 "key/value pairs cannot fit"});
    c.push_back({"tensor count lies",
                 [] {
                     RawGguf g;
                     g.header(~0ull, 0);
                     return g.bytes;
                 },
                 "tensor infos cannot fit"});
    c.push_back({"truncated in a value type",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("abcdefgh").put<uint8_t>(0);
                     return g.bytes;
                 },
                 "byte 40: value of 'abcdefgh' type: file truncated"});
    c.push_back({"key length lies",
                 [] {
                     RawGguf g;
                     g.header(0, 1).put<uint64_t>(1ull << 62).zeros(8);
                     return g.bytes;
                 },
                 "string length 4611686018427387904 exceeds"});
    c.push_back({"empty key",
                 [] {
                     RawGguf g;
                     g.header(0, 1).kv_u32("", 1);
                     return g.bytes;
                 },
                 "empty key"});
    c.push_back({"duplicate key",
                 [] {
                     RawGguf g;
                     g.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
                     return g.bytes;
                 },
                 "duplicate key 'k'"});
    c.push_back({"invalid value type",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("k").put<int32_t>(13).put<uint32_t>(0);
                     return g.bytes;
                 },
                 "invalid value type 13"});
    c.push_back({"negative value type",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("k").put<int32_t>(-1).put<uint32_t>(0);
                     return g.bytes;
                 },
                 "invalid value type -1"});
    c.push_back({"truncated in a value",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("k").put<int32_t>(10).put<uint32_t>(0);
                     return g.bytes;
                 },
                 "value of 'k': file truncated"});
    c.push_back({"string value length lies",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("k").put<int32_t>(8).put<uint64_t>(1000).zeros(8);
                     return g.bytes;
                 },
                 "string length 1000 exceeds"});
    c.push_back({"bool value 2",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("k").put<int32_t>(7).put<uint8_t>(2);
                     return g.bytes;
                 },
                 "bool value is 2"});
    c.push_back({"array of arrays",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("k").put<int32_t>(9).put<int32_t>(9).put<uint64_t>(1).zeros(
                         16);
                     return g.bytes;
                 },
                 "arrays of arrays"});
    c.push_back(
        {"array element type invalid",
         [] {
             RawGguf g;
             g.header(0, 1).str("k").put<int32_t>(9).put<int32_t>(77).put<uint64_t>(1).zeros(16);
             return g.bytes;
         },
         "invalid array element type 77"});
    c.push_back({"array count lies",
                 [] {
                     RawGguf g;
                     g.header(0, 1)
                         .str("k")
                         .put<int32_t>(9)
                         .put<int32_t>(6)
                         .put<uint64_t>(1ull << 61)
                         .zeros(64);
                     return g.bytes;
                 },
                 "count 2305843009213693952 needs at least"});
    c.push_back(
        {"string array count lies",
         [] {
             RawGguf g;
             g.header(0, 1).str("k").put<int32_t>(9).put<int32_t>(8).put<uint64_t>(~0ull).zeros(64);
             return g.bytes;
         },
         "needs at least more bytes"});
    c.push_back({"string array element truncated",
                 [] {
                     RawGguf g;
                     g.header(0, 1)
                         .str("k")
                         .put<int32_t>(9)
                         .put<int32_t>(8)
                         .put<uint64_t>(2)
                         .str("ok")
                         .put<uint64_t>(50)
                         .zeros(10);
                     return g.bytes;
                 },
                 "value of 'k'[1]"});
    c.push_back({"alignment not u32",
                 [] {
                     RawGguf g;
                     g.header(0, 1).str("general.alignment").put<int32_t>(10).put<uint64_t>(32);
                     return g.bytes;
                 },
                 "general.alignment: has type u64, expected u32"});
    c.push_back({"alignment not a power of two",
                 [] {
                     RawGguf g;
                     g.header(0, 1).kv_u32("general.alignment", 48);
                     return g.bytes;
                 },
                 "48 is not a power of two"});
    c.push_back({"alignment zero",
                 [] {
                     RawGguf g;
                     g.header(0, 1).kv_u32("general.alignment", 0);
                     return g.bytes;
                 },
                 "0 is not a power of two"});
    c.push_back({"truncated in tensor infos", truncated(valid_prefix().bytes.size() + 10),
                 "tensor 'a' n_dims: file truncated"});
    c.push_back({"empty tensor name",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("", {8}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "empty tensor name"});
    c.push_back({"tensor name of 64 bytes",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor(std::string(64, 'n'), {8}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "is 64 bytes (at most 63)"});
    c.push_back({"duplicate tensor name",
                 [] {
                     RawGguf g = valid_prefix();
                     g.tensor("a", {8}, 0, 0).tensor("a", {4}, 0, 32).pad().zeros(64);
                     return g.bytes;
                 },
                 "duplicate tensor name 'a'"});
    c.push_back({"zero dimensions",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "n_dims: 0 is outside 1..4"});
    c.push_back({"five dimensions",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {1, 1, 1, 1, 1}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "n_dims: 5 is outside 1..4"});
    c.push_back({"negative dimension",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {8, -2}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "ne[1]: -2 is negative"});
    c.push_back({"overflowing dimensions",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {1ll << 40, 1ll << 40}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "element count overflows"});
    c.push_back({"huge tensor beyond the file",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {1ll << 30, 1ll << 20}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "lie outside the file"});
    c.push_back({"byte count overflows",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {1ll << 31, 1ll << 31}, 0, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "byte size overflows 64 bits"});
    c.push_back({"unknown type id",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {8}, 99, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "unknown ggml type id 99"});
    c.push_back({"removed type id 31",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {32}, 31, 0).pad().zeros(32);
                     return g.bytes;
                 },
                 "Q4_0_4_4, removed from ggml"});
    c.push_back({"I2_S id in a llama file",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {128}, 36, 0).pad().zeros(64);
                     return g.bytes;
                 },
                 "ggml type id 36 is IQ4_NL_4_4 (removed from ggml) or Microsoft's I2_S"});
    c.push_back({"TL2 id in a bitnet-b1.58 file",
                 [] {
                     RawGguf g;
                     g.header(1, 1)
                         .kv_str("general.architecture", "bitnet-b1.58")
                         .tensor("a", {128}, 39, 0)
                         .pad()
                         .zeros(64);
                     return g.bytes;
                 },
                 "not supported:"});
    c.push_back({"row not a multiple of the block",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {100}, 35, 0).pad().zeros(128);
                     return g.bytes;
                 },
                 "row length 100 is not a multiple of TQ2_0's block size 256"});
    c.push_back({"misaligned offset",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {8}, 0, 4).pad().zeros(64);
                     return g.bytes;
                 },
                 "4 is not a multiple of the alignment 32"});
    c.push_back({"tensor outside the file",
                 [] {
                     RawGguf g = valid_prefix(1);
                     g.tensor("a", {8}, 0, 1024).pad().zeros(32);
                     return g.bytes;
                 },
                 "lie outside the file"});
    c.push_back({"truncated in tensor data", truncated(good.size() - 1), "tensor 'b' data"});
    c.push_back({"truncated before the data section", truncated(good.size() - 48 - 1),
                 "data section would start"});
    c.push_back({"overlapping tensors",
                 [] {
                     RawGguf g = valid_prefix();
                     g.tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad().zeros(96);
                     return g.bytes;
                 },
                 "overlaps tensor 'a'"});
    return c;
}

TEST(GgufMalformed, ValidBaseFileParses) {
    const std::string good = valid_file();
    const auto f =
        GgufFile::parse({reinterpret_cast<const uint8_t*>(good.data()), good.size()}, "good.gguf");
    EXPECT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.metadata().get<uint32_t>("x.count"), 7u);
}

TEST(GgufMalformed, EachIsRejectedWithItsMessage) {
    size_t n = 0;
    for (const MalformedCase& c : cases()) {
        SCOPED_TRACE(c.name);
        const std::string bytes = c.build();
        try {
            GgufFile::parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                            "bad.gguf");
            ADD_FAILURE() << "accepted: " << c.name;
        } catch (const Error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find(c.expected), std::string::npos) << "message: " << msg;
            EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << "message: " << msg;
            if (msg.rfind("not supported:", 0) != 0) {
                EXPECT_EQ(msg.rfind("bad.gguf: byte ", 0), 0u) << "message: " << msg;
            }
        }
        ++n;
    }
    std::printf("[ malformed ] %zu malformed files rejected\n", n);
    EXPECT_GE(n, 25u);
}

TEST(GgufMalformed, CliPrintsOneErrorLineAndExitsOne) {
    TempDir tmp;
    size_t n = 0;
    for (const MalformedCase& c : cases()) {
        SCOPED_TRACE(c.name);
        const auto path = tmp / "bad.gguf";
        write_file(path, c.build());
        for (const bool json : {false, true}) {
            std::vector<std::string> args = {"inspect", path.string()};
            if (json) args.push_back("--json");
            const RunResult r = run_cli(args);
            EXPECT_EQ(r.signal, 0);
            EXPECT_EQ(r.exit_code, 1);
            EXPECT_TRUE(r.out.empty()) << r.out;
            EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
            EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
        }
        ++n;
    }
    EXPECT_GE(n, 25u);
}

TEST(GgufMalformed, MissingFileAndDirectory) {
    TempDir tmp;
    RunResult r = run_cli({"inspect", (tmp / "nope.gguf").string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
    r = run_cli({"inspect", tmp.path().string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bitnet::test
