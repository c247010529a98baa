#include "bitnet/synth.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/convert.h"
#include "bitnet/quant.h"

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
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
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
    quantize_tensor(type, v.data(), n / row_length, row_length, out);
    return out;
}

void validate(const SynthOptions& o) {
    if (o.architecture != "bitnet" && o.architecture != "bitnet-b1.58" && o.architecture != "llama") {
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
}

}  // namespace

void write_synthetic_model(const SynthOptions& o, const std::string& path) {
    validate(o);
    GgufWriter w;
    GgufMetadata& m = w.metadata();
    const std::string& a = o.architecture;
    m.set("general.architecture", a);
    m.set("general.name", "synthetic-" + a);
    m.set("general.description",
          std::string("synthetic model with RANDOM weights written by bitnet synth; its output is "
                      "meaningless"));
    m.set<uint32_t>("general.file_type", file_type_for(o.weight_type));
    m.set<uint32_t>(a + ".context_length", static_cast<uint32_t>(o.n_ctx));
    m.set<uint32_t>(a + ".embedding_length", static_cast<uint32_t>(o.n_embd));
    m.set<uint32_t>(a + ".block_count", static_cast<uint32_t>(o.n_layer));
    m.set<uint32_t>(a + ".feed_forward_length", static_cast<uint32_t>(o.n_ff));
    m.set<uint32_t>(a + ".attention.head_count", static_cast<uint32_t>(o.n_head));
    m.set<uint32_t>(a + ".attention.head_count_kv", static_cast<uint32_t>(o.n_head_kv));
    m.set<uint32_t>(a + ".rope.dimension_count", static_cast<uint32_t>(o.n_embd / o.n_head));
    m.set<float>(a + ".rope.freq_base", o.rope_freq_base);
    m.set<float>(a + ".attention.layer_norm_rms_epsilon", o.rms_eps);

    int64_t n_vocab = o.n_vocab;
    if (!o.vocab_from.empty()) {
        const GgufFile vocab = GgufFile::open(o.vocab_from);
        for (const auto& [key, value] : vocab.metadata().entries()) {
            if (key.rfind("tokenizer.", 0) == 0) m.set(key, value);
        }
        const auto& tokens = vocab.metadata().get_array<std::string>("tokenizer.ggml.tokens");
        if (n_vocab == 0) n_vocab = static_cast<int64_t>(tokens.size());
        if (n_vocab != static_cast<int64_t>(tokens.size())) {
            throw Error("n_vocab " + std::to_string(n_vocab) + " differs from the " +
                        std::to_string(tokens.size()) + " tokens of " + o.vocab_from);
        }
    }
    if (n_vocab <= 0) throw Error("n_vocab is required when no vocabulary file is given");
    m.set<uint32_t>(a + ".vocab_size", static_cast<uint32_t>(n_vocab));

    // Tensors are generated lazily, one at a time in file order, from one stream: a seed fixes
    // every weight and a large model never sits in memory whole.
    Gaussian g(o.seed);
    auto add = [&](const std::string& name, GgmlType type, std::vector<int64_t> ne, float scale,
                   float offset) {
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
    const int64_t e = o.n_embd;
    const int64_t kv = e / o.n_head * o.n_head_kv;
    const bool sub_norms = a != "llama";
    add("token_embd.weight", o.embd_type, {e, n_vocab}, 1.0f, 0.0f);
    add("output_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
    const float ws = 1.0f / std::sqrt(static_cast<float>(e));
    const float fs = 1.0f / std::sqrt(static_cast<float>(o.n_ff));
    for (int64_t l = 0; l < o.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        add(b + "attn_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
        add(b + "attn_q.weight", o.weight_type, {e, e}, ws, 0.0f);
        add(b + "attn_k.weight", o.weight_type, {e, kv}, ws, 0.0f);
        add(b + "attn_v.weight", o.weight_type, {e, kv}, ws, 0.0f);
        if (sub_norms) add(b + "attn_sub_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
        add(b + "attn_output.weight", o.weight_type, {e, e}, ws, 0.0f);
        add(b + "ffn_norm.weight", GgmlType::F32, {e}, 0.05f, 1.0f);
        add(b + "ffn_gate.weight", o.weight_type, {e, o.n_ff}, ws, 0.0f);
        add(b + "ffn_up.weight", o.weight_type, {e, o.n_ff}, ws, 0.0f);
        if (sub_norms) add(b + "ffn_sub_norm.weight", GgmlType::F32, {o.n_ff}, 0.05f, 1.0f);
        add(b + "ffn_down.weight", o.weight_type, {o.n_ff, e}, fs, 0.0f);
    }
    w.write(path);
}

}  // namespace bitnet
