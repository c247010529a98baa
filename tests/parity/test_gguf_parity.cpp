// Our GGUF reader against ggml's own (gguf_* in libggml-base.so): on every vocabulary file
// of the reference bundle and on files our writer produced, both must see the same keys,
// value types, values, tensor names, types, offsets and sizes.
#include <gtest/gtest.h>

#include <cstring>

#include "bitnet/gguf.h"
#include "bitnet/synth.h"
#include "parity/ggml_ref.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

// Raw bytes of a scalar as ggml stores it.
std::string scalar_bytes(const GgufValue& v) {
    return std::visit(
        [](const auto& x) -> std::string {
            using V = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, GgufArray>) {
                return {};
            } else if constexpr (std::is_same_v<V, bool>) {
                return std::string(1, x ? '\1' : '\0');
            } else {
                return std::string(reinterpret_cast<const char*>(&x), sizeof(V));
            }
        },
        v.data);
}

std::string array_bytes(const GgufArray& a) {
    return std::visit(
        [](const auto& v) -> std::string {
            using E = typename std::decay_t<decltype(v)>::value_type;
            if constexpr (std::is_same_v<E, std::string>) {
                return {};
            } else {
                return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(E));
            }
        },
        a.data);
}

// Compares one file; adds the number of keys + tensors compared to `items`.
void compare_with_ggml(const std::filesystem::path& path, size_t& items) {
    const GgmlRef& g = GgmlRef::get();
    const GgufFile ours = GgufFile::open(path.string());
    void* ctx = g.gguf_init_from_file(path.c_str(), GgufInitParams{true, nullptr});
    if (ctx == nullptr) {
        ADD_FAILURE() << "ggml refused " << path;
        return;
    }
    EXPECT_EQ(g.gguf_get_version(ctx), ours.version()) << path;
    EXPECT_EQ(g.gguf_get_alignment(ctx), ours.alignment()) << path;
    EXPECT_EQ(g.gguf_get_data_offset(ctx), ours.data_offset()) << path;

    const auto& entries = ours.metadata().entries();
    EXPECT_EQ(static_cast<size_t>(g.gguf_get_n_kv(ctx)), entries.size()) << path;
    for (size_t i = 0; i < entries.size() && i < static_cast<size_t>(g.gguf_get_n_kv(ctx)); ++i) {
        const auto id = static_cast<int64_t>(i);
        const auto& [key, value] = entries[i];
        SCOPED_TRACE(path.filename().string() + " key " + key);
        ASSERT_EQ(std::string(g.gguf_get_key(ctx, id)), key);
        ASSERT_EQ(g.gguf_get_kv_type(ctx, id), static_cast<int>(value.type()));
        if (const auto* a = std::get_if<GgufArray>(&value.data)) {
            ASSERT_EQ(g.gguf_get_arr_type(ctx, id), static_cast<int>(a->elem_type));
            ASSERT_EQ(g.gguf_get_arr_n(ctx, id), a->size());
            if (a->elem_type == GgufType::String) {
                const auto& strs = std::get<std::vector<std::string>>(a->data);
                for (size_t j = 0; j < strs.size(); ++j) {
                    ASSERT_EQ(std::string(g.gguf_get_arr_str(ctx, id, j)), strs[j])
                        << "element " << j;
                }
            } else {
                const std::string bytes = array_bytes(*a);
                if (!bytes.empty()) {  // ggml returns no data pointer for an empty array
                    ASSERT_EQ(std::memcmp(g.gguf_get_arr_data(ctx, id), bytes.data(), bytes.size()),
                              0);
                }
            }
        } else if (value.type() == GgufType::String) {
            ASSERT_EQ(std::string(g.gguf_get_val_str(ctx, id)), std::get<std::string>(value.data));
        } else {
            const std::string bytes = scalar_bytes(value);
            ASSERT_EQ(std::memcmp(g.gguf_get_val_data(ctx, id), bytes.data(), bytes.size()), 0);
        }
    }
    const auto& tensors = ours.tensors();
    EXPECT_EQ(static_cast<size_t>(g.gguf_get_n_tensors(ctx)), tensors.size()) << path;
    for (size_t i = 0; i < tensors.size() && i < static_cast<size_t>(g.gguf_get_n_tensors(ctx));
         ++i) {
        const auto id = static_cast<int64_t>(i);
        SCOPED_TRACE(path.filename().string() + " tensor " + tensors[i].name);
        EXPECT_EQ(std::string(g.gguf_get_tensor_name(ctx, id)), tensors[i].name);
        EXPECT_EQ(g.gguf_get_tensor_type(ctx, id), static_cast<int>(tensors[i].type_id));
        EXPECT_EQ(g.gguf_get_tensor_offset(ctx, id), tensors[i].offset);
        EXPECT_EQ(g.gguf_get_tensor_size(ctx, id), tensors[i].bytes);
    }
    g.gguf_free(ctx);
    items += entries.size() + tensors.size();
}

TEST(GgufParity, EveryVocabFileOfTheBundle) {
    const auto files = vocab_files();
    size_t items = 0;
    for (const auto& f : files) compare_with_ggml(f, items);
    std::printf("[ parity ] %zu vocabulary files, %zu keys and tensors compared with ggml\n",
                files.size(), items);
    EXPECT_GE(files.size(), 15u);
}

TEST(GgufParity, FilesOurWriterProduced) {
    TempDir tmp;
    // Every value type and array element type, unusual alignment, tensors of many types.
    GgufWriter w(64);
    GgufMetadata& m = w.metadata();
    m.set("general.architecture", "llama");
    m.set<uint8_t>("t.u8", 200);
    m.set<int8_t>("t.i8", -100);
    m.set<uint16_t>("t.u16", 60000);
    m.set<int16_t>("t.i16", -30000);
    m.set<uint32_t>("t.u32", 4000000000u);
    m.set<int32_t>("t.i32", -2000000000);
    m.set<float>("t.f32", 3.25f);
    m.set<bool>("t.bool", true);
    m.set("t.string", std::string("h\xc3\xa9llo"));
    m.set<uint64_t>("t.u64", 18000000000000000000ull);
    m.set<int64_t>("t.i64", -9000000000000000000ll);
    m.set<double>("t.f64", -1.0e300);
    m.set("t.arr_u8", GgufArray::of(std::vector<uint8_t>{1, 2, 255}));
    m.set("t.arr_i16", GgufArray::of(std::vector<int16_t>{-1, 2}));
    m.set("t.arr_f32", GgufArray::of(std::vector<float>{0.5f, -0.25f}));
    m.set("t.arr_f64", GgufArray::of(std::vector<double>{1e-300}));
    m.set("t.arr_u64", GgufArray::of(std::vector<uint64_t>{1, 1ull << 63}));
    m.set("t.arr_str", GgufArray::of(std::vector<std::string>{"a", "", "xyz"}));
    m.set("t.arr_empty", GgufArray::of(std::vector<int32_t>{}));
    GgufArray bools;
    bools.elem_type = GgufType::Bool;
    bools.data = std::vector<uint8_t>{1, 0, 1};
    m.set("t.arr_bool", bools);
    std::vector<std::vector<uint8_t>> payloads;
    const std::pair<GgmlType, int64_t> kinds[] = {{GgmlType::F32, 7},     {GgmlType::F16, 33},
                                                  {GgmlType::Q8_0, 64},   {GgmlType::Q4_0, 32},
                                                  {GgmlType::TQ2_0, 256}, {GgmlType::TQ1_0, 512},
                                                  {GgmlType::IQ2_S, 256}, {GgmlType::Q4_K, 256},
                                                  {GgmlType::Q6_K, 256},  {GgmlType::BF16, 5}};
    for (const auto& [type, row] : kinds) {
        const int64_t ne[] = {row, 3};
        payloads.emplace_back(*tensor_bytes(type, row, row * 3), 0x5a);
        w.add_tensor("w." + std::string(type_name(type)), type, ne, payloads.back());
    }
    w.write((tmp / "all.gguf").string());
    size_t items = 0;
    compare_with_ggml(tmp / "all.gguf", items);
    EXPECT_GT(items, 30u);

    SynthOptions o;
    o.n_vocab = 1000;
    write_synthetic_model(o, (tmp / "synth.gguf").string());
    compare_with_ggml(tmp / "synth.gguf", items);
    EXPECT_GT(items, 50u);
}

}  // namespace
}  // namespace bitnet::test
