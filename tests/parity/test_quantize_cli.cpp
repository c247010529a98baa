// `bitnet quantize` end to end: an F32 model into every type and back, checked tensor by
// tensor against libggml-base's quantizers (and our library where ggml has no such type).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bitnet/gguf.h"
#include "bitnet/quant.h"
#include "bitnet/synth.h"
#include "parity/ggml_ref.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

namespace fs = std::filesystem;

std::string synth_f32(const TempDir& tmp, const std::string& arch, int64_t n_embd = 256) {
    SynthOptions o;
    o.architecture = arch;
    o.n_embd = n_embd;
    o.n_ff = 512;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_layer = 2;
    o.n_vocab = 320;
    o.weight_type = GgmlType::F32;
    o.embd_type = GgmlType::F32;
    const std::string path = (tmp / (arch + "-" + std::to_string(n_embd) + "-f32.gguf")).string();
    write_synthetic_model(o, path);
    return path;
}

std::vector<float> floats_of(const GgufFile& f, const GgufTensorInfo& t) {
    std::vector<float> v(static_cast<size_t>(t.n_elements()));
    dequantize_tensor(t.type, f.tensor_data(t), t.n_elements() / t.ne[0], t.ne[0], v.data());
    return v;
}

bool is_matrix_weight(const GgufTensorInfo& t) {
    return t.n_dims == 2 && t.name != "token_embd.weight" && t.name != "output.weight";
}

TEST(QuantizeCli, F32ToEveryTypeAndBack) {
    const GgmlRef& g = GgmlRef::get();
    TempDir tmp;
    const std::string bitnet_f32 = synth_f32(tmp, "bitnet");
    const std::string ms_f32 = synth_f32(tmp, "bitnet-b1.58");
    const std::pair<const char*, uint32_t> targets[] = {{"f32", 0},    {"f16", 1},    {"bf16", 32},
                                                        {"q8_0", 7},   {"q4_0", 2},   {"tq1_0", 36},
                                                        {"tq2_0", 37}, {"iq2_s", 28}, {"i2_s", 40}};
    for (const auto& [name, file_type] : targets) {
        SCOPED_TRACE(name);
        const GgmlType type = *type_from_name(name);
        const std::string in = type == GgmlType::I2_S ? ms_f32 : bitnet_f32;
        const std::string q = (tmp / (std::string(name) + ".gguf")).string();
        const std::string back = (tmp / (std::string(name) + "-back.gguf")).string();
        RunResult r = run_cli({"quantize", in, q, "--type", name, "--threads", "2"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("bits per weight"), std::string::npos) << r.err;
        r = run_cli({"quantize", q, back, "--type", "f32"});
        ASSERT_EQ(r.exit_code, 0) << r.err;

        const GgufFile src = GgufFile::open(in), mid = GgufFile::open(q),
                       out = GgufFile::open(back);
        ASSERT_EQ(mid.tensors().size(), src.tensors().size());
        EXPECT_EQ(mid.metadata().get<std::string>("general.architecture"), src.architecture());
        size_t checked = 0;
        for (size_t i = 0; i < src.tensors().size(); ++i) {
            const GgufTensorInfo& s = src.tensors()[i];
            const GgufTensorInfo& m = mid.tensors()[i];
            const GgufTensorInfo& b = out.tensors()[i];
            ASSERT_EQ(m.name, s.name);
            EXPECT_EQ(m.type, is_matrix_weight(s) ? type : s.type) << s.name;
            EXPECT_EQ(b.type, GgmlType::F32) << s.name;
            if (!is_matrix_weight(s)) {
                EXPECT_TRUE(std::ranges::equal(mid.tensor_data(m), src.tensor_data(s)))
                    << s.name << " copied";
                continue;
            }
            const auto x = floats_of(src, s);
            const int64_t rows = s.n_elements() / s.ne[0];
            // The quantized bytes: what ggml's own quantizer makes of the same floats.
            std::vector<uint8_t> expect(m.bytes);
            if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16 ||
                type == GgmlType::I2_S) {
                quantize_tensor(type, x.data(), rows, s.ne[0], expect);
            } else {
                g.quantize_init(static_cast<int>(type));
                g.quantizer(static_cast<int>(type))(x.data(), expect.data(), rows, s.ne[0],
                                                    nullptr);
            }
            ASSERT_TRUE(std::ranges::equal(mid.tensor_data(m), expect)) << s.name;
            // Back to F32: exactly the dequantized values.
            std::vector<float> deq(x.size());
            dequantize_tensor(type, mid.tensor_data(m), rows, s.ne[0], deq.data());
            ASSERT_EQ(std::memcmp(out.tensor_data(b).data(), deq.data(), deq.size() * 4), 0)
                << s.name;
            ++checked;
        }
        EXPECT_EQ(checked, 14u);
        EXPECT_EQ(mid.metadata().get<uint32_t>("general.file_type"), file_type);
    }
}

TEST(QuantizeCli, RowsThatDoNotFitAreListedOrFallBack) {
    TempDir tmp;
    const std::string in = synth_f32(tmp, "bitnet", 320);  // 320 is not a multiple of 256
    const std::string out = (tmp / "out.gguf").string();
    RunResult r = run_cli({"quantize", in, out, "--type", "tq2_0"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("cannot convert 12 tensors"), std::string::npos) << r.err;
    EXPECT_NE(
        r.err.find("blk.0.attn_q.weight (320x320: rows of 320 do not fit TQ2_0 blocks of 256)"),
        std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("--fallback"), std::string::npos);
    EXPECT_FALSE(fs::exists(out));

    r = run_cli({"quantize", in, out, "--type", "tq2_0", "--fallback", "q8_0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const GgufFile f = GgufFile::open(out);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, GgmlType::Q8_0);     // 320 wide
    EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type, GgmlType::TQ2_0);  // rows of 512

    r = run_cli({"quantize", in, out, "--type", "q5_k"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("'q5_k' is not one of"), std::string::npos) << r.err;
    r = run_cli({"quantize", in, (tmp / "x.gguf").string(), "--type", "i2_s"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("I2_S is Microsoft's format"), std::string::npos) << r.err;
}

TEST(QuantizeCli, EmbeddingAndOutputTypes) {
    TempDir tmp;
    const std::string in = synth_f32(tmp, "bitnet");
    const std::string out = (tmp / "out.gguf").string();
    RunResult r = run_cli({"quantize", in, out, "--type", "tq1_0", "--embd-type", "q8_0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const GgufFile f = GgufFile::open(out);
    EXPECT_EQ(f.tensor("token_embd.weight").type, GgmlType::Q8_0);
    EXPECT_EQ(f.tensor("output_norm.weight").type, GgmlType::F32);
    EXPECT_EQ(f.tensor("blk.1.ffn_up.weight").type, GgmlType::TQ1_0);
    EXPECT_EQ(f.metadata().get<uint32_t>("general.file_type"), 36u);
    // The K-quants (byte-exact with ggml, QuantParity) for the matrices and the embedding;
    // --output-type on a tied model is refused rather than ignored.
    const std::string kq = (tmp / "kq.gguf").string();
    r = run_cli({"quantize", in, kq, "--type", "tq2_0", "--output-type", "q4_k"});
    EXPECT_EQ(r.exit_code, 1) << "the head is tied: no output.weight to set";
    EXPECT_NE(r.err.find("use --embd-type"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(kq));
    r = run_cli({"quantize", in, kq, "--type", "q4_k", "--embd-type", "q6_k"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const GgufFile k = GgufFile::open(kq);
    EXPECT_EQ(k.tensor("token_embd.weight").type, GgmlType::Q6_K);
    EXPECT_EQ(k.tensor("blk.1.ffn_up.weight").type, GgmlType::Q4_K);
    EXPECT_EQ(k.metadata().get<uint32_t>("general.file_type"), 14u);  // MOSTLY_Q4_K_S
}

TEST(QuantizeCli, InterruptedRunLeavesNoOutput) {
    TempDir tmp;
    const std::string in = synth_f32(tmp, "bitnet", 2048);
    const std::string out = (tmp / "out.gguf").string();
    const int pid = spawn_cli({"quantize", in, out, "--type", "iq2_s"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(pid, SIGINT);
    const int status = wait_cli(pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "finished before the signal; make the model larger";
    EXPECT_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(tmp.path())) {
        EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
    }
}

}  // namespace
}  // namespace bitnet::test
