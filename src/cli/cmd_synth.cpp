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
    auto replica = std::make_shared<bool>(false);
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
    cmd->add_option("--rope-freq-base", opts->rope_freq_base)->capture_default_str();
    cmd->add_flag("--ternary", opts->ternary,
                  "Ternary projection weights (identical in TQ1_0, TQ2_0 and I2_S)");
    cmd->add_flag("--projection-scales", opts->projection_scales, "Add blk.N.<proj>.scale tensors");
    cmd->add_flag("--replica-2b4t", *replica,
                  "Microsoft's 2B-4T file layout (released shapes unless --n-* say otherwise; "
                  "needs --vocab)");
    cmd->callback([=] {
        opts->weight_type = parse_type(*wtype);
        opts->embd_type = parse_type(*etype);
        if (*replica) {
            // Released shapes and types, except where an option was given explicitly.
            SynthOptions r = replica_2b4t_defaults();
            auto given = [&](const char* name) { return cmd->count(name) > 0; };
            r.vocab_from = opts->vocab_from;
            r.seed = opts->seed;
            if (given("--n-embd")) r.n_embd = opts->n_embd;
            if (given("--n-layer")) r.n_layer = opts->n_layer;
            if (given("--n-head")) r.n_head = opts->n_head;
            if (given("--n-head-kv")) r.n_head_kv = opts->n_head_kv;
            if (given("--n-ff")) r.n_ff = opts->n_ff;
            if (given("--n-ctx")) r.n_ctx = opts->n_ctx;
            if (given("--type")) r.weight_type = opts->weight_type;
            if (given("--embd-type")) r.embd_type = opts->embd_type;
            *opts = r;
        }
        write_synthetic_model(*opts, *out);
        fmt::print(stderr, "wrote {} ({} architecture, {} layers, RANDOM weights)\n", *out,
                   opts->architecture, opts->n_layer);
    });
}

}  // namespace bitnet::cli
