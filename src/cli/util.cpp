#include <cctype>
#include <fstream>
#include <iterator>

#include <fmt/core.h>

#include "bitnet/error.h"
#include "cli/commands.h"

namespace bitnet::cli {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string process_escapes(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '\\' || i + 1 == in.size()) {
            out += in[i];
            continue;
        }
        const char c = in[++i];
        switch (c) {
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case '\'':
            case '"':
            case '\\':
                out += c;
                break;
            case 'x':
                // Exactly two hex digits, as llama.cpp; anything else stays as written.
                if (i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
                    out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
                    i += 2;
                } else {
                    out += "\\x";
                }
                break;
            default:
                out += '\\';
                out += c;
                break;
        }
    }
    return out;
}

void add_model_options(CLI::App* cmd, ModelArgs& a, const std::string& verbose_help) {
    cmd->add_option("-m,--model", a.model, "GGUF model file (or -hf ORG/NAME[:TAG])");
    add_hub_options(cmd, a.hf, true);
    cmd->add_option("-t,--threads", a.threads, "Threads (default: all)")
        ->check(CLI::Range(0, 1024));
    cmd->add_option("-c,--ctx-size", a.ctx,
                    "Context size in tokens (default: the model's, at most 4096)")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
    cmd->add_option("--i2s-layout", a.layout, "I2_S packing: auto, x86 or arm")
        ->capture_default_str();
    cmd->add_option("--dump-tensors", a.dump,
                    "Write every named intermediate to this folder (.npy)");
    cmd->add_option(
        "--head-type", a.head_type,
        "Requantize the output head at load: q8_0 or q6_k (0.53 or 0.41 of the bytes of "
        "an F16 head per token; the embedding lookup stays exact)");
    cmd->add_option("--cache-type-k", a.cache_type_k,
                    "KV cache type for K (also -ctk): f16, f32 or q8_0 (0.53 of f16's bytes)")
        ->capture_default_str();
    cmd->add_option("--cache-type-v", a.cache_type_v,
                    "KV cache type for V (also -ctv): f16, f32 or q8_0")
        ->capture_default_str();
    cmd->add_flag("-v,--verbose", a.verbose, verbose_help);
}

GgmlType parse_cache_type(const std::string& name, const char* option) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* t : {"f16", "f32", "q8_0"}) {
        if (lower == t) return *type_from_name(lower);
    }
    if (type_from_name(name))
        throw NotSupported(std::string(option) + " " + name +
                           " (the KV cache can be f16, f32 or q8_0)");
    throw Error(std::string(option) + " '" + name + "' is not one of f16, f32, q8_0");
}

I2sLayout parse_i2s_layout(const std::string& name) {
    if (name == "auto") return I2sLayout::Auto;
    if (name == "x86") return I2sLayout::X86;
    if (name == "arm") return I2sLayout::Arm;
    throw Error("--i2s-layout '" + name + "' is not one of auto, x86, arm");
}

GgmlType parse_weight_type(const std::string& name, const char* option) {
    static constexpr const char* kTargets[] = {"f32",  "f16",   "bf16",  "q8_0",  "q6_k", "q4_k",
                                               "q4_0", "tq1_0", "tq2_0", "iq2_s", "i2_s"};
    for (const char* t : kTargets) {
        if (name == t) return *type_from_name(name);
    }
    std::string list;
    for (const char* t : kTargets) list += (list.empty() ? "" : ", ") + std::string(t);
    throw Error(std::string(option) + " '" + name + "' is not one of " + list);
}

std::string mib(uint64_t bytes) {
    return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / 1048576.0);
}

ModelOptions model_options(const ModelArgs& a) {
    ModelOptions mo;
    mo.i2s_layout = parse_i2s_layout(a.layout);
    if (!a.head_type.empty()) {
        const auto t = type_from_name(a.head_type);
        if (!t) throw Error("--head-type '" + a.head_type + "' is not a ggml type name");
        mo.head_type = *t;
    }
    return mo;
}

std::shared_ptr<Model> load_model(const ModelArgs& a) {
    const ModelOptions mo = model_options(a);
    auto model = Model::load(model_path(a), mo);
    print_load_messages(*model, a.verbose);
    return model;
}

SessionOptions session_options(const ModelArgs& a) {
    SessionOptions so;
    so.n_ctx = a.ctx;
    so.threads = a.threads;
    so.dump_dir = a.dump;
    so.type_k = parse_cache_type(a.cache_type_k, "--cache-type-k");
    so.type_v = parse_cache_type(a.cache_type_v, "--cache-type-v");
    return so;
}

void print_load_messages(const Model& model, bool verbose) {
    for (const std::string& w : model.warnings()) fmt::print(stderr, "warning: {}\n", w);
    if (!verbose) return;
    fmt::print(stderr, "model: {}\n", model.describe());
    for (const std::string& a : model.assumptions()) fmt::print(stderr, "assumption: {}\n", a);
}

}  // namespace bitnet::cli
