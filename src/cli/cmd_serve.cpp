// `bitnet serve`: the OpenAI-compatible HTTP server (src/server/).
#include <algorithm>
#include <string>

#include <fmt/core.h>

#include "bitnet/error.h"
#include "cli/commands.h"
#include "server/server.h"

namespace bitnet::cli {

namespace {

struct ServeArgs {
    ModelArgs m;
    server::ServerOptions o;
    std::string api_key_file;
    std::string cors;
    bool no_webui = false;
};

std::string trimmed(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
}

void run_serve(ServeArgs& a) {
    server::ServerOptions o = a.o;
    o.model_path = model_path(a.m);
    if (o.alias.empty() && !a.m.hf.repo.empty()) o.alias = a.m.hf.repo;
    o.model_options = model_options(a.m);
    o.threads = a.m.threads;
    o.n_ctx = a.m.ctx;
    o.type_k = parse_cache_type(a.m.cache_type_k, "--cache-type-k");
    o.type_v = parse_cache_type(a.m.cache_type_v, "--cache-type-v");
    o.verbose = a.m.verbose;
    if (!a.api_key_file.empty()) {
        o.api_key = trimmed(read_text_file(a.api_key_file));
        if (o.api_key.empty()) throw Error(a.api_key_file + ": the API key file is empty");
    }
    if (!a.cors.empty()) {
        size_t start = 0;
        while (start <= a.cors.size()) {
            const size_t end = std::min(a.cors.find(',', start), a.cors.size());
            const std::string origin = trimmed(a.cors.substr(start, end - start));
            if (!origin.empty()) o.cors_origins.push_back(origin);
            start = end + 1;
        }
    }
    o.webui = !a.no_webui;
    if (o.n_predict == 0) throw Error("-n 0 would answer nothing: give -1 or a positive count");
    validate(o.sampling);
    server::run_server(o);
}

}  // namespace

void register_serve(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "serve",
        "OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, "
        "/tokenize, /detokenize, /apply-template, /props, /slots, /metrics, /health and a chat "
        "page at /; continuous batching over -np slots");
    auto a = std::make_shared<ServeArgs>();
    add_model_options(cmd, a->m, "Log what was assumed about the file");
    cmd->get_option("-c")->description(
        "Context of EACH slot in tokens (default: the model's, at most 4096); the KV memory is "
        "-np times this");
    cmd->add_option("--host", a->o.host, "Address to listen on")->capture_default_str();
    cmd->add_option("--port", a->o.port, "Port (0: any free port, printed at start)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--parallel", a->o.n_slots,
                    "Slots: requests served at once, batched together (also -np)")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    cmd->add_option("-b,--batch-size", a->o.n_batch, "Tokens per forward pass")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{1}, int64_t{65536}));
    auto* key =
        cmd->add_option("--api-key", a->o.api_key,
                        "Require 'Authorization: Bearer KEY' (all but /health and the page)");
    auto* keyf = cmd->add_option("--api-key-file", a->api_key_file, "Read the API key from a file");
    key->excludes(keyf);
    cmd->add_option("--alias", a->o.alias, "Model id clients see (default: the file name)");
    add_chat_template_options(cmd, a->o.chat_template);
    cmd->add_option("--max-queue", a->o.max_queue,
                    "Requests that may wait for a slot; beyond them: 503 with Retry-After")
        ->capture_default_str()
        ->check(CLI::Range(0, 100000));
    cmd->add_option("--timeout", a->o.timeout,
                    "Seconds a client may stay silent while sending its request or reading")
        ->capture_default_str()
        ->check(CLI::Range(1, 86400));
    cmd->add_option("--shutdown-grace", a->o.shutdown_grace,
                    "Seconds running requests get to finish after SIGTERM/SIGINT")
        ->capture_default_str()
        ->check(CLI::Range(0, 3600));
    cmd->add_option("--max-body", a->o.max_body, "Largest request body in bytes (else 413)")
        ->capture_default_str()
        ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
    cmd->add_option("--threads-http", a->o.max_http_threads,
                    "Most HTTP worker threads (the pool grows to this)")
        ->capture_default_str()
        ->check(CLI::Range(4, 65536));
    cmd->add_flag("--metrics", a->o.metrics, "Serve Prometheus metrics at /metrics");
    cmd->add_option("--cors-origins", a->cors,
                    "Comma-separated origins allowed to call from a browser ('*': any); none by "
                    "default");
    cmd->add_flag("--no-webui", a->no_webui, "Do not serve the chat page at /");
    cmd->add_option("-n,--n-predict", a->o.n_predict,
                    "Default max_tokens (-1: until the end of the answer or of the context)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30));
    cmd->add_option("--temp", a->o.sampling.temperature, "Default temperature")
        ->capture_default_str();
    cmd->add_option("--top-k", a->o.sampling.top_k, "Default top-k (0: off)")
        ->capture_default_str();
    cmd->add_option("--top-p", a->o.sampling.top_p, "Default top-p (1: off)")
        ->capture_default_str();
    cmd->add_option("--min-p", a->o.sampling.min_p, "Default min-p (0: off)")
        ->capture_default_str();
    cmd->add_option("--repeat-penalty", a->o.sampling.repeat_penalty,
                    "Default repetition penalty (1: off)")
        ->capture_default_str();
    cmd->callback([a] { run_serve(*a); });
}

}  // namespace bitnet::cli
