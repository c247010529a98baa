#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "bitnet/error.h"
#include "server/request.h"
#include "server/scheduler.h"
#include "server/webui.h"

namespace bitnet::server {

namespace {

// A worker pool that grows: a connection gets a thread at once while fewer than `max` exist,
// so that streams and silent clients (each holds a worker until its timeout) never keep
// /health or a 503 waiting. Idle threads stay for reuse.
class GrowingPool : public httplib::TaskQueue {
  public:
    explicit GrowingPool(size_t max) : max_(max) {}
    ~GrowingPool() override { shutdown(); }
    GrowingPool(const GrowingPool&) = delete;
    GrowingPool& operator=(const GrowingPool&) = delete;

    void enqueue(std::function<void()> fn) override {
        std::lock_guard<std::mutex> lock(mu_);
        jobs_.push_back(std::move(fn));
        // Every waiting job needs an idle thread of its own: one that was woken for an earlier
        // job still counts as idle until it takes it.
        if (jobs_.size() > idle_ && threads_.size() < max_) {
            threads_.emplace_back([this] { work(); });
        }
        cv_.notify_one();
    }
    void shutdown() override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (stop_) return;
            stop_ = true;
            cv_.notify_all();
        }
        for (std::thread& t : threads_) t.join();
    }

  private:
    void work() {
        std::unique_lock<std::mutex> lock(mu_);
        while (true) {
            ++idle_;
            cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
            --idle_;
            if (jobs_.empty()) return;  // stopping
            std::function<void()> fn = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            try {
                fn();
            } catch (const std::exception& e) {
                // A connection's handler must never take the process down.
                std::fprintf(stderr, "serve: a connection failed: %s\n", e.what());
            } catch (...) {
                std::fprintf(stderr, "serve: a connection failed\n");
            }
            lock.lock();
        }
    }

    size_t max_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    size_t idle_ = 0;
    bool stop_ = false;
};

std::string random_id(const char* prefix) {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard<std::mutex> lock(mu);
    return fmt::format("{}{:016x}", prefix, rng());
}

int64_t unix_now() {
    return static_cast<int64_t>(std::time(nullptr));
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    if (a.time_since_epoch().count() == 0 || b.time_since_epoch().count() == 0) return 0;
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct State {
    const ServerOptions& o;
    std::atomic<bool> ready{false};
    std::atomic<bool> shutting_down{false};
    std::string load_error;  // written once, before load_failed is set
    std::atomic<bool> load_failed{false};
    std::mutex start_mu;  // orders creating the scheduler against shutdown reading it
    std::shared_ptr<Model> model;
    std::unique_ptr<ChatFormatter> formatter;
    std::unique_ptr<Scheduler> scheduler;
    std::string model_id;
    std::atomic<uint64_t> rejected_queue_full{0};
    std::atomic<uint64_t> http_errors{0};
    std::mutex rng_mu;
    std::mt19937_64 rng{std::random_device{}()};

    explicit State(const ServerOptions& options) : o(options) {}
};

void send_json(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(dump_json(body), "application/json; charset=utf-8");
}

void send_error(State& st, httplib::Response& res, const HttpError& e) {
    if (e.status >= 500) ++st.http_errors;
    if (e.status == 503) res.set_header("Retry-After", "1");
    send_json(res, e.status, error_body(e));
}

HttpError unavailable(const std::string& message) {
    return HttpError(503, "unavailable_error", message);
}

// The 503 while the model loads (or after it failed to).
HttpError not_ready(const State& st) {
    return st.load_failed ? unavailable("the model failed to load: " + st.load_error)
                          : unavailable("the model is loading");
}

// The bytes of a token's text, as OpenAI's logprobs give them.
Json bytes_of(const std::string& s) {
    Json b = Json::array();
    for (unsigned char c : s) b.push_back(static_cast<int>(c));
    return b;
}

struct Usage {
    int64_t prompt = 0, cached = 0, completion = 0;
    double prompt_ms = 0, gen_ms = 0;
};

Json usage_json(const Usage& u) {
    Json j = Json::object();
    j["prompt_tokens"] = u.prompt;
    j["completion_tokens"] = u.completion;
    j["total_tokens"] = u.prompt + u.completion;
    j["prompt_tokens_details"] = {{"cached_tokens", u.cached}};
    return j;
}

Json timings_json(const Usage& u) {
    const int64_t evaluated = u.prompt - u.cached;
    Json j = Json::object();
    j["cache_n"] = u.cached;
    j["prompt_n"] = evaluated;
    j["prompt_ms"] = u.prompt_ms;
    j["prompt_per_second"] =
        u.prompt_ms > 0 ? 1000.0 * static_cast<double>(evaluated) / u.prompt_ms : 0.0;
    j["predicted_n"] = u.completion;
    j["predicted_ms"] = u.gen_ms;
    j["predicted_per_second"] =
        u.gen_ms > 0 ? 1000.0 * static_cast<double>(u.completion) / u.gen_ms : 0.0;
    return j;
}

Usage usage_of(Task& t) {
    std::lock_guard<std::mutex> lock(t.mu);
    Usage u;
    u.prompt = static_cast<int64_t>(t.prompt.size());
    u.cached = t.cached_tokens;
    u.completion = t.completion_tokens;
    u.prompt_ms = ms_between(t.started, t.prompt_done);
    u.gen_ms = ms_between(t.prompt_done, t.ended);
    return u;
}

// Logprobs in the chat shape: {"content": [{"token", "logprob", "bytes", "top_logprobs"}]}.
Json chat_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps) {
    Json content = Json::array();
    for (const TokenLogprob& lp : lps) {
        const std::string piece = tok.piece(lp.id, true);
        Json top = Json::array();
        for (const auto& [id, l] : lp.top) {
            const std::string p = tok.piece(id, true);
            top.push_back({{"token", p}, {"logprob", l}, {"bytes", bytes_of(p)}});
        }
        content.push_back({{"token", piece},
                           {"logprob", lp.logprob},
                           {"bytes", bytes_of(piece)},
                           {"top_logprobs", top}});
    }
    return {{"content", content}};
}

// Logprobs in the completions shape: parallel arrays.
Json completion_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                         size_t text_offset) {
    Json tokens = Json::array(), token_lps = Json::array(), tops = Json::array(),
         offsets = Json::array();
    for (const TokenLogprob& lp : lps) {
        const std::string piece = tok.piece(lp.id, true);
        tokens.push_back(piece);
        token_lps.push_back(lp.logprob);
        Json top = Json::object();
        for (const auto& [id, l] : lp.top) top[tok.piece(id, true)] = l;
        tops.push_back(top);
        offsets.push_back(text_offset);
        text_offset += piece.size();
    }
    return {{"tokens", tokens},
            {"token_logprobs", token_lps},
            {"top_logprobs", tops},
            {"text_offset", offsets}};
}

// The prompt ids a request stands for; validated against the vocabulary and the context.
std::vector<TokenId> prompt_ids(State& st, const CompletionParams& p) {
    const Tokenizer& tok = st.model->tokenizer();
    std::vector<TokenId> ids;
    if (p.chat) {
        std::string text;
        try {
            text = st.formatter->render(p.chat_input);
        } catch (const std::exception& e) {
            throw bad_request("messages", std::string("the chat template failed: ") + e.what());
        }
        ids = st.formatter->tokenize(text);
    } else if (const auto* s = std::get_if<std::string>(&p.prompt)) {
        ids = tok.encode(*s, EncodeOptions{true, true});
    } else {
        for (int64_t id : std::get<std::vector<int64_t>>(p.prompt)) {
            if (id < 0 || id >= static_cast<int64_t>(tok.size())) {
                throw bad_request("prompt", fmt::format("token id {} is outside the vocabulary "
                                                        "(0..{})",
                                                        id, tok.size() - 1));
            }
            ids.push_back(static_cast<TokenId>(id));
        }
    }
    if (ids.empty()) throw bad_request(p.chat ? "messages" : "prompt", "the prompt is empty");
    const int64_t n_ctx = st.scheduler->n_ctx();
    if (static_cast<int64_t>(ids.size()) > n_ctx) {
        HttpError e(400, "exceed_context_size_error",
                    fmt::format("the prompt is {} tokens, more than the {} tokens of context "
                                "each slot has (start the server with a larger -c)",
                                ids.size(), n_ctx),
                    p.chat ? "messages" : "prompt", "context_length_exceeded");
        throw e;
    }
    return ids;
}

std::shared_ptr<Task> make_task(State& st, const CompletionParams& p, std::vector<TokenId> ids) {
    auto task = std::make_shared<Task>();
    task->prompt = std::move(ids);
    task->max_tokens = p.max_tokens >= 0 ? p.max_tokens : st.o.n_predict;
    task->sampling = p.sampling;
    if (!p.seed_given) {
        std::lock_guard<std::mutex> lock(st.rng_mu);
        task->sampling.seed = st.rng();
    }
    const auto n_vocab = static_cast<int64_t>(st.model->tokenizer().size());
    for (const auto& [id, b] : p.logit_bias) {
        if (id >= n_vocab) {
            throw bad_request("logit_bias", fmt::format("token id {} is outside the vocabulary "
                                                        "(0..{})",
                                                        id, n_vocab - 1));
        }
        task->logit_bias.emplace_back(static_cast<TokenId>(id), b);
    }
    task->stop = p.stop;
    task->logprobs = p.logprobs;
    task->ignore_eos = p.ignore_eos;
    return task;
}

// Streams a completion as server-sent events (SERVING.md "Streaming").
void stream_completion(State& st, httplib::Response& res, const CompletionParams& p,
                       const std::shared_ptr<Task>& task) {
    const std::string id = random_id(p.chat ? "chatcmpl-" : "cmpl-");
    const int64_t created = unix_now();
    const std::string model = st.model_id;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    // One event: the chunk envelope around `choices` (and usage, for the usage chunk).
    auto event = [=](Json choices, const Usage* usage) {
        Json j = Json::object();
        j["id"] = id;
        j["object"] = p.chat ? "chat.completion.chunk" : "text_completion";
        j["created"] = created;
        j["model"] = model;
        j["system_fingerprint"] = "bitnet";
        j["choices"] = std::move(choices);
        if (usage != nullptr) {
            j["usage"] = usage_json(*usage);
            j["timings"] = timings_json(*usage);
        }
        return "data: " + dump_json(j) + "\n\n";
    };
    auto chunk = [event](Json choice) { return event(Json::array({std::move(choice)}), nullptr); };
    auto sent_role = std::make_shared<bool>(false);
    auto text_offset = std::make_shared<size_t>(0);
    res.set_chunked_content_provider(
        "text/event-stream",
        [&st, p, task, event, chunk, sent_role, text_offset](size_t, httplib::DataSink& sink) {
            const Tokenizer& tok = st.model->tokenizer();
            auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
            if (p.chat && !*sent_role) {
                *sent_role = true;
                Json c = {{"index", 0},
                          {"delta", {{"role", "assistant"}, {"content", ""}}},
                          {"logprobs", nullptr},
                          {"finish_reason", nullptr}};
                if (!write(chunk(c))) {
                    task->cancel = true;
                    return false;
                }
            }
            auto last_write = Clock::now();
            while (true) {
                std::vector<Event> events;
                const bool finished = task->wait(events, std::chrono::milliseconds(200));
                for (Event& e : events) {
                    if (!e.error.empty()) {
                        Json err = error_body(HttpError(500, "server_error", e.error));
                        write("data: " + dump_json(err) + "\n\n");
                        write("data: [DONE]\n\n");
                        sink.done();
                        return true;
                    }
                    if (!e.text.empty() || !e.logprobs.empty()) {
                        Json c = Json::object();
                        c["index"] = 0;
                        if (p.chat) {
                            c["delta"] = {{"content", e.text}};
                            c["logprobs"] =
                                p.logprobs >= 0 ? chat_logprobs(tok, e.logprobs) : Json(nullptr);
                        } else {
                            c["text"] = e.text;
                            c["logprobs"] = p.logprobs >= 0
                                                ? completion_logprobs(tok, e.logprobs, *text_offset)
                                                : Json(nullptr);
                            *text_offset += e.text.size();
                        }
                        c["finish_reason"] = nullptr;
                        if (!write(chunk(c))) {
                            task->cancel = true;
                            return false;
                        }
                        last_write = Clock::now();
                    }
                    if (e.done) {
                        if (e.finish_reason == "cancelled") {
                            sink.done();
                            return true;
                        }
                        Json c = Json::object();
                        c["index"] = 0;
                        if (p.chat) {
                            c["delta"] = Json::object();
                        } else {
                            c["text"] = "";
                        }
                        c["logprobs"] = nullptr;
                        c["finish_reason"] = e.finish_reason;
                        write(chunk(c));
                        if (p.include_usage) {
                            const Usage u = usage_of(*task);
                            write(event(Json::array(), &u));
                        }
                        write("data: [DONE]\n\n");
                        sink.done();
                        return true;
                    }
                }
                if (finished) {
                    sink.done();
                    return true;
                }
                // Nothing for a while (a long prompt, a busy server): a comment keeps the
                // connection alive and tells us whether the client is still there.
                if (Clock::now() - last_write > std::chrono::milliseconds(1000)) {
                    if (!write(": ping\n\n")) {
                        task->cancel = true;
                        return false;
                    }
                    last_write = Clock::now();
                }
                if (!sink.is_writable()) {
                    task->cancel = true;
                    return false;
                }
            }
        },
        [task](bool) {
            std::lock_guard<std::mutex> lock(task->mu);
            if (!task->finished) task->cancel = true;
        });
}

// A non-streamed completion. The answer is written when generation ends; meanwhile the socket
// is watched so that a client that gave up frees its slot at once.
void whole_completion(State& st, httplib::Response& res, const CompletionParams& p,
                      const std::shared_ptr<Task>& task) {
    res.set_chunked_content_provider(
        "application/json; charset=utf-8",
        [&st, p, task](size_t, httplib::DataSink& sink) {
            const Tokenizer& tok = st.model->tokenizer();
            std::string text;
            std::vector<TokenLogprob> lps;
            std::string reason, error;
            while (true) {
                std::vector<Event> events;
                const bool finished = task->wait(events, std::chrono::milliseconds(100));
                for (Event& e : events) {
                    text += e.text;
                    lps.insert(lps.end(), e.logprobs.begin(), e.logprobs.end());
                    if (e.done) {
                        reason = e.finish_reason;
                        error = e.error;
                    }
                }
                if (finished) break;
                if (!sink.is_writable()) {
                    task->cancel = true;
                    return false;
                }
            }
            if (reason == "cancelled") return false;
            Json body;
            if (!error.empty()) {
                body = error_body(HttpError(500, "server_error", error));
            } else {
                const Usage u = usage_of(*task);
                Json choice = Json::object();
                choice["index"] = 0;
                if (p.chat) {
                    choice["message"] = {{"role", "assistant"}, {"content", text}};
                    choice["logprobs"] = p.logprobs >= 0 ? chat_logprobs(tok, lps) : Json(nullptr);
                } else {
                    choice["text"] = text;
                    choice["logprobs"] =
                        p.logprobs >= 0 ? completion_logprobs(tok, lps, 0) : Json(nullptr);
                }
                choice["finish_reason"] = reason;
                body = Json::object();
                body["id"] = random_id(p.chat ? "chatcmpl-" : "cmpl-");
                body["object"] = p.chat ? "chat.completion" : "text_completion";
                body["created"] = unix_now();
                body["model"] = st.model_id;
                body["system_fingerprint"] = "bitnet";
                body["choices"] = Json::array({choice});
                body["usage"] = usage_json(u);
                body["timings"] = timings_json(u);
            }
            const std::string s = dump_json(body);
            sink.write(s.data(), s.size());
            sink.done();
            return true;
        },
        [task](bool) {
            std::lock_guard<std::mutex> lock(task->mu);
            if (!task->finished) task->cancel = true;
        });
}

void handle_completion(State& st, const httplib::Request& req, httplib::Response& res, bool chat) {
    if (st.shutting_down) throw unavailable("the server is shutting down");
    const Json body = parse_body(req.body);
    CompletionParams p = parse_completion(body, chat, st.o.sampling);
    std::vector<TokenId> ids = prompt_ids(st, p);
    std::shared_ptr<Task> task = make_task(st, p, std::move(ids));
    if (!st.scheduler->submit(task)) {
        ++st.rejected_queue_full;
        throw unavailable(
            fmt::format("the server is busy: {} slots and {} queued requests are "
                        "taken; retry later",
                        st.o.n_slots, st.o.max_queue));
    }
    if (p.stream) {
        stream_completion(st, res, p, task);
    } else {
        whole_completion(st, res, p, task);
    }
}

Json props_json(State& st) {
    const SamplingOptions& s = st.o.sampling;
    Json gen = Json::object();
    gen["n_predict"] = st.o.n_predict;
    gen["temperature"] = s.temperature;
    gen["top_k"] = s.top_k;
    gen["top_p"] = s.top_p;
    gen["min_p"] = s.min_p;
    gen["repeat_penalty"] = s.repeat_penalty;
    gen["repeat_last_n"] = s.repeat_last_n;
    gen["presence_penalty"] = s.presence_penalty;
    gen["frequency_penalty"] = s.frequency_penalty;
    gen["n_ctx"] = st.scheduler->n_ctx();
    Json j = Json::object();
    j["default_generation_settings"] = gen;
    j["total_slots"] = st.o.n_slots;
    j["n_ctx_per_slot"] = st.scheduler->n_ctx();
    j["kv_cache_bytes"] = st.scheduler->kv_bytes();
    j["model_alias"] = st.model_id;
    j["model_path"] = st.o.model_path;
    j["model"] = st.model->describe();
    j["chat_template"] = st.formatter->source();
    j["chat_template_source"] = st.formatter->description();
    j["max_queue"] = st.o.max_queue;
    j["build_info"] = "bitnet 0.1.0";
    return j;
}

std::string metrics_text(State& st) {
    const Counters c = st.scheduler->counters();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
        out += fmt::format("# HELP bitnet_{0} {1}\n# TYPE bitnet_{0} {2}\nbitnet_{0} {3}\n", name,
                           help, type, value);
    };
    metric("requests_total", "counter", "Requests accepted into the queue.",
           static_cast<double>(c.requests));
    metric("requests_cancelled_total", "counter", "Requests whose client went away before the end.",
           static_cast<double>(c.requests_cancelled));
    metric("requests_failed_total", "counter", "Requests ended by an engine error.",
           static_cast<double>(c.requests_failed));
    metric("requests_rejected_total", "counter", "Requests refused with 503 (queue full).",
           static_cast<double>(st.rejected_queue_full.load()));
    metric("forward_passes_total", "counter", "Forward passes of the model.",
           static_cast<double>(c.forward_passes));
    metric("forward_pass_tokens_total", "counter",
           "Tokens evaluated by all forward passes (prompt and generated).",
           static_cast<double>(c.pass_tokens));
    metric("decode_passes_total", "counter", "Forward passes that advanced generating slots.",
           static_cast<double>(c.decode_passes));
    metric("decode_tokens_total", "counter",
           "Generated tokens evaluated in those passes (tokens per pass = this / passes).",
           static_cast<double>(c.decode_tokens));
    metric("prompt_tokens_total", "counter", "Prompt tokens evaluated.",
           static_cast<double>(c.prompt_tokens_evaluated));
    metric("prompt_tokens_cached_total", "counter",
           "Prompt tokens reused from a slot's cache instead of evaluated.",
           static_cast<double>(c.prompt_tokens_cached));
    metric("tokens_predicted_total", "counter", "Tokens generated.",
           static_cast<double>(c.tokens_generated));
    metric("prompt_seconds_total", "counter", "Seconds spent evaluating prompts.",
           c.prompt_seconds);
    metric("tokens_predicted_seconds_total", "counter", "Seconds spent generating.",
           c.generation_seconds);
    metric("requests_processing", "gauge", "Busy slots.",
           static_cast<double>(st.scheduler->busy()));
    metric("requests_deferred", "gauge", "Requests waiting for a slot.",
           static_cast<double>(st.scheduler->queued()));
    metric("slots_total", "gauge", "Slots (-np).", static_cast<double>(st.o.n_slots));
    return out;
}

bool key_matches(const std::string& given, const std::string& key) {
    // Constant time in the length of the key.
    unsigned diff = given.size() == key.size() ? 0u : 1u;
    for (size_t i = 0; i < key.size(); ++i) {
        diff |= static_cast<unsigned>(key[i] ^ (i < given.size() ? given[i] : 0));
    }
    return diff == 0;
}

bool origin_allowed(const ServerOptions& o, const std::string& origin) {
    for (const std::string& a : o.cors_origins) {
        if (a == "*" || a == origin) return true;
    }
    return false;
}

void wait_for_signal(State& st, httplib::Server& svr, sigset_t set) {
    int sig = 0;
    sigwait(&set, &sig);
    // stop() does nothing before the listen loop runs: wait for it (it starts at once).
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!st.load_failed) {
        std::fprintf(stderr,
                     "serve: %s: no new requests; letting running ones finish (up to %d s)\n",
                     sig == SIGINT ? "interrupted" : "terminated", st.o.shutdown_grace);
    }
    Scheduler* scheduler = nullptr;
    {
        std::lock_guard<std::mutex> lock(st.start_mu);
        st.shutting_down = true;  // the loader creates no scheduler after this
        scheduler = st.scheduler.get();
    }
    if (scheduler != nullptr) {
        const auto deadline = Clock::now() + std::chrono::seconds(st.o.shutdown_grace);
        while (Clock::now() < deadline && (scheduler->busy() > 0 || scheduler->queued() > 0))
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        scheduler->cancel_all();
    }
    svr.stop();
    // Stopping joins the HTTP workers; one held by a client that sends nothing would keep the
    // process up until --timeout. Past a few seconds, leave without it.
    std::thread([] {
        std::this_thread::sleep_for(std::chrono::seconds(5));
        std::fputs("serve: stopped (connections still open were dropped)\n", stderr);
        std::_Exit(0);
    }).detach();
}

}  // namespace

int run_server(const ServerOptions& o) {
    State st(o);
    httplib::Server svr;
    const size_t pool = static_cast<size_t>(o.max_http_threads);
    svr.new_task_queue = [pool] { return new GrowingPool(pool); };
    svr.set_payload_max_length(o.max_body);
    svr.set_read_timeout(o.timeout, 0);
    svr.set_write_timeout(o.timeout, 0);
    svr.set_keep_alive_timeout(5);
    svr.set_tcp_nodelay(true);
    // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, with which a second server on
    // the same port starts without an error and the two share the connections.
    svr.set_socket_options([](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });

    // CORS, API key and readiness, before routing.
    svr.set_pre_routing_handler([&st, &o](const httplib::Request& req, httplib::Response& res) {
        const std::string origin = req.get_header_value("Origin");
        if (!origin.empty() && origin_allowed(o, origin)) {
            res.set_header("Access-Control-Allow-Origin", origin);
            res.set_header("Vary", "Origin");
            res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
            res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        }
        if (req.method == "OPTIONS") {
            res.status = 204;
            return httplib::Server::HandlerResponse::Handled;
        }
        const bool open =
            req.path == "/health" || req.path == "/v1/health" ||
            (o.webui && req.method == "GET" && (req.path == "/" || req.path == "/index.html"));
        if (!open && !o.api_key.empty()) {
            const std::string auth = req.get_header_value("Authorization");
            const std::string prefix = "Bearer ";
            if (auth.compare(0, prefix.size(), prefix) != 0 ||
                !key_matches(auth.substr(prefix.size()), o.api_key)) {
                send_error(st, res,
                           HttpError(401, "authentication_error",
                                     auth.empty() ? "an API key is required (Authorization: "
                                                    "Bearer KEY)"
                                                  : "the API key is wrong"));
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        if (!open && !st.ready) {
            send_error(st, res, not_ready(st));
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    // Errors the library raises itself (404, 413, ...) get OpenAI-shaped bodies too.
    svr.set_error_handler([&st](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 404) {
            send_error(st, res,
                       HttpError(404, "invalid_request_error",
                                 fmt::format("no such endpoint: {} {}", req.method, req.path)));
        } else if (res.status == 413 &&
                   req.get_header_value("Content-Type")
                           .rfind("application/x-www-form-urlencoded", 0) == 0) {
            // cpp-httplib parses form bodies itself and caps them at 8 KiB.
            send_error(st, res,
                       HttpError(413, "invalid_request_error",
                                 "the request body was sent as a form "
                                 "(application/x-www-form-urlencoded, which curl -d does "
                                 "unless told otherwise) and forms are limited to 8192 bytes: "
                                 "send it with 'Content-Type: application/json'"));
        } else if (res.status == 413) {
            send_error(
                st, res,
                HttpError(413, "invalid_request_error",
                          fmt::format("the request body is larger than {} bytes", st.o.max_body)));
        } else if (res.status == 405) {
            send_error(st, res, HttpError(405, "invalid_request_error", "method not allowed"));
        } else {
            send_error(
                st, res,
                HttpError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                          fmt::format("HTTP status {}", res.status)));
        }
    });
    svr.set_exception_handler(
        [&st](const httplib::Request&, httplib::Response& res, const std::exception_ptr& ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const HttpError& e) {
                send_error(st, res, e);
            } catch (const std::exception& e) {
                send_error(st, res, HttpError(500, "server_error", e.what()));
            } catch (...) {
                send_error(st, res, HttpError(500, "server_error", "unexpected failure"));
            }
        });

    auto both = [&svr](const std::string& path, auto handler, bool post) {
        for (const std::string& p : {path, "/v1" + path}) {
            if (post) {
                svr.Post(p, handler);
            } else {
                svr.Get(p, handler);
            }
        }
    };
    both(
        "/health",
        [&st](const httplib::Request&, httplib::Response& res) {
            if (st.ready) {
                send_json(res, 200, {{"status", "ok"}});
            } else {
                send_error(st, res, not_ready(st));
            }
        },
        false);
    both(
        "/models",
        [&st](const httplib::Request&, httplib::Response& res) {
            const Hparams& h = st.model->hparams();
            Json meta = {{"n_vocab", h.n_vocab},
                         {"n_ctx_train", h.n_ctx_train},
                         {"n_ctx_per_slot", st.scheduler->n_ctx()},
                         {"n_embd", h.n_embd},
                         {"n_layer", h.n_layer},
                         {"architecture", h.arch_name},
                         {"size", std::filesystem::file_size(st.o.model_path)}};
            Json m = {{"id", st.model_id},
                      {"object", "model"},
                      {"created", unix_now()},
                      {"owned_by", "bitnet"},
                      {"meta", meta}};
            send_json(res, 200, {{"object", "list"}, {"data", Json::array({m})}});
        },
        false);
    both(
        "/chat/completions",
        [&st](const httplib::Request& req, httplib::Response& res) {
            handle_completion(st, req, res, true);
        },
        true);
    both(
        "/completions",
        [&st](const httplib::Request& req, httplib::Response& res) {
            handle_completion(st, req, res, false);
        },
        true);
    both(
        "/tokenize",
        [&st](const httplib::Request& req, httplib::Response& res) {
            const TokenizeParams p = parse_tokenize(parse_body(req.body));
            const Tokenizer& tok = st.model->tokenizer();
            const std::vector<TokenId> ids =
                tok.encode(p.content, EncodeOptions{p.add_special, p.parse_special});
            Json tokens = Json::array();
            for (TokenId id : ids) {
                if (p.with_pieces) {
                    tokens.push_back({{"id", id}, {"piece", tok.piece(id, true)}});
                } else {
                    tokens.push_back(id);
                }
            }
            send_json(res, 200, {{"tokens", tokens}});
        },
        true);
    both(
        "/detokenize",
        [&st](const httplib::Request& req, httplib::Response& res) {
            const std::vector<int64_t> raw = parse_detokenize(parse_body(req.body));
            const Tokenizer& tok = st.model->tokenizer();
            std::vector<TokenId> ids;
            for (int64_t id : raw) {
                if (id < 0 || id >= static_cast<int64_t>(tok.size())) {
                    throw bad_request("tokens", fmt::format("token id {} is outside the vocabulary "
                                                            "(0..{})",
                                                            id, tok.size() - 1));
                }
                ids.push_back(static_cast<TokenId>(id));
            }
            send_json(res, 200, {{"content", tok.decode(ids, DecodeOptions{false, true})}});
        },
        true);
    both(
        "/apply-template",
        [&st](const httplib::Request& req, httplib::Response& res) {
            const Json body = parse_body(req.body);
            CompletionParams p = parse_completion(body, true, st.o.sampling);
            try {
                send_json(res, 200, {{"prompt", st.formatter->render(p.chat_input)}});
            } catch (const std::exception& e) {
                throw bad_request("messages", std::string("the chat template failed: ") + e.what());
            }
        },
        true);
    both(
        "/props",
        [&st](const httplib::Request&, httplib::Response& res) {
            send_json(res, 200, props_json(st));
        },
        false);
    both(
        "/slots",
        [&st](const httplib::Request&, httplib::Response& res) {
            Json out = Json::array();
            for (const SlotInfo& s : st.scheduler->slots()) {
                out.push_back({{"id", s.id},
                               {"is_processing", s.busy},
                               {"processing_prompt", s.processing_prompt},
                               {"n_ctx", st.scheduler->n_ctx()},
                               {"n_cached", s.n_cached},
                               {"n_prompt", s.n_prompt},
                               {"n_decoded", s.n_decoded}});
            }
            send_json(res, 200, out);
        },
        false);
    both(
        "/metrics",
        [&st](const httplib::Request&, httplib::Response& res) {
            if (!st.o.metrics) {
                throw HttpError(404, "invalid_request_error",
                                "metrics are off (start the server with --metrics)");
            }
            res.set_content(metrics_text(st), "text/plain; version=0.0.4");
        },
        false);
    if (o.webui) {
        auto page = [](const httplib::Request&, httplib::Response& res) {
            res.set_content(std::string(webui_html()), "text/html; charset=utf-8");
        };
        svr.Get("/", page);
        svr.Get("/index.html", page);
    }

    // Signals go to one thread that runs the shutdown; every other thread blocks them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    int port = o.port;
    if (port == 0) {
        port = svr.bind_to_any_port(o.host);
        if (port <= 0) throw Error(fmt::format("cannot listen on {} (any port)", o.host));
    } else if (!svr.bind_to_port(o.host, port)) {
        throw Error(
            fmt::format("cannot listen on {}:{} (in use, or not an address of this "
                        "machine)",
                        o.host, port));
    }
    std::thread listener([&svr] { svr.listen_after_bind(); });
    std::fprintf(stderr, "serve: listening on http://%s:%d (loading the model)\n", o.host.c_str(),
                 port);
    std::fflush(stderr);
    std::thread signals([&] { wait_for_signal(st, svr, set); });

    try {
        st.model = Model::load(o.model_path, o.model_options);
        for (const std::string& w : st.model->warnings())
            std::fprintf(stderr, "warning: %s\n", w.c_str());
        st.formatter =
            std::make_unique<ChatFormatter>(ChatFormatter::for_model(*st.model, o.chat_template));
        for (const std::string& n : st.formatter->notices())
            std::fprintf(stderr, "note: %s\n", n.c_str());
        auto scheduler = std::make_unique<Scheduler>(
            st.model, SchedulerOptions{o.n_slots, o.n_ctx, o.threads, o.n_batch, 128, o.max_queue,
                                       o.type_k, o.type_v});
        st.model_id =
            o.alias.empty() ? std::filesystem::path(o.model_path).filename().string() : o.alias;
        {
            std::lock_guard<std::mutex> lock(st.start_mu);
            if (!st.shutting_down) {
                st.scheduler = std::move(scheduler);
                st.ready = true;
            }
        }
        if (st.ready) {
            std::fprintf(
                stderr,
                "serve: ready: %s; %d slots x %lld tokens of context each, KV cache %.1f MiB "
                "in all; %d threads; template: %s\n",
                st.model->describe().c_str(), o.n_slots,
                static_cast<long long>(st.scheduler->n_ctx()),
                static_cast<double>(st.scheduler->kv_bytes()) / (1 << 20),
                st.scheduler->threads_used(), st.formatter->description().c_str());
            std::fflush(stderr);
        }  // else: stopped while loading
    } catch (const std::exception& e) {
        st.load_error = e.what();
        st.load_failed = true;
        kill(getpid(), SIGTERM);  // to the signal thread (every other thread blocks it)
    }
    signals.join();
    listener.join();
    if (st.scheduler) st.scheduler->stop();
    if (st.load_failed) throw Error(st.load_error);
    std::fprintf(stderr, "serve: stopped\n");
    return 0;
}

}  // namespace bitnet::server
