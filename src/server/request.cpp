#include "server/request.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "bitnet/error.h"

namespace bitnet::server {

HttpError bad_request(const std::string& param, const std::string& message) {
    return HttpError(400, "invalid_request_error", message, param);
}

HttpError not_supported(const std::string& param, const std::string& message) {
    return HttpError(400, "not_supported_error", "not supported: " + message, param);
}

Json error_body(const HttpError& e) {
    Json err = Json::object();
    err["message"] = e.what();
    err["type"] = e.type;
    err["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
    err["code"] = e.code.empty() ? Json(nullptr) : Json(e.code);
    Json body = Json::object();
    body["error"] = std::move(err);
    return body;
}

std::string dump_json(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json parse_body(const std::string& body) {
    try {
        Json j = Json::parse(body);
        if (!j.is_object()) throw bad_request("", "the request body must be a JSON object");
        return j;
    } catch (const Json::parse_error& e) {
        throw bad_request("",
                          fmt::format("the request body is not valid JSON (at byte {})", e.byte));
    } catch (const Json::exception& e) {
        // A number too large for a double, and the like.
        throw bad_request("", std::string("the request body is not usable JSON: ") + e.what());
    }
}

namespace {

// Typed field access: absent or null fields keep the default.
const Json* field(const Json& body, const char* name) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
}

double number(const Json& body, const char* name, double lo, double hi, double dflt) {
    const Json* v = field(body, name);
    if (v == nullptr) return dflt;
    if (!v->is_number()) throw bad_request(name, fmt::format("'{}' must be a number", name));
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
        throw bad_request(name, fmt::format("'{}' must be between {} and {}", name, lo, hi));
    }
    return d;
}

int64_t integer(const Json& body, const char* name, int64_t lo, int64_t hi, int64_t dflt) {
    const Json* v = field(body, name);
    if (v == nullptr) return dflt;
    if (v->is_number_float()) {
        const double d = v->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) &&
            d <= static_cast<double>(hi))
            return static_cast<int64_t>(d);
    }
    if (!v->is_number_integer() && !v->is_number_unsigned() && !v->is_number_float())
        throw bad_request(name, fmt::format("'{}' must be an integer", name));
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
        throw bad_request(name, fmt::format("'{}' must be between {} and {}", name, lo, hi));
    const int64_t i = v->is_number_float() ? lo - 1 : v->get<int64_t>();
    if (i < lo || i > hi)
        throw bad_request(name, fmt::format("'{}' must be between {} and {}", name, lo, hi));
    return i;
}

bool boolean(const Json& body, const char* name, bool dflt) {
    const Json* v = field(body, name);
    if (v == nullptr) return dflt;
    if (!v->is_boolean()) throw bad_request(name, fmt::format("'{}' must be true or false", name));
    return v->get<bool>();
}

std::vector<std::string> stop_strings(const Json& body) {
    const Json* v = field(body, "stop");
    if (v == nullptr) return {};
    std::vector<std::string> out;
    if (v->is_string()) {
        out.push_back(v->get<std::string>());
    } else if (v->is_array()) {
        for (const Json& s : *v) {
            if (!s.is_string()) throw bad_request("stop", "'stop' must hold strings");
            out.push_back(s.get<std::string>());
        }
    } else {
        throw bad_request("stop", "'stop' must be a string or an array of strings");
    }
    if (out.size() > 16) throw bad_request("stop", "'stop' holds more than 16 strings");
    for (const std::string& s : out) {
        if (s.empty()) throw bad_request("stop", "'stop' strings must not be empty");
        if (s.size() > 1024) throw bad_request("stop", "a 'stop' string is over 1024 bytes");
    }
    return out;
}

std::vector<std::pair<int64_t, float>> logit_bias(const Json& body) {
    const Json* v = field(body, "logit_bias");
    if (v == nullptr) return {};
    if (!v->is_object()) {
        throw bad_request("logit_bias", "'logit_bias' must map token ids to numbers");
    }
    std::vector<std::pair<int64_t, float>> out;
    for (const auto& [key, value] : v->items()) {
        int64_t id = -1;
        size_t used = 0;
        try {
            id = std::stoll(key, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != key.size() || id < 0) {
            throw bad_request("logit_bias",
                              fmt::format("'logit_bias' key \"{}\" is not a token id", key));
        }
        if (!value.is_number()) {
            throw bad_request("logit_bias",
                              fmt::format("'logit_bias' value for token {} must be a number", id));
        }
        const double b = value.get<double>();
        // OpenAI accepts -100..100; -100 bans a token (we take it as -inf).
        if (!std::isfinite(b) || b < -100 || b > 100) {
            throw bad_request(
                "logit_bias",
                fmt::format("'logit_bias' for token {} must be between -100 and 100", id));
        }
        out.emplace_back(
            id, b <= -100 ? -std::numeric_limits<float>::infinity() : static_cast<float>(b));
    }
    return out;
}

// An array of token ids (range-checked against the vocabulary later); `param` names the field.
std::vector<int64_t> token_ids(const Json& array, const char* param, const char* not_integer) {
    std::vector<int64_t> out;
    for (const Json& t : array) {
        if (!t.is_number_integer() && !t.is_number_unsigned())
            throw bad_request(param, not_integer);
        if (t.is_number_unsigned() && t.get<uint64_t>() > (1ull << 31))
            throw bad_request(param, "token id out of range");
        out.push_back(t.get<int64_t>());
    }
    return out;
}

Prompt completion_prompt(const Json& body) {
    const Json* v = field(body, "prompt");
    if (v == nullptr) throw bad_request("prompt", "'prompt' is required");
    auto ids = [](const Json& a) {
        return token_ids(a, "prompt", "a token-id prompt must hold integers only");
    };
    if (v->is_string()) return v->get<std::string>();
    if (!v->is_array()) {
        throw bad_request("prompt", "'prompt' must be a string, or an array of token ids");
    }
    if (v->empty()) throw bad_request("prompt", "'prompt' is empty");
    const Json& first = v->front();
    if (first.is_number()) return ids(*v);
    // A batch of prompts: only one is supported (like n > 1).
    if (v->size() > 1) {
        throw not_supported("prompt", "more than one prompt per request (send one request each)");
    }
    if (first.is_string()) return first.get<std::string>();
    if (first.is_array()) return ids(first);
    throw bad_request("prompt", "'prompt' must be a string, or an array of token ids");
}

}  // namespace

CompletionParams parse_completion(const Json& body, bool chat, const SamplingOptions& defaults) {
    if (!body.is_object()) throw bad_request("", "the request body must be a JSON object");
    CompletionParams p;
    p.chat = chat;
    if (const Json* m = field(body, "model")) {
        if (!m->is_string()) throw bad_request("model", "'model' must be a string");
        p.model = m->get<std::string>();
    }
    // What we cannot do is refused by name (and never a 5xx, which clients retry).
    if (integer(body, "n", 1, 1 << 20, 1) != 1) {
        throw not_supported("n", "'n' other than 1 (send one request per completion)");
    }
    for (const char* name : {"tools", "tool_choice", "functions", "function_call"}) {
        const Json* v = field(body, name);
        if (v == nullptr) continue;
        if (v->is_array() && v->empty()) continue;
        if (v->is_string() && v->get<std::string>() == "none") continue;
        throw not_supported(name, fmt::format("'{}' (tool and function calling)", name));
    }
    if (const Json* rf = field(body, "response_format")) {
        const bool text = rf->is_object() && rf->contains("type") && (*rf)["type"] == "text";
        if (!text) {
            throw not_supported("response_format",
                                "'response_format' other than {\"type\": \"text\"}");
        }
    }
    if (boolean(body, "echo", false)) throw not_supported("echo", "'echo'");
    if (const Json* s = field(body, "suffix"); s != nullptr && !(s->is_string() && s->empty())) {
        throw not_supported("suffix", "'suffix' (fill-in-the-middle)");
    }
    if (integer(body, "best_of", 1, 1 << 20, 1) != 1) throw not_supported("best_of", "'best_of'");

    p.stream = boolean(body, "stream", false);
    if (const Json* so = field(body, "stream_options")) {
        if (!so->is_object())
            throw bad_request("stream_options", "'stream_options' must be an object");
        if (!p.stream) {
            throw bad_request("stream_options", "'stream_options' is only allowed with stream");
        }
        p.include_usage = boolean(*so, "include_usage", false);
    }
    const int64_t limit = int64_t{1} << 30;
    p.max_tokens = integer(body, "max_tokens", 1, limit, -1);
    if (chat) p.max_tokens = integer(body, "max_completion_tokens", 1, limit, p.max_tokens);
    if (const Json* np = field(body, "n_predict")) {  // llama-server's name
        (void)np;
        const int64_t n = integer(body, "n_predict", -1, limit, -1);
        if (n == 0) throw bad_request("n_predict", "'n_predict' must be -1 or at least 1");
        if (n != -1 && p.max_tokens == -1) p.max_tokens = n;
    }

    SamplingOptions& s = p.sampling;
    s = defaults;
    s.temperature = static_cast<float>(number(body, "temperature", 0, 2, s.temperature));
    s.top_p = static_cast<float>(number(body, "top_p", 0, 1, s.top_p));
    s.top_k = static_cast<int>(integer(body, "top_k", 0, 1 << 20, s.top_k));
    s.min_p = static_cast<float>(number(body, "min_p", 0, 1, s.min_p));
    s.presence_penalty =
        static_cast<float>(number(body, "presence_penalty", -2, 2, s.presence_penalty));
    s.frequency_penalty =
        static_cast<float>(number(body, "frequency_penalty", -2, 2, s.frequency_penalty));
    s.repeat_penalty = static_cast<float>(number(body, "repeat_penalty", 0, 10, s.repeat_penalty));
    s.repeat_last_n = static_cast<int>(integer(body, "repeat_last_n", 0, 1 << 20, s.repeat_last_n));
    if (field(body, "seed") != nullptr) {
        const Json& seed = body["seed"];
        if (seed.is_number_unsigned()) {
            s.seed = seed.get<uint64_t>();
        } else if (seed.is_number_integer()) {
            s.seed = static_cast<uint64_t>(seed.get<int64_t>());
        } else {
            throw bad_request("seed", "'seed' must be an integer");
        }
        p.seed_given = true;
    }
    try {
        validate(s);
    } catch (const Error& e) {
        throw bad_request("", e.what());
    }
    p.ignore_eos = boolean(body, "ignore_eos", false);
    p.stop = stop_strings(body);
    p.logit_bias = logit_bias(body);

    if (chat) {
        if (boolean(body, "logprobs", false)) {
            p.logprobs = static_cast<int>(integer(body, "top_logprobs", 0, 20, 0));
        } else if (field(body, "top_logprobs") != nullptr) {
            throw bad_request("top_logprobs", "'top_logprobs' needs 'logprobs': true");
        }
        const Json* messages = field(body, "messages");
        if (messages == nullptr) throw bad_request("messages", "'messages' is required");
        if (!messages->is_array() || messages->empty()) {
            throw bad_request("messages", "'messages' must be a non-empty array");
        }
        Json input = Json::object();
        input["messages"] = *messages;
        if (const Json* kw = field(body, "chat_template_kwargs")) {
            if (!kw->is_object())
                throw bad_request("chat_template_kwargs",
                                  "'chat_template_kwargs' must be an object");
            for (const auto& [k, v] : kw->items()) {
                if (k == "messages" || k == "tools")
                    throw bad_request("chat_template_kwargs", "'" + k + "' cannot be set here");
                input[k] = v;
            }
        }
        try {
            p.chat_input = parse_chat_input(input);
        } catch (const Error& e) {
            throw bad_request("messages", e.what());
        }
        if (p.chat_input.messages.back().value("role", "") == "assistant") {
            // Continuing a partial assistant message is what a template with
            // add_generation_prompt false renders.
            p.chat_input.add_generation_prompt = false;
        }
    } else {
        if (const Json* lp = field(body, "logprobs")) {
            if (lp->is_boolean()) {
                p.logprobs = lp->get<bool>() ? 0 : -1;
            } else {
                p.logprobs = static_cast<int>(integer(body, "logprobs", 0, 20, -1));
            }
        }
        p.prompt = completion_prompt(body);
    }
    return p;
}

TokenizeParams parse_tokenize(const Json& body) {
    if (!body.is_object()) throw bad_request("", "the request body must be a JSON object");
    TokenizeParams p;
    const Json* c = field(body, "content");
    if (c == nullptr || !c->is_string()) throw bad_request("content", "'content' must be a string");
    p.content = c->get<std::string>();
    p.add_special = boolean(body, "add_special", false);
    p.parse_special = boolean(body, "parse_special", true);
    p.with_pieces = boolean(body, "with_pieces", false);
    return p;
}

std::vector<int64_t> parse_detokenize(const Json& body) {
    if (!body.is_object()) throw bad_request("", "the request body must be a JSON object");
    const Json* t = field(body, "tokens");
    if (t == nullptr || !t->is_array()) throw bad_request("tokens", "'tokens' must be an array");
    return token_ids(*t, "tokens", "'tokens' must hold integers");
}

}  // namespace bitnet::server
