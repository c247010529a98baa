#include "bitnet/synth.h"

#include "bitnet/model.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "bitnet/convert.h"
#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "core/fp16.h"

namespace bitnet {

namespace {

// Box-Muller over mt19937_64: the same seed gives the same weights with every standard
// library (std::normal_distribution is implementation-defined).
class Gaussian {
  public:
    explicit Gaussian(uint64_t seed) : rng_(seed) {}
    float next() {
        const double u1 = (static_cast<double>(rng_() >> 11) + 0.5) * 0x1.0p-53;
        const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) *
                                  std::cos(6.283185307179586 * u2));
    }

  private:
    std::mt19937_64 rng_;
};

// Encodes n values (rows of row_length) as `type` with the library's quantizers.
std::vector<uint8_t> encode_floats(const std::vector<float>& v, int64_t row_length, GgmlType type) {
    const auto n = static_cast<int64_t>(v.size());
    const auto bytes = tensor_bytes(type, row_length, n);
    if (!bytes) {
        throw Error("rows of " + std::to_string(row_length) + " do not fit " +
                    std::string(type_name(type)) + " blocks");
    }
    std::vector<uint8_t> out(*bytes);
    QuantOptions q;
    q.i2s_layout = I2sLayout::X86;
    quantize_tensor(type, v.data(), n / row_length, row_length, out, q);
    return out;
}

void validate(const SynthOptions& o) {
    if (o.architecture != "bitnet" && o.architecture != "bitnet-b1.58" &&
        o.architecture != "llama") {
        throw NotSupported("synthetic architecture '" + o.architecture +
                           "' (expected bitnet, bitnet-b1.58 or llama)");
    }
    auto positive = [](int64_t v, const char* name, int64_t max) {
        if (v <= 0 || v > max) {
            throw Error(std::string(name) + " = " + std::to_string(v) + " is outside 1.." +
                        std::to_string(max));
        }
    };
    positive(o.n_embd, "n_embd", 1 << 16);
    positive(o.n_layer, "n_layer", 256);
    positive(o.n_head, "n_head", 1024);
    positive(o.n_head_kv, "n_head_kv", 1024);
    positive(o.n_ff, "n_ff", 1 << 18);
    positive(o.n_ctx, "n_ctx", 1 << 20);
    if (o.n_embd % o.n_head != 0) throw Error("n_embd must be a multiple of n_head");
    if (o.n_head % o.n_head_kv != 0) throw Error("n_head must be a multiple of n_head_kv");
    if ((o.n_embd / o.n_head) % 2 != 0) throw Error("the head dimension must be even for RoPE");
    if (o.replica_2b4t && o.architecture != "bitnet-b1.58")
        throw Error("the 2B-4T replica is a bitnet-b1.58 model");
    if (o.replica_2b4t && o.vocab_from.empty())
        throw Error("the 2B-4T replica needs --vocab (the Llama-3 vocabulary)");
}

// The placeholder template Microsoft's converter wrote into the released file (MODELS.md):
// verbatim, so that chat's detection of it is tested on the real text.
constexpr const char* kReplicaChatTemplate =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

void set_replica_metadata(GgufMetadata& m, const SynthOptions& o, const GgufFile& vocab,
                          int64_t n_vocab) {
    const std::string a = "bitnet-b1.58.";
    const GgufMetadata& v = vocab.metadata();
    m.set("general.architecture", "bitnet-b1.58");
    m.set("general.name", "bitnet2b");
    m.set<uint32_t>(a + "vocab_size", static_cast<uint32_t>(n_vocab));
    m.set<uint32_t>(a + "context_length", static_cast<uint32_t>(o.n_ctx));
    m.set<uint32_t>(a + "embedding_length", static_cast<uint32_t>(o.n_embd));
    m.set<uint32_t>(a + "block_count", static_cast<uint32_t>(o.n_layer));
    m.set<uint32_t>(a + "feed_forward_length", static_cast<uint32_t>(o.n_ff));
    m.set<uint32_t>(a + "rope.dimension_count", static_cast<uint32_t>(o.n_embd / o.n_head));
    m.set<uint32_t>(a + "attention.head_count", static_cast<uint32_t>(o.n_head));
    m.set<uint32_t>(a + "attention.head_count_kv", static_cast<uint32_t>(o.n_head_kv));
    m.set<bool>("tokenizer.ggml.add_bos_token", true);
    m.set<float>(a + "attention.layer_norm_rms_epsilon", o.rms_eps);
    m.set<float>(a + "rope.freq_base", o.rope_freq_base);
    m.set<uint32_t>("general.file_type", 40);
    m.set("tokenizer.ggml.model", v.get<std::string>("tokenizer.ggml.model"));
    m.set("tokenizer.ggml.tokens", *v.find("tokenizer.ggml.tokens"));
    if (const GgufValue* s = v.find("tokenizer.ggml.scores")) {
        m.set("tokenizer.ggml.scores", *s);
    } else {
        m.set("tokenizer.ggml.scores",
              GgufArray::of(std::vector<float>(static_cast<size_t>(n_vocab), 0.0f)));
    }
    m.set("tokenizer.ggml.token_type", *v.find("tokenizer.ggml.token_type"));
    m.set("tokenizer.ggml.merges", *v.find("tokenizer.ggml.merges"));
    m.set<uint32_t>("tokenizer.ggml.bos_token_id",
                    static_cast<uint32_t>(v.get_uint("tokenizer.ggml.bos_token_id")));
    m.set<uint32_t>("tokenizer.ggml.eos_token_id",
                    static_cast<uint32_t>(v.get_uint("tokenizer.ggml.eos_token_id")));
    m.set<uint32_t>("tokenizer.ggml.padding_token_id",
                    static_cast<uint32_t>(v.get_uint("tokenizer.ggml.eos_token_id")));
    m.set("tokenizer.chat_template", std::string(kReplicaChatTemplate));
    m.set<uint32_t>("general.quantization_version", 2);
}

void set_metadata(GgufMetadata& m, const SynthOptions& o, int64_t n_vocab, const GgufFile* vocab) {
    const std::string& a = o.architecture;
    m.set("general.architecture", a);
    m.set("general.name", "synthetic-" + a);
    m.set("general.description", std::string("synthetic model with RANDOM weights written by "
                                             "bitnet synth; its output is meaningless"));
    m.set<uint32_t>("general.file_type", file_type_for(o.weight_type));
    if (o.weight_type == GgmlType::I2_S || o.embd_type == GgmlType::I2_S)
        m.set(kI2sLayoutKey, std::string("x86"));
    m.set<uint32_t>(a + ".context_length", static_cast<uint32_t>(o.n_ctx));
    m.set<uint32_t>(a + ".embedding_length", static_cast<uint32_t>(o.n_embd));
    m.set<uint32_t>(a + ".block_count", static_cast<uint32_t>(o.n_layer));
    m.set<uint32_t>(a + ".feed_forward_length", static_cast<uint32_t>(o.n_ff));
    m.set<uint32_t>(a + ".attention.head_count", static_cast<uint32_t>(o.n_head));
    m.set<uint32_t>(a + ".attention.head_count_kv", static_cast<uint32_t>(o.n_head_kv));
    m.set<uint32_t>(a + ".rope.dimension_count", static_cast<uint32_t>(o.n_embd / o.n_head));
    m.set<float>(a + ".rope.freq_base", o.rope_freq_base);
    m.set<float>(a + ".attention.layer_norm_rms_epsilon", o.rms_eps);
    m.set<uint32_t>(a + ".vocab_size", static_cast<uint32_t>(n_vocab));
    if (vocab != nullptr) {
        for (const auto& [key, value] : vocab->metadata().entries()) {
            if (key.rfind("tokenizer.", 0) == 0) m.set(key, value);
        }
    }
}

}  // namespace

SynthOptions replica_2b4t_defaults() {
    SynthOptions o;
    o.architecture = "bitnet-b1.58";
    o.n_embd = 2560;
    o.n_layer = 30;
    o.n_head = 20;
    o.n_head_kv = 5;
    o.n_ff = 6912;
    o.n_ctx = 4096;
    o.rope_freq_base = 500000.0f;
    o.rms_eps = 1e-5f;
    o.weight_type = GgmlType::I2_S;
    o.embd_type = GgmlType::F16;
    o.ternary = true;
    o.replica_2b4t = true;
    return o;
}

void write_synthetic_model(const SynthOptions& o, const std::string& path) {
    validate(o);
    std::optional<GgufFile> vocab;
    int64_t n_vocab = o.n_vocab;
    if (!o.vocab_from.empty()) {
        vocab = GgufFile::open(o.vocab_from);
        const auto& tokens = vocab->metadata().get_array<std::string>("tokenizer.ggml.tokens");
        if (n_vocab == 0) n_vocab = static_cast<int64_t>(tokens.size());
        if (n_vocab != static_cast<int64_t>(tokens.size())) {
            throw Error("n_vocab " + std::to_string(n_vocab) + " differs from the " +
                        std::to_string(tokens.size()) + " tokens of " + o.vocab_from);
        }
    }
    if (n_vocab <= 0) throw Error("n_vocab is required when no vocabulary file is given");

    GgufWriter w;
    if (o.replica_2b4t) {
        set_replica_metadata(w.metadata(), o, *vocab, n_vocab);
    } else {
        set_metadata(w.metadata(), o, n_vocab, vocab ? &*vocab : nullptr);
    }

    // Tensors are generated lazily, one at a time in file order, from one stream: a seed fixes
    // every weight and a large model never sits in memory whole.
    Gaussian g(o.seed);
    auto add_floats = [&](const std::string& name, GgmlType type, std::vector<int64_t> ne,
                          float scale, float offset) {
        int64_t n = 1;
        for (int64_t d : ne) n *= d;
        const int64_t row = ne[0];
        w.add_tensor(name, type, ne, [&g, n, row, type, scale, offset](ByteSink& sink) {
            std::vector<float> v(static_cast<size_t>(n));
            for (float& x : v) x = offset + scale * g.next();
            const std::vector<uint8_t> bytes = encode_floats(v, row, type);
            sink.write(bytes.data(), bytes.size());
        });
    };
    auto add_projection = [&](const std::string& name, int64_t cols, int64_t rows) {
        const float std_dev = 1.0f / std::sqrt(static_cast<float>(cols));
        if (!o.ternary) {
            add_floats(name, o.weight_type, {cols, rows}, std_dev, 0.0f);
        } else {
            const int64_t n = cols * rows;
            const float scale = fp16_to_fp32(fp32_to_fp16(std_dev));
            w.add_tensor(
                name, o.weight_type, std::vector<int64_t>{cols, rows},
                [&g, n, cols, scale, type = o.weight_type](ByteSink& sink) {
                    std::vector<float> v(static_cast<size_t>(n));
                    for (int64_t i = 0; i < n; ++i) {
                        const float r = g.next();
                        v[static_cast<size_t>(i)] = r < -0.43f ? -scale : r > 0.43f ? scale : 0.0f;
                        if (i % 256 == 0) v[static_cast<size_t>(i)] = r < 0.0f ? -scale : scale;
                    }
                    const std::vector<uint8_t> bytes = encode_floats(v, cols, type);
                    sink.write(bytes.data(), bytes.size());
                });
        }
        if (o.projection_scales) {
            const std::string base = name.substr(0, name.size() - std::string(".weight").size());
            add_floats(base + ".scale", GgmlType::F32, {1}, 0.25f, 1.0f);
        }
    };
    const int64_t e = o.n_embd;
    const int64_t kv = e / o.n_head * o.n_head_kv;
    const bool sub_norms = o.architecture != "llama";
    // Embeddings double as the output head: std 4/sqrt(width) gives logits of std about 4.
    add_floats("token_embd.weight", o.embd_type, {e, n_vocab},
               4.0f / std::sqrt(static_cast<float>(e)), 0.0f);
    if (!o.replica_2b4t) add_floats("output_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
    for (int64_t l = 0; l < o.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        add_floats(b + "attn_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
        add_projection(b + "attn_q.weight", e, e);
        add_projection(b + "attn_k.weight", e, kv);
        add_projection(b + "attn_v.weight", e, kv);
        if (sub_norms) add_floats(b + "attn_sub_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
        add_projection(b + "attn_output.weight", e, e);
        add_floats(b + "ffn_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
        add_projection(b + "ffn_gate.weight", e, o.n_ff);
        add_projection(b + "ffn_up.weight", e, o.n_ff);
        if (sub_norms) add_floats(b + "ffn_sub_norm.weight", GgmlType::F32, {o.n_ff}, 0.05f, 1.0f);
        add_projection(b + "ffn_down.weight", o.n_ff, e);
    }
    if (o.replica_2b4t) add_floats("output_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
    w.write(path);
}

}  // namespace bitnet
