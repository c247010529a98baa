// `bitnet convert HF_DIR -o OUT.gguf`: a Hugging Face checkpoint folder to GGUF.
#include <unistd.h>

#include <fmt/core.h>

#include "bitnet/convert_hf.h"
#include "bitnet/error.h"
#include "cli/commands.h"

namespace bitnet::cli {

void register_convert(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "convert", "Convert a Hugging Face checkpoint folder (safetensors) to GGUF");
    struct Args {
        std::string dir, out, type, embd, output, arch, layout = "x86";
        int threads = 1;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("folder", a->dir,
                    "Folder with config.json, model.safetensors (or its shards), tokenizer.json")
        ->required();
    cmd->add_option("-o,--outfile", a->out, "Output GGUF (written atomically)")->required();
    cmd->add_option("--type", a->type,
                    "Projections: i2_s tq2_0 tq1_0 f16 bf16 f32 q8_0 (default: i2_s for "
                    "bitnet-b1.58, tq2_0 for bitnet, f16 for llama)");
    cmd->add_option("--embd-type", a->embd, "Type for token_embd.weight (default f16)");
    cmd->add_option("--output-type", a->output,
                    "Type for output.weight (default f16; on a tied model this adds a separate "
                    "output.weight)");
    cmd->add_option("--arch", a->arch,
                    "Expected architecture (bitnet-b1.58, bitnet, llama); refused if the "
                    "checkpoint is another");
    cmd->add_option("--i2s-layout", a->layout, "I2_S packing to write: x86 or arm")
        ->capture_default_str();
    cmd->add_option("-t,--threads", a->threads, "Threads")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->callback([a] {
        HfConvertOptions o;
        if (!a->type.empty()) o.type = parse_weight_type(a->type, "--type");
        if (!a->embd.empty()) o.embd_type = parse_weight_type(a->embd, "--embd-type");
        if (!a->output.empty()) o.output_type = parse_weight_type(a->output, "--output-type");
        o.architecture = a->arch;
        o.i2s_layout = parse_i2s_layout(a->layout);
        if (o.i2s_layout == I2sLayout::Auto) o.i2s_layout = I2sLayout::X86;
        o.threads = a->threads;
        const bool tty = ::isatty(STDERR_FILENO) != 0;
        auto progress = [tty](size_t done, size_t total) {
            if (!tty) return;
            fmt::print(stderr, "\r\033[K[{}/{}] tensors written", done, total);
            if (done == total) fmt::print(stderr, "\r\033[K");
        };
        const HfConvertReport r = convert_hf_checkpoint(a->dir, a->out, o, progress);
        fmt::print(stderr, "{} -> {} ({})\n", r.checkpoint_class, r.architecture, r.weights);
        for (const std::string& n : r.notes) fmt::print(stderr, "note: {}\n", n);
        fmt::print(stderr, "wrote {} tensors, {}, to {} in {:.2f} s\n", r.tensors,
                   mib(r.file_bytes), a->out, r.seconds);
    });
}

}  // namespace bitnet::cli
