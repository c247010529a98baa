// `bitnet quantize IN.gguf OUT.gguf --type T`: convert a model's weight matrices.
#include <unistd.h>

#include <map>

#include <fmt/core.h>

#include "bitnet/convert.h"
#include "bitnet/error.h"
#include "cli/commands.h"

namespace bitnet::cli {

void register_quantize(CLI::App& app) {
    auto* cmd = app.add_subcommand("quantize", "Convert a model's weight matrices to another type");
    struct Args {
        std::string in, out, type, embd, output, fallback, layout = "auto", read_layout = "auto";
        int threads = 1;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("input", a->in, "Input GGUF")->required();
    cmd->add_option("output", a->out, "Output GGUF (written atomically)")->required();
    cmd->add_option("--type", a->type, "f32 f16 bf16 q8_0 q6_k q4_k q4_0 tq1_0 tq2_0 iq2_s i2_s")
        ->required();
    cmd->add_option("--embd-type", a->embd, "Type for token_embd.weight (default: unchanged)");
    cmd->add_option("--output-type", a->output, "Type for output.weight (default: unchanged)");
    cmd->add_option("--fallback", a->fallback, "Type for tensors whose rows do not fit --type");
    cmd->add_option("--i2s-layout", a->layout,
                    "I2_S packing to write: auto (the input's, else x86), x86 or arm")
        ->capture_default_str();
    cmd->add_option("--input-i2s-layout", a->read_layout,
                    "I2_S packing of the input: auto (as its metadata says, else x86), x86 or arm")
        ->capture_default_str();
    cmd->add_option("-t,--threads", a->threads, "Threads")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->callback([a] {
        ConvertOptions o;
        o.type = parse_weight_type(a->type, "--type");
        if (!a->embd.empty()) o.embd_type = parse_weight_type(a->embd, "--embd-type");
        if (!a->output.empty()) o.output_type = parse_weight_type(a->output, "--output-type");
        if (!a->fallback.empty()) o.fallback = parse_weight_type(a->fallback, "--fallback");
        o.i2s_layout = parse_i2s_layout(a->layout);
        o.i2s_read_layout = parse_i2s_layout(a->read_layout);
        o.threads = a->threads;
        const bool tty = ::isatty(STDERR_FILENO) != 0;
        auto progress = [tty](size_t done, size_t total, const std::string& name) {
            if (!tty) return;
            fmt::print(stderr, "\r\033[K[{}/{}] {}", done, total, name);
            if (done == total) fmt::print(stderr, "\r\033[K");
        };
        const ConvertReport r = convert_model(a->in, a->out, o, progress);
        uint64_t elements = 0, before = 0, after = 0;
        for (const ConvertedTensor& t : r.tensors) {
            elements += t.elements;
            before += t.bytes_before;
            after += t.bytes_after;
        }
        const auto bpw = [&](uint64_t b) {
            return elements == 0 ? 0.0
                                 : 8.0 * static_cast<double>(b) / static_cast<double>(elements);
        };
        // Per resulting type: with --fallback, some or all may not be --type.
        std::map<std::string, uint64_t> per_type;
        for (const ConvertedTensor& t : r.tensors) {
            if (!t.rewritten) continue;
            std::string key(type_name(t.to));
            if (o.fallback && t.to == *o.fallback && t.to != o.type) key += " (fallback)";
            if (t.to == t.from) key += " (repacked)";
            ++per_type[key];
        }
        std::string summary;
        for (const auto& [name, n] : per_type)
            summary += fmt::format("{}{} to {}", summary.empty() ? "" : ", ", n, name);
        fmt::print(stderr, "converted {} of {} tensors{}{} in {:.2f} s ({} threads)\n", r.converted,
                   r.tensors.size(), summary.empty() ? "" : ": ", summary, r.seconds, o.threads);
        fmt::print(stderr, "tensor data: {} -> {} ({:.4f} -> {:.4f} bits per weight)\n",
                   mib(before), mib(after), bpw(before), bpw(after));
        fmt::print(stderr, "file:        {} -> {}, wrote {}\n", mib(r.file_bytes_before),
                   mib(r.file_bytes_after), a->out);
    });
}

}  // namespace bitnet::cli
