// Faults users hit with real files and prompts (each TEST is one kind, with several inputs of
// that kind): non-finite numbers, special-token ids out of range, tensors the architecture
// does not use, the I2_S layout, escapes in -p, a BOS already in the prompt, the quantize
// summary, and the assumptions the engine states.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "bitnet/check.h"
#include "bitnet/convert.h"
#include "bitnet/error.h"
#include "bitnet/generate.h"
#include "bitnet/sampling.h"
#include "bitnet/session.h"
#include "bitnet/synth.h"
#include "cli/commands.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

using nlohmann::json;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A small model (Llama-2 SPM vocabulary unless told otherwise).
std::string make_model(const TempDir& tmp, const std::string& name,
                       const std::function<void(SynthOptions&)>& tweak = {}) {
    SynthOptions o;
    o.vocab_from = vocab_path("llama-spm");
    o.n_embd = 64;
    o.n_ff = 128;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_layer = 2;
    o.n_ctx = 128;
    o.weight_type = GgmlType::F16;
    if (tweak) tweak(o);
    const std::string path = (tmp / name).string();
    write_synthetic_model(o, path);
    return path;
}

// Rewrites a GGUF file with edits: metadata changes, tensor bytes changed in place, tensors
// dropped or added.
struct Edit {
    std::function<void(GgufMetadata&)> meta;
    std::function<void(const GgufTensorInfo&, std::vector<uint8_t>&)> tensor;
    std::vector<std::string> drop;
    struct Extra {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        std::vector<uint8_t> bytes;
    };
    std::vector<Extra> add;
};

std::string rewrite(const std::string& in, const std::string& out, const Edit& e) {
    const GgufFile f = GgufFile::open(in);
    GgufWriter w(f.alignment());
    for (const auto& [k, v] : f.metadata().entries()) w.metadata().set(k, v);
    if (e.meta) e.meta(w.metadata());
    std::vector<std::vector<uint8_t>> keep;
    keep.reserve(f.tensors().size() + e.add.size());
    for (const GgufTensorInfo& t : f.tensors()) {
        if (std::find(e.drop.begin(), e.drop.end(), t.name) != e.drop.end()) continue;
        const auto data = f.tensor_data(t);
        keep.emplace_back(data.begin(), data.end());
        if (e.tensor) e.tensor(t, keep.back());
        w.add_tensor(t.name, t.type, std::span<const int64_t>(t.ne.data(), t.n_dims), keep.back());
    }
    for (const Edit::Extra& x : e.add) w.add_tensor(x.name, x.type, x.ne, x.bytes);
    w.write(out);
    return out;
}

void set_f32(std::vector<uint8_t>& bytes, size_t index, float v) {
    std::memcpy(bytes.data() + index * 4, &v, 4);
}
void set_f16(std::vector<uint8_t>& bytes, size_t index, float v) {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(bytes.data() + index * 2, &h, 2);
}

// An edit that stores a special-token id under `key` (u64 when it does not fit u32).
Edit set_id(const std::string& key, uint64_t value) {
    Edit e;
    e.meta = [key, value](GgufMetadata& m) {
        if (value > UINT32_MAX)
            m.set<uint64_t>(key, value);
        else
            m.set<uint32_t>(key, static_cast<uint32_t>(value));
    };
    return e;
}

// Runs `f` and returns the Error's message ("" if nothing was thrown).
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::vector<float> last_logits(const std::string& path, const std::vector<TokenId>& ids,
                               const ModelOptions& mo = {}) {
    SessionOptions so;
    so.threads = 2;
    so.n_ctx = 64;
    Session s(Model::load(path, mo), so);
    s.evaluate(ids);
    const auto l = s.logits();
    return {l.begin(), l.end()};
}

// ---- 1. Non-finite numbers ----------------------------------------------------------------

TEST(Faults, NonFiniteSmallTensorsAreRefusedAtLoad) {
    TempDir tmp;
    const std::string base =
        make_model(tmp, "base.gguf", [](SynthOptions& o) { o.projection_scales = true; });
    struct Case {
        const char* tensor;
        size_t index;
        float value;
    };
    for (const Case& c :
         {Case{"output_norm.weight", 17, kNaN}, Case{"blk.0.attn_norm.weight", 3, kInf},
          Case{"blk.1.ffn_sub_norm.weight", 100, -kInf}, Case{"blk.1.attn_q.scale", 0, kNaN}}) {
        SCOPED_TRACE(c.tensor);
        Edit e;
        e.tensor = [&](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
            if (t.name == c.tensor) set_f32(b, c.index, c.value);
        };
        const std::string path = rewrite(base, (tmp / "bad.gguf").string(), e);
        const std::string msg = error_of([&] { Model::load(path); });
        EXPECT_NE(msg.find(std::string("'") + c.tensor + "'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
        EXPECT_NE(msg.find("index " + std::to_string(c.index)), std::string::npos) << msg;
        const RunResult r = run_cli({"run", "-m", path, "-p", "Hello", "-n", "4"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.out, "");
        EXPECT_NE(r.err.find(c.tensor), std::string::npos) << r.err;
    }
    // The scale of an I2_S tensor (the file's last 32 bytes of it hold it as f32).
    const std::string i2s = make_model(tmp, "i2s.gguf", [](SynthOptions& o) {
        o.architecture = "bitnet-b1.58";
        o.weight_type = GgmlType::I2_S;
        o.ternary = true;
        o.n_embd = 128;
    });
    Edit e;
    e.tensor = [](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
        if (t.name == "blk.0.ffn_up.weight")
            set_f32(b, static_cast<size_t>(t.n_elements() / 16), kNaN);
    };
    const std::string msg =
        error_of([&] { Model::load(rewrite(i2s, (tmp / "i2s_bad.gguf").string(), e)); });
    EXPECT_NE(msg.find("'blk.0.ffn_up.weight' has a non-finite scale"), std::string::npos) << msg;
}

TEST(Faults, NonFiniteLogitsAreAnErrorNamingWhereTheyStarted) {
    TempDir tmp;
    const std::string base = make_model(tmp, "base.gguf");
    const auto model = Model::load(base);
    const std::vector<TokenId> ids = model->tokenizer().encode("Hello world, again", {true, false});
    struct Case {
        const char* tensor;
        size_t index;
        float value;
        const char* first_bad;  // the intermediate the error must name
    };
    // A NaN in ffn_down poisons every token from layer 1 on; an Inf in W_q shows in Q; a NaN in
    // the (tied) embedding row of a token not in the prompt only shows in that token's logit.
    for (const Case& c : {Case{"blk.1.ffn_down.weight", 5, kNaN, "blk.1.ffn_down"},
                          Case{"blk.0.attn_q.weight", 70, kInf, "blk.0.Qcur"},
                          Case{"token_embd.weight", 64 * 500 + 7, kNaN, "result_output"}}) {
        SCOPED_TRACE(c.tensor);
        Edit e;
        e.tensor = [&](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
            if (t.name == c.tensor) set_f16(b, c.index, c.value);
        };
        const std::string path = rewrite(base, (tmp / "bad.gguf").string(), e);
        const std::string msg = error_of([&] { last_logits(path, ids); });
        EXPECT_NE(msg.find("not finite"), std::string::npos) << msg;
        EXPECT_NE(msg.find(c.first_bad), std::string::npos) << msg;
        EXPECT_NE(msg.find("position"), std::string::npos) << msg;
        // score must fail too, never print "nll": null and exit 0.
        const RunResult s =
            run_cli({"score", "-m", path, "--text", "Hello world, again", "--json"});
        EXPECT_EQ(s.exit_code, 1) << s.out;
        EXPECT_EQ(s.out, "");
        EXPECT_NE(s.err.find(c.first_bad), std::string::npos) << s.err;
        const RunResult r = run_cli({"run", "-m", path, "-p", "Hello", "-n", "4", "--temp", "0"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.out, "") << "nothing is generated from NaN";
    }
    // An Inf in one token's embedding row: the error names the position of that token.
    const TokenId bad_token = ids[2];
    Edit e;
    e.tensor = [&](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
        if (t.name == "token_embd.weight")
            set_f16(b, static_cast<size_t>(bad_token) * 64 + 3, kInf);
    };
    const std::string path = rewrite(base, (tmp / "embd.gguf").string(), e);
    const std::string msg = error_of([&] { last_logits(path, ids); });
    EXPECT_NE(msg.find("inp_embd (at position 2"), std::string::npos) << msg;
}

TEST(Faults, SamplerNeverChoosesFromNaN) {
    for (float temp : {0.0f, 0.8f}) {
        SamplingOptions o;
        o.temperature = temp;
        Sampler s(o);
        EXPECT_THROW(s.sample(std::vector<float>{1.0f, kNaN, 0.5f}), Error);
        EXPECT_THROW(s.sample(std::vector<float>{kNaN, kNaN}), Error);
        EXPECT_THROW(s.sample(std::vector<float>{0.0f, kInf}), Error);
        EXPECT_THROW(s.sample(std::vector<float>{-kInf, -kInf}), Error);
        // -inf is a ban (a user's logit bias), not an error.
        for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(std::vector<float>{-kInf, 2.0f, -kInf}), 1);
    }
}

TEST(Faults, InspectCheckReportsEachKindOfBadTensor) {
    TempDir tmp;
    const std::string base = make_model(tmp, "base.gguf", [](SynthOptions& o) {
        o.n_embd = 256;
        o.n_ff = 512;
        o.weight_type = GgmlType::TQ2_0;
    });
    const RunResult clean = run_cli({"inspect", "--check", base});
    EXPECT_EQ(clean.exit_code, 0) << clean.err;
    EXPECT_NE(clean.out.find("0 with problems"), std::string::npos) << clean.out;

    // TQ2_0 block scale (fp16 at byte 64 of each 66-byte block): zero, negative, subnormal, huge.
    auto tq2_scale = [](size_t block, uint16_t half) {
        return [=](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
            if (t.name != "blk.0.attn_k.weight") return;
            std::memcpy(b.data() + block * sizeof(BlockTQ2_0) + offsetof(BlockTQ2_0, d), &half, 2);
        };
    };
    struct Case {
        const char* what;
        std::function<void(const GgufTensorInfo&, std::vector<uint8_t>&)> edit;
        const char* tensor;
        const char* field;
    };
    const std::vector<Case> cases = {
        {"zero scale", tq2_scale(3, 0x0000), "blk.0.attn_k.weight", "zero_scales"},
        {"negative scale", tq2_scale(1, fp32_to_fp16(-0.5f)), "blk.0.attn_k.weight",
         "negative_scales"},
        {"subnormal scale", tq2_scale(2, 0x0003), "blk.0.attn_k.weight", "subnormal_scales"},
        {"huge scale", tq2_scale(0, fp32_to_fp16(30000.0f)), "blk.0.attn_k.weight", "huge_scales"},
        {"NaN value",
         [](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
             if (t.name == "token_embd.weight") set_f16(b, 1000, kNaN);
         },
         "token_embd.weight", "nan"},
        {"all zero",
         [](const GgufTensorInfo& t, std::vector<uint8_t>& b) {
             if (t.name == "blk.1.ffn_norm.weight") std::fill(b.begin(), b.end(), 0);
         },
         "blk.1.ffn_norm.weight", "all_zero"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        Edit e;
        e.tensor = c.edit;
        const std::string path = rewrite(base, (tmp / "bad.gguf").string(), e);
        const RunResult r = run_cli({"inspect", "--check", "--json", path});
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_NE(r.err.find("1 tensor with problems"), std::string::npos) << r.err;
        const json j = json::parse(r.out);
        EXPECT_EQ(j.at("bad"), 1);
        for (const json& t : j.at("tensors")) {
            const bool target = t.at("name") == c.tensor;
            EXPECT_EQ(t.at("ok").get<bool>(), !target) << t.dump();
            if (target) {
                const json& v = t.at(c.field);
                EXPECT_TRUE(v.is_boolean() ? v.get<bool>() : v.get<int>() > 0) << t.dump();
            }
        }
        const RunResult text = run_cli({"inspect", "--check", path});
        EXPECT_NE(text.out.find(c.tensor), std::string::npos) << text.out;
    }
    // Formats whose quantizer writes negative scales (Q4_0, Q6_K) are not flagged for them.
    TensorCheck q4;
    std::vector<float> values(256);
    for (size_t i = 0; i < values.size(); ++i) values[i] = -1.0f + 0.001f * static_cast<float>(i);
    std::vector<uint8_t> bytes(*tensor_bytes(GgmlType::Q4_0, 256, 256));
    quantize_tensor(GgmlType::Q4_0, values.data(), 1, 256, bytes);
    q4 = check_tensor(GgmlType::Q4_0, bytes, 256, 256);
    EXPECT_TRUE(q4.ok()) << q4.negative_scales;
    EXPECT_EQ(q4.scales, 8u);
}

// ---- 2. Special-token ids out of range ----------------------------------------------------

TEST(Faults, OutOfRangeSpecialIdsAreIgnoredWithAWarning) {
    TempDir tmp;
    // Llama-3's vocabulary (gpt2 model type, where llama.cpp would substitute id 11, ",").
    const std::string base = make_model(
        tmp, "bpe.gguf", [](SynthOptions& o) { o.vocab_from = vocab_path("llama-bpe"); });
    const uint64_t n = Model::load(base)->tokenizer().size();
    struct Case {
        const char* key;
        uint64_t value;
    };
    for (const Case& c : {Case{"tokenizer.ggml.eos_token_id", n},
                          Case{"tokenizer.ggml.bos_token_id", 4294967295ull},
                          Case{"tokenizer.ggml.eot_token_id", n + 1}}) {
        SCOPED_TRACE(c.key);
        const Edit e = set_id(c.key, c.value);
        const std::string path = rewrite(base, (tmp / "bad.gguf").string(), e);
        const auto model = Model::load(path);
        const Tokenizer& tok = model->tokenizer();
        ASSERT_EQ(model->warnings().size(), 1u);
        EXPECT_EQ(model->warnings()[0], std::string(c.key) + " = " + std::to_string(c.value) +
                                            " is outside the vocabulary (" + std::to_string(n) +
                                            " tokens): ignored");
        EXPECT_FALSE(tok.is_end_of_generation(11)) << "',' never becomes a stop token";
        EXPECT_TRUE(tok.is_end_of_generation(128009)) << "<|eot_id|> still ends a turn";
        const std::vector<TokenId> ids = tok.encode("Hi, there", {true, false});
        ASSERT_FALSE(ids.empty());
        EXPECT_NE(ids.front(), 11) << "no ordinary token substituted for BOS";
        if (std::string(c.key) == "tokenizer.ggml.bos_token_id") {
            EXPECT_EQ(tok.special().bos, kNoToken);
            EXPECT_EQ(ids, tok.encode("Hi, there", {false, false})) << "no BOS from a bad id";
        }
        if (std::string(c.key) == "tokenizer.ggml.eos_token_id") {
            EXPECT_EQ(tok.special().eos, kNoToken);
        }
        if (std::string(c.key) != "tokenizer.ggml.eos_token_id") continue;
        const RunResult r =
            run_cli({"tokenize", "-m", path, "--text", "Hi, there", "--add-special"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find(std::string("warning: ") + c.key), std::string::npos) << r.err;
    }
    // SPM vocabulary: an EOS id past the end leaves </s> out of the stop set; padding, unknown
    // and separator ids are ignored the same way.
    const std::string spm = make_model(tmp, "spm.gguf");
    for (const Case& c : {Case{"tokenizer.ggml.padding_token_id", 32005},
                          Case{"tokenizer.ggml.unknown_token_id", 1ull << 40},
                          Case{"tokenizer.ggml.seperator_token_id", 32000},
                          Case{"tokenizer.ggml.eos_token_id", 32000}}) {
        SCOPED_TRACE(c.key);
        const Edit e = set_id(c.key, c.value);
        const auto model = Model::load(rewrite(spm, (tmp / "spm_bad.gguf").string(), e));
        const SpecialTokens& sp = model->tokenizer().special();
        ASSERT_EQ(model->warnings().size(), 1u);
        EXPECT_NE(model->warnings()[0].find(c.key), std::string::npos);
        const std::string key = c.key;
        EXPECT_EQ(key == "tokenizer.ggml.padding_token_id"     ? sp.pad
                  : key == "tokenizer.ggml.unknown_token_id"   ? sp.unk
                  : key == "tokenizer.ggml.seperator_token_id" ? sp.sep
                                                               : sp.eos,
                  kNoToken);
    }
    const RunResult r = run_cli(
        {"run", "-m", (tmp / "spm_bad.gguf").string(), "-p", "Hi", "-n", "2", "--temp", "0"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: tokenizer.ggml.eos_token_id = 32000 is outside"),
              std::string::npos)
        << r.err;
}

// A negative id (stored as a signed integer) is ignored the same way, not a load failure.
TEST(Faults, NegativeSpecialIdsAreIgnoredWithAWarning) {
    TempDir tmp;
    const std::string spm = make_model(tmp, "spm.gguf");
    Edit e;
    e.meta = [](GgufMetadata& m) { m.set<int32_t>("tokenizer.ggml.unknown_token_id", -1); };
    const auto model = Model::load(rewrite(spm, (tmp / "neg.gguf").string(), e));
    EXPECT_EQ(model->tokenizer().special().unk, kNoToken);
    ASSERT_EQ(model->warnings().size(), 1u);
    EXPECT_NE(model->warnings()[0].find("tokenizer.ggml.unknown_token_id"), std::string::npos);
}

// ---- 3. Tensors the architecture does not use ---------------------------------------------

TEST(Faults, EveryTensorMustBeUsed) {
    TempDir tmp;
    const std::string base = make_model(tmp, "base.gguf");
    std::vector<uint8_t> vec64(64 * 4, 0);
    struct Case {
        const char* what;
        Edit edit;
        const char* expect;
    };
    std::vector<Case> cases;
    {
        Edit e;
        e.meta = [](GgufMetadata& m) { m.set<uint32_t>("bitnet.block_count", 1); };
        cases.push_back({"block_count 1 with two blocks", e,
                         "bitnet.block_count is 1 but the file has tensors for blocks up to 1"});
    }
    {
        Edit e;
        e.add.push_back({"blk.0.mystery.weight", GgmlType::F32, {64}, vec64});
        cases.push_back({"an unknown tensor", e,
                         "1 tensor is not used by the bitnet "
                         "architecture: blk.0.mystery.weight"});
    }
    {
        Edit e;
        e.add.push_back({"rope_freqs.weight", GgmlType::F32, {8}, std::vector<uint8_t>(32, 0)});
        cases.push_back({"rope_freqs", e, "not supported: "});
    }
    {
        Edit e;
        e.add.push_back({"blk.1.attn_q.bias", GgmlType::F32, {64}, vec64});
        cases.push_back({"a bias", e, "not supported: "});
    }
    for (Case& c : cases) {
        SCOPED_TRACE(c.what);
        const std::string path = rewrite(base, (tmp / "bad.gguf").string(), c.edit);
        const std::string msg = error_of([&] { Model::load(path); });
        EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
        const RunResult r = run_cli({"run", "-m", path, "-p", "Hello", "-n", "2"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    }
    // Known optional tensors still load: an output.weight beside the embedding, .scale tensors.
    EXPECT_NO_THROW(Model::load(
        make_model(tmp, "scales.gguf", [](SynthOptions& o) { o.projection_scales = true; })));
}

// ---- 4. I2_S layouts --------------------------------------------------------------------

TEST(Faults, I2sLayoutIsRecordedAndHonoured) {
    TempDir tmp;
    const std::string f16 = make_model(tmp, "f16.gguf", [](SynthOptions& o) {
        o.architecture = "bitnet-b1.58";
        o.ternary = true;
        o.n_embd = 128;
        o.n_ff = 256;
        o.vocab_from = vocab_path("llama-spm");
    });
    auto quantize = [&](const std::string& in, const std::string& name, I2sLayout layout) {
        ConvertOptions o;
        o.type = GgmlType::I2_S;
        o.i2s_layout = layout;
        const std::string out = (tmp / name).string();
        const ConvertReport r = convert_model(in, out, o);
        if (GgufFile::open(in).find_tensor("blk.0.attn_q.weight")->type == GgmlType::I2_S) {
            EXPECT_GT(r.converted, 0u) << name << ": a layout change is a conversion";
        }
        return out;
    };
    const std::string x86 = quantize(f16, "x86.gguf", I2sLayout::X86);
    const std::string arm = quantize(f16, "arm.gguf", I2sLayout::Arm);
    const std::string arm_to_x86 = quantize(arm, "arm_x86.gguf", I2sLayout::X86);
    const std::string x86_to_arm = quantize(x86, "x86_arm.gguf", I2sLayout::Arm);
    EXPECT_EQ(GgufFile::open(arm).metadata().get<std::string>(kI2sLayoutKey), "arm");
    EXPECT_EQ(GgufFile::open(arm_to_x86).metadata().get<std::string>(kI2sLayoutKey), "x86");

    const auto model = Model::load(x86);
    const std::vector<TokenId> ids =
        model->tokenizer().encode("The layout must not change a thing", {true, false});
    const std::vector<float> want = last_logits(x86, ids);
    for (const std::string& p : {arm, arm_to_x86, x86_to_arm}) {
        SCOPED_TRACE(p);
        EXPECT_EQ(last_logits(p, ids), want) << "identical logits through every writer and reader";
    }
    // Back to F16 from either layout: the same bytes, and the original weights.
    ConvertOptions back;
    back.type = GgmlType::F16;
    convert_model(arm, (tmp / "arm_f16.gguf").string(), back);
    convert_model(x86, (tmp / "x86_f16.gguf").string(), back);
    EXPECT_EQ(read_file(tmp / "arm_f16.gguf"), read_file(tmp / "x86_f16.gguf"));
    const GgufFile orig = GgufFile::open(f16);
    const GgufFile round = GgufFile::open((tmp / "arm_f16.gguf").string());
    for (const GgufTensorInfo& t : orig.tensors()) {
        const auto a = orig.tensor_data(t);
        const auto b = round.tensor_data(round.tensor(t.name));
        EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << t.name;
    }
    // The override still wins: reading the ARM file as x86 computes something else.
    ModelOptions forced;
    forced.i2s_layout = I2sLayout::X86;
    EXPECT_NE(last_logits(arm, ids, forced), want);
    // The CLI: the layout is shown, and the run is the same.
    const RunResult info = run_cli({"inspect", arm});
    EXPECT_NE(info.out.find("I2_S layout recorded in the file: arm"), std::string::npos);
    const RunResult q = run_cli({"quantize", arm, (tmp / "cli_x86.gguf").string(), "--type", "i2_s",
                                 "--i2s-layout", "x86"});
    EXPECT_EQ(q.exit_code, 0) << q.err;
    EXPECT_NE(q.err.find("converted 14 of 24 tensors: 14 to I2_S (repacked)"), std::string::npos)
        << q.err;
    auto greedy = [](const std::string& p) {
        return run_cli({"run", "-m", p, "-p", "Once upon", "-n", "6", "--temp", "0", "--json"});
    };
    EXPECT_EQ(json::parse(greedy(arm).out).at("ids"), json::parse(greedy(x86).out).at("ids"));
}

// ---- 5. Escapes in -p and --stop ----------------------------------------------------------

TEST(Faults, EscapesInPromptsAreProcessedUnlessTurnedOff) {
    struct Case {
        const char* arg;
        const char* means;
    };
    for (const Case& c :
         {Case{R"(Where is Mary?\nAnswer:)", "Where is Mary?\nAnswer:"},
          Case{R"(a\tb\rc)", "a\tb\rc"}, Case{R"(say \"hi\" \'x\')", "say \"hi\" 'x'"},
          Case{R"(back\\slash)", "back\\slash"}, Case{R"(\x41\x62c\x0a)", "Abc\n"},
          Case{R"(\q stays, \x4 too, \xZZ)", "\\q stays, \\x4 too, \\xZZ"},
          Case{R"(trailing\)", "trailing\\"}, Case{"", ""}}) {
        EXPECT_EQ(cli::process_escapes(c.arg), c.means) << c.arg;
    }
    // End to end: -p is processed, --no-escape and -f are not.
    TempDir tmp;
    const std::string path = make_model(tmp, "m.gguf");
    const auto model = Model::load(path);
    const Tokenizer& tok = model->tokenizer();
    auto prompt_ids = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"run", "-m", path, "-n", "1", "--temp", "0", "--json"};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult r = run_cli(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return json::parse(r.out).at("prompt_ids").get<std::vector<TokenId>>();
    };
    auto expect = [&](const std::string& text) { return tok.encode(text, {true, true}); };
    const std::string p = R"(Where is Mary?\nAnswer:)";
    EXPECT_EQ(prompt_ids({"-p", p}), expect("Where is Mary?\nAnswer:"));
    EXPECT_EQ(prompt_ids({"-p", p, "--no-escape"}), expect(p));
    write_file(tmp / "prompt.txt", p);
    EXPECT_EQ(prompt_ids({"-f", (tmp / "prompt.txt").string()}), expect(p));
    const RunResult help = run_cli({"run", "--help"});
    EXPECT_NE(help.out.find("verbatim"), std::string::npos);
}

// ---- 6. A BOS already in the prompt -------------------------------------------------------

TEST(Faults, NoDoubleBos) {
    TempDir tmp;
    for (const char* v : {"llama-bpe", "llama-spm"}) {
        SCOPED_TRACE(v);
        const std::string path = make_model(tmp, std::string(v) + ".gguf",
                                            [&](SynthOptions& o) { o.vocab_from = vocab_path(v); });
        const auto model = Model::load(path);
        const Tokenizer& tok = model->tokenizer();
        const TokenId bos = tok.special().bos;
        const std::string bos_text = tok.token_text(bos);
        for (const std::string& text :
             {bos_text + "Hello", bos_text + " Hello" + bos_text, bos_text}) {
            const std::vector<TokenId> ids = tok.encode(text, {true, true});
            ASSERT_FALSE(ids.empty());
            EXPECT_EQ(ids[0], bos);
            EXPECT_TRUE(ids.size() == 1 || ids[1] != bos) << text;
            EXPECT_EQ(ids, tok.encode(text, {false, true})) << "the text's own BOS is the one";
        }
        // As plain text (special tokens not parsed) the BOS is added as usual.
        const std::vector<TokenId> plain = tok.encode(bos_text + "Hi", {true, false});
        EXPECT_EQ(plain[0], bos);
        EXPECT_NE(plain[1], bos);
        // Through the CLI: run (-v says so), tokenize --add-special --parse-special.
        const RunResult r = run_cli({"run", "-m", path, "-p", bos_text + "Hello", "-n", "1",
                                     "--json", "--temp", "0", "-v"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const auto ids = json::parse(r.out).at("prompt_ids").get<std::vector<TokenId>>();
        EXPECT_EQ(ids[0], bos);
        EXPECT_NE(ids[1], bos);
        EXPECT_NE(r.err.find("not adding a second one"), std::string::npos) << r.err;
        const RunResult quiet = run_cli({"run", "-m", path, "-p", bos_text + "Hello", "-n", "1"});
        EXPECT_EQ(quiet.err.find("not adding a second one"), std::string::npos);
        const RunResult t = run_cli({"tokenize", "-m", path, "--text", bos_text + "Hello",
                                     "--add-special", "--parse-special", "--json"});
        EXPECT_EQ(json::parse(t.out).at("ids").get<std::vector<TokenId>>(), ids);
    }
}

// ---- 7. The quantize summary counts per resulting type -------------------------------------

TEST(Faults, QuantizeSummaryCountsPerResultingType) {
    TempDir tmp;
    // Rows of 320 fit no TQ2_0 block: every matrix falls back to Q8_0.
    const std::string narrow = make_model(tmp, "narrow.gguf", [](SynthOptions& o) {
        o.n_embd = 320;
        o.n_ff = 640;
        o.n_head = 5;
        o.n_head_kv = 5;
    });
    RunResult r = run_cli(
        {"quantize", narrow, (tmp / "q.gguf").string(), "--type", "tq2_0", "--fallback", "q8_0"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("converted 14 of 24 tensors: 14 to Q8_0 (fallback) in"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("to TQ2_0"), std::string::npos) << r.err;
    // Mixed: rows of 256 fit, rows of 640 (ffn_down) do not.
    const std::string mixed = make_model(tmp, "mixed.gguf", [](SynthOptions& o) {
        o.n_embd = 256;
        o.n_ff = 640;
    });
    r = run_cli(
        {"quantize", mixed, (tmp / "m.gguf").string(), "--type", "tq2_0", "--fallback", "q8_0"});
    EXPECT_NE(r.err.find("converted 14 of 24 tensors: 2 to Q8_0 (fallback), 12 to TQ2_0 in"),
              std::string::npos)
        << r.err;
}

// ---- 8. Assumptions are stated ------------------------------------------------------------

TEST(Faults, AssumptionsAreListed) {
    TempDir tmp;
    SynthOptions o = replica_2b4t_defaults();
    o.vocab_from = vocab_path("llama-bpe");
    o.n_embd = 128;
    o.n_ff = 256;
    o.n_layer = 1;
    o.n_head = 4;
    o.n_head_kv = 2;
    const std::string path = (tmp / "replica.gguf").string();
    write_synthetic_model(o, path);
    const auto model = Model::load(path);
    std::string all;
    for (const std::string& a : model->assumptions()) all += a + "\n";
    EXPECT_NE(all.find("I2_S layout not recorded in the file: assuming x86"), std::string::npos)
        << all;
    EXPECT_NE(all.find("tokenizer.ggml.pre is missing but the vocabulary is Llama-3's"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("<|eot_id|> (128009)"), std::string::npos) << all;
    const RunResult info = run_cli({"inspect", path});
    EXPECT_NE(info.out.find("assumptions:\n  I2_S layout not recorded"), std::string::npos)
        << info.out;
    const RunResult j = run_cli({"inspect", "--json", path});
    EXPECT_EQ(json::parse(j.out).at("assumptions").size(), model->assumptions().size());
    const RunResult v = run_cli({"run", "-m", path, "-p", "Hi", "-n", "1", "-v"});
    EXPECT_NE(v.err.find("assumption: I2_S layout not recorded"), std::string::npos) << v.err;
    const RunResult quiet = run_cli({"run", "-m", path, "-p", "Hi", "-n", "1"});
    EXPECT_EQ(quiet.err.find("assumption:"), std::string::npos) << quiet.err;
}

}  // namespace
}  // namespace bitnet::test
