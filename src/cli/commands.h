// Subcommands of the `bitnet` executable. Each registers its options on the app and runs
// when selected; errors propagate as bitnet::Error to main(), which prints one line.
#pragma once

#include <string_view>

#include <CLI/CLI.hpp>

#include "bitnet/chat.h"
#include "bitnet/hub.h"
#include "bitnet/model.h"
#include "bitnet/session.h"

namespace bitnet::cli {

// The whole file (prompts, texts to tokenize or score); throws Error naming the path.
std::string read_text_file(const std::string& path);

// Backslash escapes in command-line text, as llama.cpp processes them in -p: \n \r \t \'
// \" \\ and \xHH (two hex digits); any other backslash stays as written. Prompt files (-f)
// are taken verbatim.
std::string process_escapes(std::string_view text);

// -hf/--hf-repo, --hf-file, --hf-revision and --offline: a model from the Hugging Face hub
// (through the cache; bitnet/hub.h).
struct HubArgs {
    std::string repo;  // ORG/NAME[:TAG]
    std::string file;
    std::string revision = "main";
    bool offline = false;
};
void add_hub_options(CLI::App* cmd, HubArgs& args, bool with_repo);
hub::HubOptions hub_options(const HubArgs& args);
// The GGUF file -m names, or the one -hf resolves to (downloaded when the cache lacks it);
// exactly one of the two must be given.
std::string model_path(const std::string& model, const HubArgs& hf);

// The options every command that loads a model shares (-m, -hf, -t, -c, --i2s-layout,
// --dump-tensors, --head-type, -v).
struct ModelArgs {
    std::string model;
    HubArgs hf;
    mutable std::string resolved;  // model_path(), once
    int threads = 0;
    int64_t ctx = 0;
    std::string layout = "auto";
    std::string dump;
    std::string head_type;
    std::string cache_type_k = "f16";
    std::string cache_type_v = "f16";
    bool verbose = false;
};
void add_model_options(CLI::App* cmd, ModelArgs& args, const std::string& verbose_help);
// The model file (-m, or -hf resolved once).
const std::string& model_path(const ModelArgs& args);
// The ModelOptions the flags ask for (throws Error for a bad --i2s-layout or --head-type).
ModelOptions model_options(const ModelArgs& args);
// Loads the model as the options say and prints its warnings (and, with -v, assumptions).
std::shared_ptr<Model> load_model(const ModelArgs& args);
// The session options the flags ask for (throws for a bad -ctk/-ctv).
SessionOptions session_options(const ModelArgs& args);
GgmlType parse_cache_type(const std::string& name, const char* option);

// Warnings about the file (always) and the assumptions taken loading it (with --verbose), on
// stderr.
void print_load_messages(const Model& model, bool verbose);

// --chat-template and --chat-template-file (chat and template share them).
void add_chat_template_options(CLI::App* cmd, ChatTemplateOptions& options);
// A --messages / /load file (parse_chat_input's JSON); throws Error naming the path.
ChatInput read_messages_file(const std::string& path);

// A weight type a converter can write (f32 f16 bf16 q8_0 q4_0 tq1_0 tq2_0 iq2_s i2_s); throws
// Error naming `option` and the choices.
GgmlType parse_weight_type(const std::string& name, const char* option);
// auto, x86 or arm.
I2sLayout parse_i2s_layout(const std::string& name);
std::string mib(uint64_t bytes);

void register_inspect(CLI::App& app);
void register_synth(CLI::App& app);
void register_quantize(CLI::App& app);
void register_convert(CLI::App& app);
void register_pull(CLI::App& app);
void register_ls(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_detokenize(CLI::App& app);
void register_run(CLI::App& app);
void register_score(CLI::App& app);
void register_bench(CLI::App& app);
void register_chat(CLI::App& app);
void register_template(CLI::App& app);
void register_serve(CLI::App& app);

}  // namespace bitnet::cli
