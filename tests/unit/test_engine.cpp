// Engine behaviour that needs no reference: KV cache consistency, context limits, sampling,
// generation stops, tensor dumps, the run/score CLI.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "bitnet/generate.h"
#include "bitnet/multi_session.h"
#include "bitnet/quant.h"
#include "bitnet/sampling.h"
#include "bitnet/session.h"
#include "bitnet/synth.h"
#include "core/page_buffer.h"
#include "kernels/matmul.h"
#include "model/forward.h"
#include "model/model_impl.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

std::string small_model(const TempDir& tmp, GgmlType type = GgmlType::TQ2_0,
                        const char* arch = "bitnet") {
    SynthOptions o;
    o.architecture = arch;
    o.vocab_from = (llama_cpp_dir() / "models/ggml-vocab-llama-spm.gguf").string();
    o.n_embd = 256;
    o.n_ff = 512;
    o.n_layer = 2;
    o.weight_type = type;
    o.n_ctx = 256;
    const std::string path =
        (tmp / (std::string(arch) + std::string(type_name(type)) + ".gguf")).string();
    if (!std::filesystem::exists(path)) write_synthetic_model(o, path);
    return path;
}

TEST(Engine, TokenByTokenDecodingEqualsOneBatch) {
    TempDir tmp;
    for (GgmlType type : {GgmlType::TQ2_0, GgmlType::F16, GgmlType::IQ2_S}) {
        SCOPED_TRACE(std::string(type_name(type)));
        const auto model = Model::load(small_model(tmp, type));
        const std::vector<TokenId> ids =
            model->tokenizer().encode("The quick brown fox jumps over the lazy dog", {true, false});
        SessionOptions so;
        so.threads = 2;
        so.n_ctx = 64;
        Session batch(model, so), steps(model, so), chunks(model, so);
        batch.evaluate(ids, true);
        SessionOptions small = so;
        small.n_batch = 3;  // prompt processing in pieces
        Session pieces(model, small);
        pieces.evaluate(ids, true);
        float max_diff = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            steps.evaluate(std::span<const TokenId>(&ids[i], 1));
            const auto a = batch.logits(static_cast<int64_t>(i));
            const auto b = steps.logits();
            const auto c = pieces.logits(static_cast<int64_t>(i));
            for (size_t v = 0; v < a.size(); ++v) {
                max_diff = std::max(max_diff, std::fabs(a[v] - b[v]));
                max_diff = std::max(max_diff, std::fabs(a[v] - c[v]));
            }
        }
        EXPECT_EQ(max_diff, 0.0f)
            << "the batch, token-by-token and chunked passes compute the same thing";
        EXPECT_EQ(steps.n_past(), static_cast<int64_t>(ids.size()));
    }
}

// Past kKeyChunk (256) keys attention is computed in chunks merged by an online softmax, the
// chunks being the parallel jobs: a 600-token text gives the same logits in one batch on one
// or two threads, in pieces of 100, and token by token across the 512-key boundary, with
// grouped heads (4 per KV head: the four-head kernels) and 2 per KV head, and with fp16, float32
// and q8_0 caches (q8_0 keys with fp16 values too).
TEST(Engine, LongContextAttentionIsIndependentOfBatchingAndThreads) {
    TempDir tmp;
    struct Case {
        const char* name;
        int64_t heads, kv_heads;
        GgmlType type_k, type_v;
    };
    // 4 KV heads: one 560-row batch makes 3648 chunk jobs, processed in two waves (at most 2048
    // jobs' partial results are held at once).
    for (const Case& c :
         {Case{"4 heads per KV head, f16", 8, 2, GgmlType::F16, GgmlType::F16},
          Case{"4 heads per KV head, f32", 8, 2, GgmlType::F32, GgmlType::F32},
          Case{"4 heads per KV head, q8_0", 8, 2, GgmlType::Q8_0, GgmlType::Q8_0},
          Case{"2 heads per KV head, 4 KV heads, q8_0 K", 8, 4, GgmlType::Q8_0, GgmlType::F16}}) {
        SCOPED_TRACE(c.name);
        SynthOptions o;
        o.vocab_from = (llama_cpp_dir() / "models/ggml-vocab-llama-spm.gguf").string();
        o.n_embd = 256;
        o.n_ff = 512;
        o.n_head = c.heads;
        o.n_head_kv = c.kv_heads;
        o.n_ctx = 1024;
        o.weight_type = GgmlType::TQ2_0;
        const std::string path =
            (tmp / (std::to_string(c.heads) + "_" + std::to_string(c.kv_heads) + ".gguf")).string();
        if (!std::filesystem::exists(path)) write_synthetic_model(o, path);
        const auto model = Model::load(path);
        std::vector<TokenId> ids(560);
        for (size_t i = 0; i < ids.size(); ++i)
            ids[i] = static_cast<TokenId>(1000 + (i * 7919) % 20000);
        SessionOptions so;
        so.threads = 2;
        so.n_ctx = 600;
        so.type_k = c.type_k;
        so.type_v = c.type_v;
        SessionOptions one = so, pieces = so;
        one.threads = 1;
        pieces.n_batch = 100;
        Session batch(model, so), single(model, one), chunked(model, pieces), steps(model, so);
        // Only the last position's logits are computed (the head is most of the cost, under
        // ASan and the scalar ISA too); with two layers they depend on every row's attention.
        batch.evaluate(ids);
        single.evaluate(ids);
        chunked.evaluate(ids);
        const size_t split = 490;  // then token by token over positions 490..559
        steps.evaluate(std::span<const TokenId>(ids.data(), split));
        for (size_t i = split; i < ids.size(); ++i)
            steps.evaluate(std::span<const TokenId>(&ids[i], 1));
        const auto a = batch.logits();
        const auto b = single.logits();
        const auto d = chunked.logits();
        const auto e = steps.logits();
        EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << "threads";
        EXPECT_TRUE(std::equal(a.begin(), a.end(), d.begin())) << "pieces";
        EXPECT_TRUE(std::equal(a.begin(), a.end(), e.begin())) << "token by token";
    }
}

TEST(Engine, ContextFullIsAClearError) {
    TempDir tmp;
    const auto model = Model::load(small_model(tmp));
    SessionOptions so;
    so.n_ctx = 8;
    so.threads = 1;
    Session s(model, so);
    const std::vector<TokenId> ids = {1, 2, 3, 4, 5, 6};
    s.evaluate(ids);
    try {
        s.evaluate(ids);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("context is full"), std::string::npos) << e.what();
    }
    EXPECT_EQ(s.n_past(), 6) << "a refused evaluation appends nothing";
    s.evaluate(std::vector<TokenId>{7, 8});
    EXPECT_EQ(s.n_past(), 8);
    s.truncate(2);
    s.evaluate(std::vector<TokenId>{3});
    EXPECT_THROW(s.evaluate(std::vector<TokenId>{999999}), Error);
    SessionOptions bad;
    bad.n_ctx = -5;
    EXPECT_THROW(Session(model, bad), Error);
    bad = SessionOptions();
    bad.threads = 5000;
    EXPECT_THROW(Session(model, bad), Error);
}

TEST(Engine, RefusesAKvCacheLargerThanMemory) {
    TempDir tmp;
    SynthOptions o;
    o.vocab_from = (llama_cpp_dir() / "models/ggml-vocab-llama-spm.gguf").string();
    o.n_embd = 64;
    o.n_head = 1;
    o.n_head_kv = 1;
    o.n_ff = 128;
    o.n_layer = 256;
    o.n_ctx = 1 << 20;
    const std::string path = (tmp / "deep.gguf").string();
    write_synthetic_model(o, path);
    SessionOptions so;
    so.n_ctx = 1 << 20;  // 256 layers x 1M positions x 64 x 2 x 4 bytes = 128 GiB
    so.type_k = so.type_v = GgmlType::F32;
    so.threads = 1;
    try {
        Session s(Model::load(path), so);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lower -c"), std::string::npos) << e.what();
    }
}

TEST(Sampling, GreedyAndSeededDeterminism) {
    std::vector<float> logits(100);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 3.0f;
    SamplingOptions greedy;
    greedy.temperature = 0.0f;
    Sampler g(greedy);
    const auto best =
        static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(g.sample(logits), best);

    SamplingOptions o;
    o.temperature = 1.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    o.seed = 42;
    Sampler a(o), b(o);
    std::vector<TokenId> xa, xb;
    for (int i = 0; i < 200; ++i) {
        xa.push_back(a.sample(logits));
        xb.push_back(b.sample(logits));
    }
    EXPECT_EQ(xa, xb);
    o.seed = 43;
    Sampler c(o);
    std::vector<TokenId> xc;
    for (int i = 0; i < 200; ++i) xc.push_back(c.sample(logits));
    EXPECT_NE(xa, xc);
}

TEST(Sampling, EachFilterOnAKnownDistribution) {
    // Probabilities 0.4, 0.3, 0.2, 0.1 at temperature 1.
    const std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f),
                                       std::log(0.1f)};
    SamplingOptions base;
    base.temperature = 1.0f;
    base.top_k = 0;
    base.top_p = 1.0f;
    base.min_p = 0.0f;
    auto ids = [](const std::vector<std::pair<TokenId, float>>& d) {
        std::vector<TokenId> v;
        for (const auto& [id, p] : d) v.push_back(id);
        return v;
    };
    auto d = Sampler(base).distribution(logits);
    ASSERT_EQ(d.size(), 4u);
    EXPECT_NEAR(d[0].second, 0.4f, 1e-6);
    EXPECT_NEAR(d[3].second, 0.1f, 1e-6);

    SamplingOptions k = base;
    k.top_k = 2;
    d = Sampler(k).distribution(logits);
    EXPECT_EQ(ids(d), (std::vector<TokenId>{0, 1}));
    EXPECT_NEAR(d[0].second, 0.4f / 0.7f, 1e-6);

    SamplingOptions p = base;
    p.top_p = 0.65f;  // 0.4 + 0.3 reaches it
    EXPECT_EQ(ids(Sampler(p).distribution(logits)), (std::vector<TokenId>{0, 1}));
    p.top_p = 0.75f;
    EXPECT_EQ(ids(Sampler(p).distribution(logits)), (std::vector<TokenId>{0, 1, 2}));

    SamplingOptions m = base;
    m.min_p = 0.45f;  // keeps p >= 0.18: three tokens
    EXPECT_EQ(ids(Sampler(m).distribution(logits)), (std::vector<TokenId>{0, 1, 2}));

    SamplingOptions t = base;
    t.temperature = 0.5f;  // squares and renormalizes: 0.16, 0.09, 0.04, 0.01 over 0.30
    d = Sampler(t).distribution(logits);
    EXPECT_NEAR(d[0].second, 0.16f / 0.30f, 1e-5);
    EXPECT_NEAR(d[3].second, 0.01f / 0.30f, 1e-5);

    SamplingOptions r = base;
    r.repeat_penalty = 2.0f;  // log-probabilities are negative: multiplied by 2
    Sampler rs(r);
    rs.accept(0);
    d = rs.distribution(logits);
    EXPECT_EQ(d[0].first, 1);  // token 0 dropped below token 1

    SamplingOptions f = base;
    f.frequency_penalty = 1.0f;
    f.presence_penalty = 0.5f;
    Sampler fs(f);
    fs.accept(1);
    fs.accept(1);
    d = fs.distribution(logits);
    std::map<TokenId, float> prob;
    for (const auto& [id, pr] : d) prob[id] = pr;
    // Token 1's logit lost 2·1.0 + 0.5.
    EXPECT_NEAR(prob[1] / prob[0], 0.3f / 0.4f * std::exp(-2.5f), 1e-5);

    // Empirical frequencies follow the distribution.
    SamplingOptions s = base;
    s.seed = 7;
    Sampler ss(s);
    std::map<TokenId, int> counts;
    for (int i = 0; i < 20000; ++i) ++counts[ss.sample(logits)];
    EXPECT_NEAR(counts[0] / 20000.0, 0.4, 0.02);
    EXPECT_NEAR(counts[3] / 20000.0, 0.1, 0.02);

    SamplingOptions bad = base;
    bad.top_p = 0.0f;
    EXPECT_THROW(Sampler{bad}, Error);
    bad = base;
    bad.repeat_penalty = -1.0f;
    EXPECT_THROW(Sampler{bad}, Error);
}

TEST(Engine, StopStringsEndAndNeverAppearInTheText) {
    TempDir tmp;
    const auto model = Model::load(small_model(tmp));
    SessionOptions so;
    so.threads = 2;
    Session s(model, so);
    const std::vector<TokenId> prompt =
        model->tokenizer().encode("Once upon a time", {true, false});
    GenerateOptions g;
    g.n_predict = 24;
    g.sampling.temperature = 0.0f;
    g.stop_at_end_of_generation = false;
    const GenerateResult free = generate(s, prompt, g);
    ASSERT_GE(free.text.size(), 4u);
    // Stop on a piece of what greedy decoding produces.
    const std::string stop = free.text.substr(free.text.size() / 2, 2);
    Session s2(model, so);
    g.stop = {stop};
    std::string streamed;
    const GenerateResult r = generate(s2, prompt, g, [&](std::string_view t) {
        streamed += t;
        return true;
    });
    EXPECT_EQ(r.stop, StopReason::StopString);
    EXPECT_EQ(r.text, free.text.substr(0, free.text.find(stop)));
    EXPECT_EQ(streamed, r.text);
    EXPECT_EQ(r.text.find(stop), std::string::npos);
}

TEST(Engine, DumpsNamedIntermediates) {
    TempDir tmp;
    const auto model = Model::load(small_model(tmp, GgmlType::TQ2_0, "bitnet-b1.58"));
    SessionOptions so;
    so.threads = 1;
    so.dump_dir = (tmp / "dump").string();
    Session s(model, so);
    s.evaluate(std::vector<TokenId>{1, 450, 4996});
    for (const char* name :
         {"inp_embd.pos0.npy", "blk.0.attn_norm.pos0.npy", "blk.1.ffn_sub_norm.pos0.npy",
          "blk.1.l_out.pos0.npy", "result_output.pos2.npy"}) {
        EXPECT_TRUE(std::filesystem::exists(tmp / "dump" / name)) << name;
    }
    // The environment variable does the same without touching the options.
    setenv("BITNET_DUMP_TENSORS", (tmp / "env_dump").c_str(), 1);
    Session e(model, SessionOptions{});
    unsetenv("BITNET_DUMP_TENSORS");
    e.evaluate(std::vector<TokenId>{1});
    EXPECT_TRUE(std::filesystem::exists(tmp / "env_dump" / "blk.1.l_out.pos0.npy"));
    const std::string npy = read_file(tmp / "dump" / "blk.0.attn_norm.pos0.npy");
    EXPECT_EQ(npy.substr(1, 5), "NUMPY");
    EXPECT_NE(npy.find("'shape': (3, 256)"), std::string::npos);
    EXPECT_EQ(npy.size() % 64, (3 * 256 * 4) % 64);
}

TEST(Engine, RunAndScoreCli) {
    TempDir tmp;
    const std::string model = small_model(tmp);
    RunResult r = run_cli(
        {"run", "-m", model, "-p", "Hello there", "-n", "8", "--temp", "0", "--json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["prompt_ids"][0], 1) << "BOS first";
    EXPECT_EQ(j["ids"].size(), 8u);
    EXPECT_EQ(j["timings"]["gen_tokens"], 8);
    EXPECT_EQ(j["timings"]["prompt_tokens"], j["prompt_ids"].size());
    EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
    // Same seed, same text; streamed output equals the JSON text.
    RunResult a =
        run_cli({"run", "-m", model, "-p", "Hello there", "-n", "12", "--seed", "5", "-t", "2"});
    RunResult b =
        run_cli({"run", "-m", model, "-p", "Hello there", "-n", "12", "--seed", "5", "-t", "2"});
    EXPECT_EQ(a.out, b.out);
    RunResult c = run_cli(
        {"run", "-m", model, "-p", "Hello there", "-n", "12", "--seed", "5", "-t", "2", "--json"});
    EXPECT_EQ(nlohmann::json::parse(c.out)["text"].get<std::string>() + "\n", a.out);

    r = run_cli({"score", "-m", model, "--text", "The quick brown fox", "--json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto s = nlohmann::json::parse(r.out);
    EXPECT_EQ(s["token_logprobs"].size() + 1, s["ids"].size());
    EXPECT_EQ(s["tokens"], s["ids"].size());
    double sum = 0;
    for (double lp : s["token_logprobs"]) {
        EXPECT_LE(lp, 0.0);
        sum += lp;
    }
    EXPECT_NEAR(s["nll"].get<double>(), -sum / static_cast<double>(s["token_logprobs"].size()),
                1e-9);
    EXPECT_NEAR(s["ppl"].get<double>(), std::exp(s["nll"].get<double>()), 1e-6);
    // llama.cpp's -ctk/-ctv: a q8_0 cache scores the text close to the fp16 one (this random
    // model's sharp distributions make it sensitive; tests/parity measures accuracy).
    r = run_cli({"score", "-m", model, "--text", "The quick brown fox", "--json", "-t", "2", "-ctk",
                 "q8_0", "-ctv", "q8_0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto q8 = nlohmann::json::parse(r.out)["token_logprobs"];
    ASSERT_EQ(q8.size(), s["token_logprobs"].size());
    for (size_t i = 0; i < q8.size(); ++i)
        EXPECT_NEAR(q8[i].get<double>(), s["token_logprobs"][i].get<double>(), 0.5) << i;
    r = run_cli({"run", "-m", model, "-p", "x", "-n", "1", "-ctk", "bf16"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("not supported: --cache-type-k bf16"), std::string::npos) << r.err;
    r = run_cli({"run", "-m", model, "-p", "x", "-n", "1", "--cache-type-v", "q9"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--cache-type-v 'q9' is not one of f16, f32, q8_0"), std::string::npos)
        << r.err;

    r = run_cli({"run", "-m", model, "-p", "one two three four five six seven eight nine ten", "-c",
                 "4", "-t", "1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("raise -c"), std::string::npos) << r.err;
    r = run_cli({"run", "-m", model, "-p", "x", "--top-p", "2"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("top-p"), std::string::npos) << r.err;
    r = run_cli({"run", "-m", (tmp / "missing.gguf").string(), "-p", "x"});
    EXPECT_EQ(r.exit_code, 1);
    r = run_cli({"score", "-m", model, "--text", ""});
    EXPECT_EQ(r.exit_code, 1);
}

TEST(Engine, ModelValidationNamesTheTensor) {
    TempDir tmp;
    const std::string path = small_model(tmp);
    // Drop a tensor and change a shape by rewriting the file.
    const GgufFile f = GgufFile::open(path);
    for (const char* mode : {"drop", "shape", "heads"}) {
        GgufWriter w;
        for (const auto& [k, v] : f.metadata().entries()) w.metadata().set(k, v);
        if (std::string(mode) == "heads")
            w.metadata().set<uint32_t>("bitnet.attention.head_count", 3);
        for (const auto& t : f.tensors()) {
            if (std::string(mode) == "drop" && t.name == "blk.1.ffn_up.weight") continue;
            std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
            if (std::string(mode) == "shape" && t.name == "blk.0.attn_k.weight") {
                w.add_tensor(t.name, t.type, std::vector<int64_t>{256, 256}, [](ByteSink& sink) {
                    std::vector<uint8_t> z(66 * 256, 0);
                    sink.write(z.data(), z.size());
                });
                continue;
            }
            w.add_tensor(t.name, t.type, ne, f.tensor_data(t));
        }
        const std::string bad = (tmp / (std::string(mode) + ".gguf")).string();
        w.write(bad);
        try {
            Model::load(bad);
            ADD_FAILURE() << mode;
        } catch (const Error& e) {
            const std::string m = e.what();
            const std::string expected =
                std::string(mode) == "drop" ? "'blk.1.ffn_up.weight' is missing"
                : std::string(mode) == "shape"
                    ? "'blk.0.attn_k.weight' has shape [256, 256], expected [256, 128]"
                    : "head_count 3 does not divide";
            EXPECT_NE(m.find(expected), std::string::npos) << m;
        }
    }
}

}  // namespace
}  // namespace bitnet::test

namespace bitnet::test {
namespace {

// --head-type q8_0 / q6_k: the head is requantized at load; logits stay close to the F16
// head's, stay independent of batching, and the embedding lookup is untouched.
TEST(Engine, RequantizedHeadIsCloseAndBatchInvariant) {
    TempDir tmp;
    const std::string path = small_model(tmp, GgmlType::TQ2_0);
    const auto base = Model::load(path);
    for (const GgmlType head : {GgmlType::Q8_0, GgmlType::Q6_K}) {
        SCOPED_TRACE(std::string(type_name(head)));
        ModelOptions mo;
        mo.head_type = head;
        const auto model = Model::load(path, mo);
        const std::vector<TokenId> ids =
            model->tokenizer().encode("The head is requantized once, at load", {true, false});
        SessionOptions so;
        so.threads = 2;
        so.n_ctx = 64;
        Session a(base, so), b(model, so), steps(model, so);
        a.evaluate(ids, true);
        b.evaluate(ids, true);
        double max_diff = 0, max_abs = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            steps.evaluate(std::span<const TokenId>(&ids[i], 1));
            const auto la = a.logits(static_cast<int64_t>(i)),
                       lb = b.logits(static_cast<int64_t>(i));
            const auto ls = steps.logits();
            for (size_t v = 0; v < la.size(); ++v) {
                max_diff = std::max(max_diff, static_cast<double>(std::fabs(la[v] - lb[v])));
                max_abs = std::max(max_abs, static_cast<double>(std::fabs(la[v])));
                ASSERT_EQ(lb[v], ls[v]) << "batch and token-by-token differ at " << i;
            }
        }
        EXPECT_GT(max_diff, 0.0) << "the head really changed";
        EXPECT_LT(max_diff, (head == GgmlType::Q8_0 ? 0.02 : 0.05) * max_abs)
            << "requantized head logits stay close to the F16 head's";
        std::printf("[ engine ] %s head: largest logit change %.4f of %.3f\n",
                    std::string(type_name(head)).c_str(), max_diff, max_abs);
    }
    ModelOptions q4;
    q4.head_type = GgmlType::Q4_K;
    EXPECT_THROW(Model::load(path, q4), NotSupported);
    const RunResult r =
        run_cli({"run", "-m", path, "-p", "Hi", "-n", "3", "--temp", "0", "--head-type", "q6_k"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // score --kl-base: against itself KL is 0 and every top token agrees; against the F16 head a
    // requantized head gives a small positive KL. The text spans several evaluation chunks.
    std::string text;
    for (int i = 0; i < 22; ++i) text += "The head is requantized once, at load, and then scored. ";
    const auto score = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"score",  "-m", path, "--text", text,
                                         "--json", "-t", "2",  "-c",     "512"};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult sr = run_cli(args);
        EXPECT_EQ(sr.exit_code, 0) << sr.err;
        return nlohmann::json::parse(sr.out);
    };
    const auto plain = score({});
    ASSERT_GT(plain["tokens"].get<int>(), 300);
    {  // the chunked scoring gives what one evaluation of the whole text gives
        const auto ids = plain["ids"].get<std::vector<TokenId>>();
        SessionOptions so;
        so.threads = 2;
        so.n_ctx = 512;
        Session whole(base, so);
        whole.evaluate(ids, true);
        for (size_t i : {size_t{0}, size_t{254}, size_t{255}, size_t{256}, ids.size() - 2}) {
            const auto l = whole.logits(static_cast<int64_t>(i));
            double max = -INFINITY, z = 0.0;
            for (float v : l) max = std::max(max, static_cast<double>(v));
            for (float v : l) z += std::exp(static_cast<double>(v) - max);
            const double lp =
                static_cast<double>(l[static_cast<size_t>(ids[i + 1])]) - max - std::log(z);
            EXPECT_NEAR(plain["token_logprobs"][i].get<double>(), lp, 1e-9) << "position " << i;
        }
    }
    const auto self = score({"--kl-base", path});
    EXPECT_EQ(self["kl_mean"].get<double>(), 0.0);
    EXPECT_EQ(self["kl_max"].get<double>(), 0.0);
    EXPECT_EQ(self["top1_agreement"].get<double>(), 1.0);
    EXPECT_EQ(self["base_nll"].get<double>(), plain["nll"].get<double>());
    const auto q6 = score({"--head-type", "q6_k", "--kl-base", path});
    EXPECT_GT(q6["kl_mean"].get<double>(), 0.0);
    EXPECT_LT(q6["kl_mean"].get<double>(), 0.05);
    EXPECT_GT(q6["top1_agreement"].get<double>(), 0.5);
    EXPECT_EQ(q6["base_nll"].get<double>(), plain["nll"].get<double>());
    EXPECT_NE(q6["nll"].get<double>(), plain["nll"].get<double>());
    std::printf("[ engine ] score --kl-base, q6_k head: KL %.6f, same top token %.1f %%\n",
                q6["kl_mean"].get<double>(), 100.0 * q6["top1_agreement"].get<double>());
}

}  // namespace
}  // namespace bitnet::test

namespace bitnet::test {
namespace {

// The whole model through the rows16 kernels (repacked at load, mapped pages released) against
// the plain layout (BITNET_REPACK=0), and the AVX-512 VNNI kernels against the AVX2 ones, in
// separate processes (the environment is read once): with a Q8_0 head every matrix product is
// integer-exact on all paths, so the log-probabilities must be identical.
// `bitnet score` log-probabilities of a fixed text with BITNET_ISA and BITNET_REPACK set.
nlohmann::json score_on(const std::string& path, const char* isa, const char* repack,
                        const std::vector<std::string>& extra) {
    setenv("BITNET_ISA", isa, 1);
    setenv("BITNET_REPACK", repack, 1);
    std::vector<std::string> args = {
        "score",  "-m", path, "--text", "Every matrix product is exact on every path.",
        "--json", "-t", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run_cli(args);
    unsetenv("BITNET_ISA");
    unsetenv("BITNET_REPACK");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out).at("token_logprobs");
}

// On AVX2: whole-model log-probabilities with the matrices held rows16 (TQ1_0 as TQ2_0) and
// in their stored layout with the AVX2 row dots are identical; the scalar code differs only by
// the float kernels' rounding (attention, the F16 head).
TEST(Rows16, Avx2WholeModelEqualsScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    TempDir tmp;
    for (GgmlType type : {GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::I2_S}) {
        SCOPED_TRACE(std::string(type_name(type)));
        const std::string path =
            small_model(tmp, type, type == GgmlType::I2_S ? "bitnet-b1.58" : "bitnet");
        const auto score = [&](const char* isa, const char* repack) {
            return score_on(path, isa, repack, {});
        };
        const auto rows16 = score("avx2", "1");
        EXPECT_EQ(rows16, score("avx2", "0")) << "rows16 against the stored layout";
        const auto scalar = score("scalar", "0");
        ASSERT_EQ(rows16.size(), scalar.size());
        for (size_t i = 0; i < scalar.size(); ++i) {
            EXPECT_NEAR(rows16[i].get<double>(), scalar[i].get<double>(), 1e-4)
                << "AVX2 rows16 against the scalar code, token " << i;
        }
    }
}

TEST(Rows16, WholeModelMatchesThePlainLayoutAndAvx2) {
    if (best_isa() < Isa::Avx512Vnni) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
    TempDir tmp;
    for (GgmlType type : {GgmlType::TQ2_0, GgmlType::I2_S}) {
        SCOPED_TRACE(std::string(type_name(type)));
        const std::string path =
            small_model(tmp, type, type == GgmlType::I2_S ? "bitnet-b1.58" : "bitnet");
        const auto score = [&](const char* isa, const char* repack) {
            return score_on(path, isa, repack, {"--head-type", "q8_0"});
        };
        const auto rows16 = score("avx512vnni", "1");
        EXPECT_EQ(rows16, score("avx512vnni", "0")) << "rows16 against the plain layout";
        EXPECT_EQ(rows16, score("avx2", "1")) << "AVX-512 VNNI against AVX2 rows16";
    }
}

}  // namespace
}  // namespace bitnet::test

namespace bitnet::test {
namespace {

// Several sequences in one forward pass give exactly what each gives alone (the server's
// promise), whatever the mix of prompt chunks and decode steps; fork copies a prefix so that
// continuing from it equals computing it; a bad batch changes nothing.
TEST(MultiSession, BatchedSequencesEqualEachAloneBitForBit) {
    TempDir tmp;
    for (GgmlType type : {GgmlType::TQ2_0, GgmlType::F16, GgmlType::I2_S}) {
        SCOPED_TRACE(std::string(type_name(type)));
        const auto model = Model::load(small_model(tmp, type, "bitnet-b1.58"));
        const Tokenizer& tok = model->tokenizer();
        const std::vector<std::vector<TokenId>> prompts = {
            tok.encode("The quick brown fox jumps over the lazy dog", {true, false}),
            tok.encode("Hello", {true, false}),
            tok.encode("One two three four five six seven eight nine ten eleven", {true, false}),
        };
        const int steps = 5;
        // Alone: prompt, then greedy decoding; every logit row kept.
        std::vector<std::vector<std::vector<float>>> alone(prompts.size());
        std::vector<std::vector<TokenId>> continuation(prompts.size());
        for (size_t s = 0; s < prompts.size(); ++s) {
            Session one(model, SessionOptions{64, 2, 512, {}, GgmlType::F16, GgmlType::F16});
            one.evaluate(prompts[s], true);
            for (size_t i = 0; i < prompts[s].size(); ++i) {
                const auto l = one.logits(static_cast<int64_t>(i));
                alone[s].emplace_back(l.begin(), l.end());
            }
            for (int k = 0; k < steps; ++k) {
                const auto l = one.logits();
                const auto next =
                    static_cast<TokenId>(std::max_element(l.begin(), l.end()) - l.begin());
                continuation[s].push_back(next);
                one.evaluate(std::span<const TokenId>(&next, 1), true);
                const auto m = one.logits();
                alone[s].emplace_back(m.begin(), m.end());
            }
        }
        // Together: the prompts arrive in chunks of different sizes, interleaved, and decode
        // steps of finished prompts share passes with other sequences' prompt chunks.
        MultiSession multi(model,
                           MultiSessionOptions{3, 64, 2, 4, GgmlType::F16, GgmlType::F16, {}});
        std::vector<size_t> done(prompts.size(), 0);  // rows consumed
        std::vector<std::vector<std::vector<float>>> got(prompts.size());
        const std::vector<size_t> chunk = {3, 1, 5};
        while (true) {
            std::vector<BatchEntry> batch;
            for (size_t s = 0; s < prompts.size(); ++s) {
                const size_t total = prompts[s].size() + static_cast<size_t>(steps);
                for (size_t c = 0; c < chunk[s] && done[s] < total; ++c, ++done[s]) {
                    const size_t i = done[s];
                    const TokenId t = i < prompts[s].size()
                                          ? prompts[s][i]
                                          : continuation[s][i - prompts[s].size()];
                    batch.push_back({static_cast<int>(s), t, static_cast<int64_t>(i), true});
                }
            }
            if (batch.empty()) break;
            multi.evaluate(batch);
            ASSERT_EQ(multi.n_logits(), batch.size());
            for (size_t e = 0; e < batch.size(); ++e) {
                const auto l = multi.logits(e);
                got[static_cast<size_t>(batch[e].seq)].emplace_back(l.begin(), l.end());
            }
        }
        for (size_t s = 0; s < prompts.size(); ++s) {
            ASSERT_EQ(got[s].size(), alone[s].size());
            for (size_t r = 0; r < got[s].size(); ++r) {
                ASSERT_EQ(got[s][r], alone[s][r]) << "sequence " << s << ", row " << r;
            }
        }
        // Fork: sequence 1 takes sequence 0's prompt; its next row equals the one computed alone.
        const auto n0 = static_cast<int64_t>(prompts[0].size());
        multi.fork(0, 1, n0 - 1);
        EXPECT_EQ(multi.n_past(1), n0 - 1);
        const BatchEntry last{1, prompts[0].back(), n0 - 1, true};
        multi.evaluate(std::span<const BatchEntry>(&last, 1));
        const auto fl = multi.logits(0);
        EXPECT_EQ(std::vector<float>(fl.begin(), fl.end()), alone[0][prompts[0].size() - 1]);
        // A bad entry (wrong position) refuses the whole batch and changes nothing.
        const int64_t before2 = multi.n_past(2);
        const std::vector<BatchEntry> bad = {{2, 1, before2, false}, {0, 1, 0, true}};
        EXPECT_THROW(multi.evaluate(bad), Error);
        EXPECT_EQ(multi.n_past(2), before2);
        const std::vector<BatchEntry> bad_seq = {{3, 1, 0, true}};
        EXPECT_THROW(multi.evaluate(bad_seq), Error);
        multi.clear(2);
        EXPECT_EQ(multi.n_past(2), 0);
        EXPECT_EQ(multi.reuse_prefix(0, prompts[0]), n0 - 1);
    }
}

TEST(MultiSession, RefusesCachesLargerThanMemoryNamingTheTotal) {
    TempDir tmp;
    const auto model = Model::load(small_model(tmp, GgmlType::TQ2_0));
    try {
        MultiSession m(model,
                       MultiSessionOptions{256, 1 << 20, 1, 512, GgmlType::F32, GgmlType::F32, {}});
        FAIL() << "256 caches of 2^20 positions fit?";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("256 KV caches"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("-np"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace bitnet::test

namespace bitnet::test {
namespace {

bool inside(const ModelImpl& m, const uint8_t* p) {
    for (const PageBuffer& b : m.held)
        if (p >= b.data() && p < b.data() + b.size()) return true;
    return false;
}

const uint8_t* in_file(const Model& m, const char* name) {
    return m.file().tensor_data(*m.file().find_tensor(name)).data();
}

// Where Model::load puts the weights (model.cpp, Holder): projections and a copied tied head in
// held memory with the embedding following the head; a requantized tied head held while the
// embedding keeps the file's values; BITNET_REPACK=0 holding only a requantized head. Logits
// cannot show a missing follower: released file pages come back on the next read.
TEST(Holder, PlacesWeightsWhereTheyAreRead) {
    TempDir tmp;
    const std::string path = small_model(tmp, GgmlType::TQ2_0);
    {
        const auto model = Model::load(path);
        const ModelImpl& m = model->impl();
        ASSERT_TRUE(model->hparams().tied_output);
        if (best_isa() >= Isa::Avx2) {
            EXPECT_TRUE(m.layers[0].wq.rows16);
            EXPECT_TRUE(inside(m, m.layers[1].ffn_down.data));
        }
        if (huge_pages_enabled()) {
            EXPECT_TRUE(inside(m, m.output.data)) << "the tied head is copied";
            EXPECT_EQ(m.token_embd.data, m.output.data) << "the embedding follows the head";
        } else {
            EXPECT_EQ(m.output.data, in_file(*model, "token_embd.weight")) << "no copy";
        }
        std::vector<float> held(static_cast<size_t>(m.hp.n_embd));
        std::vector<float> file(held.size());
        m.embed(5, held.data());
        dequantize_tensor(GgmlType::F16,
                          {in_file(*model, "token_embd.weight") + 5 * m.token_embd.row_bytes,
                           m.token_embd.row_bytes},
                          1, m.hp.n_embd, file.data());
        EXPECT_EQ(held, file);
    }
    ModelOptions q8;
    q8.head_type = GgmlType::Q8_0;
    {
        const auto model = Model::load(path, q8);
        const ModelImpl& m = model->impl();
        EXPECT_EQ(m.output.type, GgmlType::Q8_0);
        EXPECT_TRUE(inside(m, m.output.data));
        EXPECT_EQ(m.token_embd.data, in_file(*model, "token_embd.weight"))
            << "a requantized tied head leaves the lookup on the file's exact values";
    }
    {
        ::setenv("BITNET_REPACK", "0", 1);
        const auto model = Model::load(path, q8);
        ::unsetenv("BITNET_REPACK");
        const ModelImpl& m = model->impl();
        EXPECT_EQ(model->held_weight_bytes(), held_bytes(m.output));
        EXPECT_EQ(m.layers[0].wq.data, in_file(*model, "blk.0.attn_q.weight"));
        EXPECT_FALSE(m.layers[0].wq.rows16);
    }
}

// Each layer's K and V regions are 64-byte aligned and disjoint, for mixed cache types.
TEST(KvCache, LayerRegionsAreAlignedAndDisjoint) {
    KvCache c;
    c.init(3, 100, 2, 64, GgmlType::F16, GgmlType::Q8_0);
    const size_t kb = c.row(c.n_head_kv, 0) * c.k_row, vb = c.row(c.n_head_kv, 0) * c.v_row;
    for (int64_t l = 0; l < 3; ++l) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(c.k(l)) % 64, 0u);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(c.v(l)) % 64, 0u);
        std::memset(c.k(l), static_cast<int>(1 + 2 * l), kb);
        std::memset(c.v(l), static_cast<int>(2 + 2 * l), vb);
    }
    for (int64_t l = 0; l < 3; ++l) {
        for (size_t i = 0; i < kb; i += 7) ASSERT_EQ(c.k(l)[i], 1 + 2 * l) << l << " " << i;
        for (size_t i = 0; i < vb; i += 7) ASSERT_EQ(c.v(l)[i], 2 + 2 * l) << l << " " << i;
        EXPECT_EQ(c.k(l)[kb - 1], 1 + 2 * l);
        EXPECT_EQ(c.v(l)[vb - 1], 2 + 2 * l);
    }
}

}  // namespace
}  // namespace bitnet::test
