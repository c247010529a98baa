// Subcommands of the `bitnet` executable. Each registers its options on the app and runs
// when selected; errors propagate as bitnet::Error to main(), which prints one line.
#pragma once

#include <CLI/CLI.hpp>

namespace bitnet::cli {

// The whole file (prompts, texts to tokenize or score); throws Error naming the path.
std::string read_text_file(const std::string& path);

void register_inspect(CLI::App& app);
void register_synth(CLI::App& app);
void register_quantize(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_detokenize(CLI::App& app);
void register_run(CLI::App& app);
void register_score(CLI::App& app);

}  // namespace bitnet::cli
