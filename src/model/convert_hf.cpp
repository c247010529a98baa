// Hugging Face checkpoint folders to GGUF. The rules (tensor names, packing, scale conventions,
// absmean) are in include/bitnet/convert_hf.h; MODELS.md has the sources.
#include "bitnet/convert_hf.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "bitnet/convert.h"
#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/model.h"
#include "bitnet/safetensors.h"
#include "bitnet/tokenizer.h"

namespace bitnet {

namespace {

// general.name: the folder's name, or NAME for a hub cache snapshot
// (.../models--ORG--NAME/snapshots/COMMIT), whose own name is a commit id.
std::string model_name(const std::filesystem::path& folder) {
    std::filesystem::path p = folder.lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    const std::string repo = p.parent_path().parent_path().filename().string();
    if (p.parent_path().filename() == "snapshots" && repo.rfind("models--", 0) == 0) {
        return repo.substr(repo.rfind("--") + 2);
    }
    return p.filename().string();
}

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error(p.string() + ": cannot open");
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        throw Error(p.string() + ": not valid JSON: " + e.what());
    }
}

enum class Kind { BitnetB158, Bitnet, Llama };

struct HfConfig {
    std::string cls;
    Kind kind = Kind::Llama;
    int64_t hidden = 0, layers = 0, heads = 0, heads_kv = 0, ff = 0, ctx = 0, vocab = 0;
    double eps = 1e-5, rope_theta = 10000.0;
    bool tied = false;
    bool packed = false;        // quantization_config.quant_method == "bitnet"
    bool scale_divides = true;  // BitLinear; AutoBitLinear multiplies
    std::string linear_class;   // as written, or "" when absent
};

int64_t positive(const json& c, const char* key, const std::string& where, int64_t max) {
    if (!c.contains(key)) throw Error(where + "missing \"" + key + "\"");
    const json& v = c[key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > max) {
        throw Error(where + "\"" + key + "\" = " + v.dump() + " is not an integer in 1.." +
                    std::to_string(max));
    }
    return v.get<int64_t>();
}

double number(const json& c, const char* key, double fallback, const std::string& where) {
    if (!c.contains(key) || c[key].is_null()) return fallback;
    if (!c[key].is_number()) throw Error(where + "\"" + key + "\" is not a number");
    return c[key].get<double>();
}

HfConfig read_config_json(const json& c, const std::string& where);

HfConfig read_config(const fs::path& dir) {
    const fs::path p = dir / "config.json";
    const json c = read_json(p);
    try {
        return read_config_json(c, p.string() + ": ");
    } catch (const json::exception& e) {
        // A field of the wrong JSON type.
        throw Error(p.string() + ": " + e.what());
    }
}

HfConfig read_config_json(const json& c, const std::string& where) {
    if (!c.is_object()) throw Error(where + "not a JSON object");
    HfConfig h;
    if (!c.contains("architectures") || !c["architectures"].is_array() ||
        c["architectures"].empty() || !c["architectures"][0].is_string()) {
        throw Error(where + "no \"architectures\" list naming the model class");
    }
    h.cls = c["architectures"][0].get<std::string>();
    const std::string act = c.value("hidden_act", std::string("silu"));
    const json q = c.value("quantization_config", json());
    if (q.is_object()) {
        const std::string method = q.value("quant_method", std::string());
        if (method != "bitnet") {
            throw NotSupported(where + "quantization_config.quant_method '" + method +
                               "' (only BitNet's packed ternary weights are read)");
        }
        h.packed = true;
        h.linear_class = q.value("linear_class", std::string());
        if (h.linear_class.empty() || h.linear_class == "bitlinear") {
            h.scale_divides = true;
        } else if (h.linear_class == "autobitlinear") {
            h.scale_divides = false;
        } else {
            throw NotSupported(where + "quantization_config.linear_class '" + h.linear_class + "'");
        }
        const std::string mode = q.value("quantization_mode", std::string("offline"));
        if (mode == "online") {
            // Float master weights quantized on the fly (AutoBitLinear's online mode): the
            // absmean path, as for a checkpoint without quantization_config.
            h.packed = false;
        } else if (mode != "offline") {
            throw NotSupported(where + "quantization_config.quantization_mode '" + mode + "'");
        }
        if (q.value("use_rms_norm", false)) {
            throw NotSupported(where +
                               "quantization_config.use_rms_norm (an RMSNorm inside every "
                               "BitLinear)");
        }
    }
    if (h.cls == "BitNetForCausalLM") {
        if (act == "relu2") {
            h.kind = Kind::BitnetB158;
        } else if (act == "silu") {
            h.kind = Kind::Bitnet;
        } else {
            throw NotSupported(where + "BitNetForCausalLM with hidden_act '" + act + "'");
        }
    } else if (h.cls == "BitnetForCausalLM") {
        if (act != "silu")
            throw NotSupported(where + "BitnetForCausalLM with hidden_act '" + act + "'");
        h.kind = Kind::Bitnet;
    } else if (h.cls == "LlamaForCausalLM") {
        if (h.packed) {
            throw NotSupported(where +
                               "a Llama checkpoint with packed BitNet weights (its forward "
                               "pass is not one this engine can verify)");
        }
        if (act != "silu")
            throw NotSupported(where + "LlamaForCausalLM with hidden_act '" + act + "'");
        h.kind = Kind::Llama;
    } else {
        throw NotSupported(where + "model class '" + h.cls +
                           "' (BitNetForCausalLM, BitnetForCausalLM and LlamaForCausalLM are "
                           "converted)");
    }
    h.hidden = positive(c, "hidden_size", where, 1 << 16);
    h.layers = positive(c, "num_hidden_layers", where, 1024);
    h.heads = positive(c, "num_attention_heads", where, 1024);
    h.heads_kv = c.contains("num_key_value_heads") && !c["num_key_value_heads"].is_null()
                     ? positive(c, "num_key_value_heads", where, 1024)
                     : h.heads;
    h.ff = positive(c, "intermediate_size", where, 1 << 20);
    h.ctx = positive(c, "max_position_embeddings", where, 1 << 24);
    h.vocab = positive(c, "vocab_size", where, 1 << 24);
    h.eps = number(c, "rms_norm_eps", 1e-6, where);
    h.rope_theta = number(c, "rope_theta", 10000.0, where);
    h.tied = c.value("tie_word_embeddings", h.kind == Kind::BitnetB158);
    if (h.hidden % h.heads != 0 || h.heads % h.heads_kv != 0 || (h.hidden / h.heads) % 2 != 0) {
        throw Error(where + "hidden_size " + std::to_string(h.hidden) + ", " +
                    std::to_string(h.heads) + " heads and " + std::to_string(h.heads_kv) +
                    " KV heads do not make whole, even heads");
    }
    if (c.contains("head_dim") && !c["head_dim"].is_null() &&
        c["head_dim"] != json(h.hidden / h.heads)) {
        throw NotSupported(where + "head_dim " + c["head_dim"].dump() +
                           " other than hidden_size / "
                           "num_attention_heads");
    }
    if (c.contains("rope_scaling") && !c["rope_scaling"].is_null()) {
        throw NotSupported(where + "rope_scaling " + c["rope_scaling"].dump());
    }
    if (c.value("attention_bias", false) || c.value("mlp_bias", false)) {
        throw NotSupported(where + "attention or MLP biases");
    }
    return h;
}

const char* arch_name(Kind k) {
    switch (k) {
        case Kind::BitnetB158:
            return "bitnet-b1.58";
        case Kind::Bitnet:
            return "bitnet";
        case Kind::Llama:
            return "llama";
    }
    return "?";
}

bool is_ternary_type(GgmlType t) {
    return t == GgmlType::I2_S || t == GgmlType::TQ1_0 || t == GgmlType::TQ2_0;
}

// Which checkpoint tensors were used; what is left over at the end is an error.
class Checkpoint {
  public:
    explicit Checkpoint(const std::string& dir)
        : dir_(dir), st_(SafetensorsCheckpoint::open_dir(dir)) {}

    // The tensor, marked used; the first of `names` that exists (older spellings after the
    // current one). Throws naming them all when none does.
    const StTensor& take(std::initializer_list<std::string> names) {
        for (const std::string& n : names) {
            if (const StTensor* t = st_.find(n)) {
                used_.insert(t->name);
                return *t;
            }
        }
        std::string list;
        for (const std::string& n : names) list += (list.empty() ? "" : " or ") + n;
        throw Error(dir_ + ": missing tensor " + list);
    }
    const StTensor* maybe(const std::string& name) {
        const StTensor* t = st_.find(name);
        if (t != nullptr) used_.insert(name);
        return t;
    }
    std::vector<std::string> unused() const {
        std::vector<std::string> out;
        for (const StTensor* t : st_.tensors()) {
            const bool rotary = t->name.size() > 9 && t->name.ends_with("inv_freq");
            if (used_.count(t->name) == 0 && !rotary) out.push_back(t->name);
        }
        return out;
    }

  private:
    std::string dir_;
    SafetensorsCheckpoint st_;
    std::set<std::string> used_;
};

void expect_shape(const StTensor& t, std::initializer_list<int64_t> shape) {
    if (t.shape != std::vector<int64_t>(shape)) {
        std::string want = "[", got = "[";
        for (int64_t d : shape) want += (want.size() > 1 ? ", " : "") + std::to_string(d);
        for (int64_t d : t.shape) got += (got.size() > 1 ? ", " : "") + std::to_string(d);
        throw Error("checkpoint: tensor '" + t.name + "' has shape " + got + "], expected " + want +
                    "]");
    }
}

void expect_float(const StTensor& t) {
    if (t.dtype != StDtype::F32 && t.dtype != StDtype::F16 && t.dtype != StDtype::BF16) {
        throw Error("checkpoint: tensor '" + t.name + "' is " + st_dtype_name(t.dtype) +
                    ", expected F32, F16 or BF16");
    }
}

// absmean to ternary, as llama.cpp's converter computes it (float32, iscale = 1 / mean|W|
// clamped at 1e-5, round half to even, weight t / iscale).
void absmean_ternary(std::vector<float>& w) {
    double sum = 0.0;
    for (float x : w) sum += std::fabs(static_cast<double>(x));
    const float mean = std::max(static_cast<float>(sum / static_cast<double>(w.size())), 1e-5f);
    const float iscale = 1.0f / mean;
    for (float& x : w) {
        const float t = std::clamp(std::nearbyint(x * iscale), -1.0f, 1.0f);
        x = t / iscale;
    }
}

bool all_ternary_times_one_scale(const std::vector<float>& w) {
    float s = 0.0f;
    for (float x : w) {
        const float a = std::fabs(x);
        if (a == 0.0f) continue;
        if (s == 0.0f) s = a;
        if (a != s) return false;
    }
    return true;
}

// Llama's Q and K rows: Hugging Face's rotate-half order to GGML's interleaved pairs
// (convert_hf_to_gguf.py's permute): head h, half j, index i -> row h·hd + 2i + j.
std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols,
                                int64_t heads) {
    std::vector<float> out(w.size());
    const int64_t hd = rows / heads;
    for (int64_t h = 0; h < heads; ++h) {
        for (int64_t j = 0; j < 2; ++j) {
            for (int64_t i = 0; i < hd / 2; ++i) {
                const int64_t from = h * hd + j * (hd / 2) + i, to = h * hd + 2 * i + j;
                std::copy_n(w.begin() + from * cols, cols, out.begin() + to * cols);
            }
        }
    }
    return out;
}

struct Plan {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;                     // GGUF order: ne[0] = row length
    std::function<std::vector<float>()> values;  // rows x row length, produced when written
};

}  // namespace

HfConvertReport convert_hf_checkpoint(const std::string& dir, const std::string& out,
                                      const HfConvertOptions& o,
                                      const std::function<void(size_t, size_t)>& progress) {
    const auto start = std::chrono::steady_clock::now();
    const fs::path root(dir);
    if (!fs::is_directory(root)) throw Error(dir + ": not a folder");
    const HfConfig cfg = read_config(root);
    HfConvertReport report;
    report.checkpoint_class = cfg.cls;
    report.architecture = arch_name(cfg.kind);
    if (!o.architecture.empty() && o.architecture != report.architecture) {
        throw Error("--arch " + o.architecture + ": this " + cfg.cls + " checkpoint is the " +
                    report.architecture +
                    " architecture; writing it as another would compute a "
                    "different function");
    }
    const bool bitnet = cfg.kind != Kind::Llama;
    // I2_S is Microsoft's format for its own architecture; the SiLU family goes to TQ2_0, which
    // llama.cpp runs too.
    const GgmlType type = o.type.value_or(cfg.kind == Kind::BitnetB158 ? GgmlType::I2_S
                                          : bitnet                     ? GgmlType::TQ2_0
                                                                       : GgmlType::F16);
    for (const auto& [t, option] :
         {std::pair{o.embd_type, "--embd-type"}, std::pair{o.output_type, "--output-type"}}) {
        if (t && is_ternary_type(*t)) {
            throw Error(std::string(option) + " " + std::string(type_name(*t)) +
                        ": embeddings and the output head are not ternary; a ternary type would "
                        "keep only their signs (use f16, bf16, f32 or q8_0)");
        }
    }
    if (!bitnet && is_ternary_type(type)) {
        throw Error("--type " + std::string(type_name(type)) +
                    ": a float Llama checkpoint would "
                    "lose its weights in a ternary type (use f16, bf16, f32 or q8_0)");
    }
    if (type == GgmlType::I2_S && cfg.kind != Kind::BitnetB158) {
        throw Error("--type i2_s: I2_S is for Microsoft's bitnet-b1.58 architecture; this " +
                    cfg.cls + " checkpoint is " + report.architecture + " (use tq2_0 or tq1_0)");
    }
    for (GgmlType t :
         {type, o.embd_type.value_or(GgmlType::F16), o.output_type.value_or(GgmlType::F16)}) {
        if (!can_quantize(t) && t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16) {
            throw NotSupported("writing " + std::string(type_name(t)));
        }
    }

    // Tokenizer first: it is the cheapest thing to get wrong.
    const fs::path tok_path = root / "tokenizer.json";
    if (!fs::exists(tok_path)) throw Error(dir + ": no tokenizer.json");
    const Tokenizer tok = Tokenizer::from_json_file(tok_path.string());
    if (static_cast<int64_t>(tok.size()) > cfg.vocab) {
        throw Error(tok_path.string() + ": " + std::to_string(tok.size()) +
                    " tokens, more than the model's vocab_size " + std::to_string(cfg.vocab));
    }

    Checkpoint ck(dir);
    const int64_t e = cfg.hidden, kv = e / cfg.heads * cfg.heads_kv, ff = cfg.ff;
    std::vector<Plan> plans;
    auto float_tensor = [](const StTensor& t) { return [&t] { return st_to_float(t); }; };

    // Projections: [out, in] in the checkpoint; GGUF ne {in, out}.
    auto projection = [&](const std::string& hf, const std::string& gguf, int64_t out_dim,
                          int64_t in_dim, int64_t permute_heads) {
        Plan p{gguf, type, {in_dim, out_dim}, {}};
        if (cfg.packed) {
            const StTensor& w = ck.take({hf + ".weight"});
            if (w.dtype != StDtype::U8) {
                throw Error("checkpoint: tensor '" + w.name + "' is " + st_dtype_name(w.dtype) +
                            "; quantization_config says packed ternary weights (U8)");
            }
            if (out_dim % 4 != 0)
                throw Error("checkpoint: '" + w.name + "': rows not a multiple of 4");
            expect_shape(w, {out_dim / 4, in_dim});
            const StTensor& s = ck.take({hf + ".weight_scale"});
            expect_float(s);
            if (s.elements() != 1) {
                throw Error("checkpoint: tensor '" + s.name + "' has " +
                            std::to_string(s.elements()) +
                            " values; one scale per matrix expected");
            }
            const float scale = st_to_float(s)[0];
            if (!std::isfinite(scale) || scale <= 0.0f) {
                throw Error("checkpoint: tensor '" + s.name + "' = " + std::to_string(scale) +
                            " is not a positive scale");
            }
            for (uint8_t byte : w.bytes) {
                // Code 3 (value 2) in any of the four fields: not a ternary weight.
                if ((byte & (byte >> 1) & 0x55) != 0) {
                    throw Error("checkpoint: tensor '" + w.name +
                                "' holds the code 3 (value 2), "
                                "not a ternary weight");
                }
            }
            const bool divides = cfg.scale_divides;
            p.values = [&w, scale, divides, out_dim, in_dim] {
                // transformers' unpack_weights: unpacked row i·R + r is bits 2i..2i+1 of packed
                // row r, minus one.
                const int64_t r_rows = out_dim / 4;
                std::vector<float> v(static_cast<size_t>(out_dim * in_dim));
                const float mag = divides ? 1.0f / scale : scale;
                for (int64_t i = 0; i < 4; ++i) {
                    for (int64_t r = 0; r < r_rows; ++r) {
                        const uint8_t* src = w.bytes.data() + r * in_dim;
                        float* dst = v.data() + (i * r_rows + r) * in_dim;
                        for (int64_t c = 0; c < in_dim; ++c) {
                            const int code = (src[c] >> (2 * i)) & 3;  // 0..2 (checked above)
                            dst[c] = static_cast<float>(code - 1) * mag;
                        }
                    }
                }
                return v;
            };
        } else {
            const StTensor& w = ck.take({hf + ".weight"});
            expect_float(w);
            expect_shape(w, {out_dim, in_dim});
            const bool quantize = bitnet;
            p.values = [&w, quantize, out_dim, in_dim, permute_heads] {
                std::vector<float> v = st_to_float(w);
                // A master copy already ternary (t·scale) keeps its values: absmean would
                // rescale them by the fraction of non-zeros.
                if (quantize && !all_ternary_times_one_scale(v)) absmean_ternary(v);
                if (permute_heads > 0) v = permute_rows(v, out_dim, in_dim, permute_heads);
                return v;
            };
        }
        plans.push_back(std::move(p));
    };
    auto norm = [&](std::initializer_list<std::string> hf, const std::string& gguf, int64_t n) {
        const StTensor& t = ck.take(hf);
        expect_float(t);
        expect_shape(t, {n});
        plans.push_back({gguf, GgmlType::F32, {n}, float_tensor(t)});
    };

    const StTensor& embd = ck.take({"model.embed_tokens.weight"});
    expect_float(embd);
    expect_shape(embd, {cfg.vocab, e});
    plans.push_back({"token_embd.weight",
                     o.embd_type.value_or(GgmlType::F16),
                     {e, cfg.vocab},
                     float_tensor(embd)});
    const bool llama = cfg.kind == Kind::Llama;
    for (int64_t l = 0; l < cfg.layers; ++l) {
        const std::string h = "model.layers." + std::to_string(l) + ".";
        const std::string b = "blk." + std::to_string(l) + ".";
        norm({h + "input_layernorm.weight"}, b + "attn_norm.weight", e);
        projection(h + "self_attn.q_proj", b + "attn_q.weight", e, e, llama ? cfg.heads : 0);
        projection(h + "self_attn.k_proj", b + "attn_k.weight", kv, e, llama ? cfg.heads_kv : 0);
        projection(h + "self_attn.v_proj", b + "attn_v.weight", kv, e, 0);
        if (bitnet) {
            norm({h + "self_attn.attn_sub_norm.weight", h + "self_attn.inner_attn_ln.weight"},
                 b + "attn_sub_norm.weight", e);
        }
        projection(h + "self_attn.o_proj", b + "attn_output.weight", e, e, 0);
        norm({h + "post_attention_layernorm.weight"}, b + "ffn_norm.weight", e);
        projection(h + "mlp.gate_proj", b + "ffn_gate.weight", ff, e, 0);
        projection(h + "mlp.up_proj", b + "ffn_up.weight", ff, e, 0);
        if (bitnet) {
            norm({h + "mlp.ffn_sub_norm.weight", h + "mlp.ffn_layernorm.weight"},
                 b + "ffn_sub_norm.weight", ff);
        }
        projection(h + "mlp.down_proj", b + "ffn_down.weight", e, ff, 0);
    }
    norm({"model.norm.weight"}, "output_norm.weight", e);
    if (const StTensor* head = ck.maybe("lm_head.weight")) {
        if (cfg.tied) {
            throw Error(
                "checkpoint: lm_head.weight is present but config.json says "
                "tie_word_embeddings");
        }
        expect_float(*head);
        expect_shape(*head, {cfg.vocab, e});
        plans.push_back({"output.weight",
                         o.output_type.value_or(GgmlType::F16),
                         {e, cfg.vocab},
                         float_tensor(*head)});
        if (cfg.kind == Kind::Bitnet) {
            report.notes.push_back(
                "untied lm_head written as output.weight: this engine uses it; "
                "llama.cpp's bitnet architecture always multiplies by "
                "token_embd and refuses files that carry output.weight");
        }
    } else if (!cfg.tied) {
        throw Error("checkpoint: no lm_head.weight and tie_word_embeddings is false");
    } else if (o.output_type) {
        plans.push_back({"output.weight", *o.output_type, {e, cfg.vocab}, float_tensor(embd)});
        report.notes.push_back(
            "--output-type on a tied checkpoint: output.weight is a second copy of the " +
            std::to_string(cfg.vocab) + " x " + std::to_string(e) + " embedding matrix");
    }
    if (const auto left = ck.unused(); !left.empty()) {
        std::string list;
        for (size_t i = 0; i < left.size() && i < 8; ++i) list += (i ? ", " : "") + left[i];
        if (left.size() > 8) list += ", ... (" + std::to_string(left.size()) + " in all)";
        throw Error("checkpoint: tensors this converter does not know: " + list);
    }
    std::vector<std::string> misfits;
    for (const Plan& p : plans) {
        int64_t n = 1;
        for (int64_t d : p.ne) n *= d;
        bool fits = tensor_bytes(p.type, p.ne[0], n).has_value();
        if (fits && p.type == GgmlType::I2_S) {
            try {
                (void)resolve_i2s_layout(o.i2s_layout, n);  // the layout's block of 128 or 64
            } catch (const Error&) {
                fits = false;
            }
        }
        if (!fits) {
            misfits.push_back(p.name + " (rows of " + std::to_string(p.ne[0]) + " do not fit " +
                              std::string(type_name(p.type)) + " blocks of " +
                              std::to_string(type_info(p.type).block_size) + ")");
        }
    }
    if (!misfits.empty()) {
        std::string list;
        for (const std::string& m : misfits) list += "\n  " + m;
        throw Error("cannot convert:" + list);
    }

    // Metadata: the keys synth and llama.cpp's converter write for these architectures.
    GgufWriter w;
    GgufMetadata& m = w.metadata();
    const std::string a = report.architecture;
    m.set("general.architecture", a);
    m.set("general.name", model_name(root));
    m.set<uint32_t>("general.file_type", file_type_for(type));
    m.set<uint32_t>("general.quantization_version", 2);
    bool any_i2s = false;
    for (const Plan& p : plans) any_i2s = any_i2s || p.type == GgmlType::I2_S;
    if (any_i2s) m.set(kI2sLayoutKey, std::string(o.i2s_layout == I2sLayout::Arm ? "arm" : "x86"));
    m.set<uint32_t>(a + ".vocab_size", static_cast<uint32_t>(cfg.vocab));
    m.set<uint32_t>(a + ".context_length", static_cast<uint32_t>(cfg.ctx));
    m.set<uint32_t>(a + ".embedding_length", static_cast<uint32_t>(e));
    m.set<uint32_t>(a + ".block_count", static_cast<uint32_t>(cfg.layers));
    m.set<uint32_t>(a + ".feed_forward_length", static_cast<uint32_t>(ff));
    m.set<uint32_t>(a + ".attention.head_count", static_cast<uint32_t>(cfg.heads));
    m.set<uint32_t>(a + ".attention.head_count_kv", static_cast<uint32_t>(cfg.heads_kv));
    m.set<uint32_t>(a + ".rope.dimension_count", static_cast<uint32_t>(e / cfg.heads));
    m.set<float>(a + ".rope.freq_base", static_cast<float>(cfg.rope_theta));
    m.set<float>(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(cfg.eps));
    tok.write_gguf_metadata(m);
    if (static_cast<int64_t>(tok.size()) < cfg.vocab) {
        // As llama.cpp's converter: the rows beyond the tokenizer get [PAD{i}] tokens.
        auto texts = m.get_array<std::string>("tokenizer.ggml.tokens");
        auto types = m.get_array<int32_t>("tokenizer.ggml.token_type");
        for (auto i = static_cast<int64_t>(texts.size()); i < cfg.vocab; ++i) {
            texts.push_back("[PAD" + std::to_string(i) + "]");
            types.push_back(5);
        }
        m.set("tokenizer.ggml.tokens", GgufArray::of(texts));
        m.set("tokenizer.ggml.token_type", GgufArray::of(types));
        report.notes.push_back(std::to_string(cfg.vocab - static_cast<int64_t>(tok.size())) +
                               " embedding rows beyond the tokenizer's " +
                               std::to_string(tok.size()) + " tokens got [PAD] entries");
    }
    const fs::path tc = root / "tokenizer_config.json";
    if (fs::exists(tc)) {
        const json c = read_json(tc);
        const json t = c.value("chat_template", json());
        if (t.is_string()) {
            m.set("tokenizer.chat_template", t.get<std::string>());
        } else if (t.is_array()) {
            for (const json& named : t) {
                if (named.is_object() && named.value("name", "") == "default" &&
                    named.contains("template") && named["template"].is_string()) {
                    m.set("tokenizer.chat_template", named["template"].get<std::string>());
                }
            }
        }
    }
    const fs::path gc = root / "generation_config.json";
    if (fs::exists(gc)) {
        const json g = read_json(gc);
        const json eos = g.value("eos_token_id", json());
        std::vector<TokenId> ids;
        if (eos.is_number_integer()) ids.push_back(eos.get<TokenId>());
        if (eos.is_array()) {
            for (const json& v : eos)
                if (v.is_number_integer()) ids.push_back(v.get<TokenId>());
        }
        for (TokenId id : ids) {
            if (id < 0 || static_cast<size_t>(id) >= tok.size()) {
                throw Error(gc.string() + ": eos_token_id " + std::to_string(id) +
                            " is outside the vocabulary");
            }
            if (!tok.is_end_of_generation(id)) {
                report.notes.push_back("generation_config.json ends generation at token " +
                                       std::to_string(id) + " '" + tok.token_text(id) +
                                       "', which the GGUF vocabulary will not treat as an end "
                                       "unless its text is one llama.cpp recognises");
            }
        }
    }
    report.weights = !bitnet      ? "float weights"
                     : cfg.packed ? std::string("packed ternary weights; weight_scale ") +
                                        (cfg.scale_divides ? "divides (BitLinear)"
                                                           : "multiplies (AutoBitLinear)")
                                  : "float master weights, absmean-quantized to ternary";

    QuantOptions q;
    q.i2s_layout = o.i2s_layout;
    q.threads = o.threads;
    for (const Plan& p : plans) {
        w.add_tensor(p.name, p.type, p.ne, [&p, q](ByteSink& sink) {
            const std::vector<float> v = p.values();
            int64_t n = 1;
            for (int64_t d : p.ne) n *= d;
            std::vector<uint8_t> bytes(*tensor_bytes(p.type, p.ne[0], n));
            quantize_tensor(p.type, v.data(), n / p.ne[0], p.ne[0], bytes, q);
            sink.write(bytes.data(), bytes.size());
        });
    }
    if (progress) w.on_progress = progress;
    w.write(out);
    report.tensors = plans.size();
    report.file_bytes = fs::file_size(out);
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace bitnet
