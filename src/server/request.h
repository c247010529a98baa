// Request bodies of the OpenAI-compatible API, parsed and validated into generation
// parameters before anything is queued or streamed, so that every bad request is a real HTTP
// status with an OpenAI-shaped error (SERVING.md, "Errors"). Pure functions: the request
// fuzz target drives them with arbitrary JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "bitnet/chat.h"
#include "bitnet/sampling.h"

namespace bitnet::server {

// An error the client caused (or a state it must wait out), as OpenAI shapes it:
// {"error": {"message", "type", "param", "code"}} with `status`.
struct HttpError : std::runtime_error {
    HttpError(int status_, std::string type_, const std::string& message, std::string param_ = {},
              std::string code_ = {})
        : std::runtime_error(message),
          status(status_),
          type(std::move(type_)),
          param(std::move(param_)),
          code(std::move(code_)) {}
    int status;
    std::string type;   // invalid_request_error, not_supported_error, ...
    std::string param;  // the offending field ("" = null)
    std::string code;   // e.g. context_length_exceeded ("" = null)
};

HttpError bad_request(const std::string& param, const std::string& message);
HttpError not_supported(const std::string& param, const std::string& message);

// The error body for an HttpError.
Json error_body(const HttpError& e);

// A token id or a list of them, as /v1/completions accepts a prompt.
using Prompt = std::variant<std::string, std::vector<int64_t>>;

struct CompletionParams {
    bool chat = false;
    std::string model;  // as the client named it ("" = not given)
    bool stream = false;
    bool include_usage = false;     // stream_options.include_usage
    int64_t max_tokens = -1;        // -1: until end of generation or the context is full
    SamplingOptions sampling;       // the server's defaults, overridden by the request
    bool seed_given = false;        // without a seed each request draws a fresh one
    std::vector<std::string> stop;  // stop strings (not included in the text)
    std::vector<std::pair<int64_t, float>> logit_bias;  // token id -> bias (checked later)
    int logprobs = -1;        // -1: none; else how many alternatives per token (0..20)
    bool ignore_eos = false;  // llama-server's field: end-of-generation tokens do not stop
    ChatInput chat_input;     // chat: messages (and extra template variables)
    Prompt prompt;            // completions
};

// Parses a /v1/chat/completions (chat = true) or /v1/completions body. Unknown fields are
// ignored (clients send `user`, `metadata`, ...); fields we cannot honour are a 400 naming
// them ("not supported"), never silently dropped. Throws HttpError.
CompletionParams parse_completion(const Json& body, bool chat, const SamplingOptions& defaults);

// /tokenize {"content", "add_special", "parse_special", "with_pieces"}.
struct TokenizeParams {
    std::string content;
    bool add_special = false;
    bool parse_special = true;
    bool with_pieces = false;
};
TokenizeParams parse_tokenize(const Json& body);

// /detokenize {"tokens": [ids]}: the ids (checked against the vocabulary later).
std::vector<int64_t> parse_detokenize(const Json& body);

// Parses a request body: the JSON object, or a 400 naming the position of the error.
Json parse_body(const std::string& body);

// JSON text with invalid UTF-8 replaced (token pieces can hold part of a character).
std::string dump_json(const Json& j);

}  // namespace bitnet::server
