#include <fmt/core.h>

#include "bitnet/error.h"
#include "bitnet/synth.h"
#include "cli/commands.h"

namespace bitnet::cli {

namespace {

GgmlType parse_type(const std::string& name) {
    const auto t = type_from_name(name);
    if (!t) throw Error("unknown tensor type '" + name + "'");
    return *t;
}

}  // namespace

void register_synth(CLI::App& app) {
    auto* cmd = app.add_subcommand("synth", "Write a model with real shapes and RANDOM weights");
    auto opts = std::make_shared<SynthOptions>();
    auto out = std::make_shared<std::string>();
    auto wtype = std::make_shared<std::string>("f16");
    auto etype = std::make_shared<std::string>("f16");
    cmd->add_option("-o,--out", *out, "Output GGUF file")->required();
    cmd->add_option("--arch", opts->architecture, "bitnet | bitnet-b1.58 | llama")
        ->capture_default_str();
    cmd->add_option("--vocab", opts->vocab_from, "Copy tokenizer metadata from this GGUF");
    cmd->add_option("--n-vocab", opts->n_vocab, "Vocabulary size (without --vocab)");
    cmd->add_option("--n-embd", opts->n_embd)->capture_default_str();
    cmd->add_option("--n-layer", opts->n_layer)->capture_default_str();
    cmd->add_option("--n-head", opts->n_head)->capture_default_str();
    cmd->add_option("--n-head-kv", opts->n_head_kv)->capture_default_str();
    cmd->add_option("--n-ff", opts->n_ff)->capture_default_str();
    cmd->add_option("--n-ctx", opts->n_ctx)->capture_default_str();
    cmd->add_option("--type", *wtype, "Projection weight type")->capture_default_str();
    cmd->add_option("--embd-type", *etype, "token_embd type")->capture_default_str();
    cmd->add_option("--seed", opts->seed)->capture_default_str();
    cmd->callback([=] {
        opts->weight_type = parse_type(*wtype);
        opts->embd_type = parse_type(*etype);
        write_synthetic_model(*opts, *out);
        fmt::print(stderr, "wrote {} ({} architecture, {} layers, RANDOM weights)\n", *out,
                   opts->architecture, opts->n_layer);
    });
}

}  // namespace bitnet::cli
