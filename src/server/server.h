// `bitnet serve`: an OpenAI-compatible HTTP server (SERVING.md) over the Scheduler's
// continuous batching. HTTP comes from Debian's cpp-httplib 0.11 (one well-kept header library
// that already builds everywhere we do; Boost.Beast would pull Boost and an async design for
// no gain at a handful of connections), with our own growing worker pool in place of its
// fixed one: each streaming or silent connection holds a worker, and a fixed pool would let
// them starve /health and the 503 of a full queue.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bitnet/chat.h"
#include "bitnet/model.h"
#include "bitnet/sampling.h"

namespace bitnet::server {

struct ServerOptions {
    std::string model_path;
    ModelOptions model_options;
    std::string host = "127.0.0.1";
    int port = 8080;    // 0: any free port (printed)
    int n_slots = 4;    // -np
    int64_t n_ctx = 0;  // per slot; 0: the model's training context, at most 4096
    int threads = 0;
    int64_t n_batch = 512;
    GgmlType type_k = GgmlType::F16;  // KV cache types (-ctk/-ctv)
    GgmlType type_v = GgmlType::F16;
    std::string api_key;  // "" = no key
    std::string alias;    // the model id clients see ("" = the file name)
    ChatTemplateOptions chat_template;
    int max_queue = 64;  // waiting requests beyond the slots
    int timeout = 600;   // seconds a client may stay silent while sending or reading
    bool metrics = false;
    std::vector<std::string> cors_origins;  // "*" allows any
    bool webui = true;
    size_t max_body = 16u << 20;  // bytes per request body
    int shutdown_grace = 10;      // seconds running requests get after SIGTERM/SIGINT
    int max_http_threads = 512;   // the worker pool grows up to this
    SamplingOptions sampling;     // defaults for requests
    int64_t n_predict = -1;       // default max_tokens (-1: until the end or the context)
    bool verbose = false;
};

// Listens at once (/health says 503 while loading), loads the model, serves until SIGTERM or
// SIGINT, then stops accepting, lets running requests finish for the grace period, cancels the
// rest and returns 0. Throws Error when the address cannot be bound or the model not loaded.
int run_server(const ServerOptions& options);

}  // namespace bitnet::server
