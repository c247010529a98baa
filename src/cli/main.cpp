#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "bitnet/error.h"
#include "cli/commands.h"
#include "core/atomic_file.h"

namespace {

// Ctrl-C or a kill while a file is being written must leave no temporary file behind.
void on_fatal_signal(int sig) {
    bitnet::remove_pending_temp_files();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

int run(int argc, char** argv) {
    CLI::App app{"bitnet: inference for 1.58-bit BitNet models and GGUF tools", "bitnet"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "bitnet 0.1.0");
    bitnet::cli::register_inspect(app);
    bitnet::cli::register_synth(app);
    bitnet::cli::register_quantize(app);
    bitnet::cli::register_convert(app);
    bitnet::cli::register_pull(app);
    bitnet::cli::register_ls(app);
    bitnet::cli::register_tokenize(app);
    bitnet::cli::register_detokenize(app);
    bitnet::cli::register_run(app);
    bitnet::cli::register_score(app);
    bitnet::cli::register_bench(app);
    bitnet::cli::register_chat(app);
    bitnet::cli::register_template(app);
    bitnet::cli::register_serve(app);
    // llama.cpp's single-dash long options (system prompt, slots, hub, KV cache types); CLI11
    // only knows --long.
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::string& a : args) {
        if (a == "-sys") a = "--system-prompt";
        if (a == "-sysf") a = "--system-prompt-file";
        if (a == "-np") a = "--parallel";
        if (a == "-hf" || a == "-hfr") a = "--hf-repo";
        if (a == "-hff") a = "--hf-file";
        if (a == "-ctk" || a.starts_with("-ctk=")) a = "--cache-type-k" + a.substr(4);
        if (a == "-ctv" || a.starts_with("-ctv=")) a = "--cache-type-v" + a.substr(4);
    }
    std::reverse(args.begin(), args.end());
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "error: {} (see --help)\n", e.what());
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGINT, on_fatal_signal);
    std::signal(SIGTERM, on_fatal_signal);
    std::signal(SIGHUP, on_fatal_signal);
    // A file size limit (ulimit -f) must be a write error we report, not a killed process.
    std::signal(SIGXFSZ, SIG_IGN);
    // Every failure becomes one line on stderr and exit status 1.
    try {
        return run(argc, argv);
    } catch (const std::bad_alloc&) {
        std::fputs("error: out of memory\n", stderr);
    } catch (const std::exception& e) {
        std::fputs("error: ", stderr);
        std::fputs(e.what(), stderr);
        std::fputs("\n", stderr);
    } catch (...) {
        std::fputs("error: unexpected failure\n", stderr);
    }
    return 1;
}
