// The server's engine loop: -np slots, each one sequence of a MultiSession with its own KV
// cache, advanced by continuous batching. Every step evaluates the next token of every
// generating slot and a chunk of at most one waiting prompt in one forward pass, so the
// weights are read once per step for all streams and a long prompt never freezes the others.
// A request goes to the free slot whose cached tokens share the longest prefix with its prompt
// (multi-turn chats re-send their history), and only the rest is evaluated.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bitnet/chat.h"
#include "bitnet/multi_session.h"
#include "bitnet/sampling.h"

namespace bitnet::server {

using Clock = std::chrono::steady_clock;

// One token's log-probability and the most likely alternatives at its position.
struct TokenLogprob {
    TokenId id = 0;
    float logprob = 0;
    std::vector<std::pair<TokenId, float>> top;
};

// What the HTTP side receives, in order: text that became final (never part of a stop string,
// never part of a UTF-8 character) with the logprobs of the tokens that produced it, then one
// event with done set.
struct Event {
    std::string text;
    std::vector<TokenLogprob> logprobs;
    bool done = false;
    std::string finish_reason;  // "stop", "length" (done only)
    std::string error;          // an engine failure (done only)
};

struct Task {
    // Inputs, set before submit().
    std::vector<TokenId> prompt;
    int64_t max_tokens = -1;  // -1: until end of generation or the context is full
    SamplingOptions sampling;
    std::vector<std::pair<TokenId, float>> logit_bias;
    std::vector<std::string> stop;
    int logprobs = -1;  // -1: none; else alternatives per token
    bool ignore_eos = false;

    // Set by the HTTP side when the client went away; the scheduler frees the slot at its
    // next step.
    std::atomic<bool> cancel{false};

    // Output, guarded by mu.
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Event> events;
    bool finished = false;
    int slot = -1;
    int64_t cached_tokens = 0;      // prompt tokens reused from the slot's cache
    int64_t completion_tokens = 0;  // tokens sampled
    Clock::time_point queued = Clock::now(), started, prompt_done, ended;

    // Waits up to `timeout` for events; moves them into `out`. Returns finished.
    bool wait(std::vector<Event>& out, std::chrono::milliseconds timeout);
};

struct SchedulerOptions {
    int n_slots = 4;
    int64_t n_ctx = 0;  // per slot
    int threads = 0;
    int64_t n_batch = 512;            // entries per forward pass
    int64_t n_chunk = 128;            // prompt tokens per step while other slots generate
    int max_queue = 64;               // waiting requests beyond the busy slots
    GgmlType type_k = GgmlType::F16;  // KV cache types (SessionOptions::type_k)
    GgmlType type_v = GgmlType::F16;
};

struct SlotInfo {
    int id = 0;
    bool busy = false;
    bool processing_prompt = false;
    int64_t n_cached = 0;  // tokens in the slot's cache
    int64_t n_prompt = 0, n_decoded = 0;
};

struct Counters {
    uint64_t requests = 0, requests_cancelled = 0, requests_failed = 0;
    uint64_t forward_passes = 0, pass_tokens = 0;   // every pass, every entry
    uint64_t decode_passes = 0, decode_tokens = 0;  // passes with generating slots, and theirs
    uint64_t prompt_tokens_evaluated = 0, prompt_tokens_cached = 0, tokens_generated = 0;
    double prompt_seconds = 0, generation_seconds = 0;
};

class Scheduler {
  public:
    Scheduler(const std::shared_ptr<const Model>& model, const SchedulerOptions& options);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queues a task; false when the queue is full (the caller answers 503).
    bool submit(const std::shared_ptr<Task>& task);
    // Cancels every queued and running task and refuses new ones (shutdown).
    void cancel_all();
    // Stops the loop (after cancel_all) and joins it.
    void stop();

    std::vector<SlotInfo> slots() const;
    Counters counters() const;
    int queued() const;
    int busy() const;
    int64_t n_ctx() const { return n_ctx_; }
    uint64_t kv_bytes() const { return kv_bytes_; }
    int threads_used() const { return session_.threads(); }

  private:
    struct Slot;
    void loop();
    void step(std::unique_lock<std::mutex>& lock);
    void admit();
    void advance(Slot& s, std::span<const float> logits);
    // Ends the slot's request. `flush`: whatever the decoder and stop filter hold is text.
    void finish(Slot& s, const std::string& reason, const std::string& error = {},
                bool flush = true);

    std::shared_ptr<const Model> model_;
    SchedulerOptions options_;
    MultiSession session_;
    int64_t n_ctx_ = 0;
    uint64_t kv_bytes_ = 0;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Task>> queue_;
    std::vector<Slot> slots_;
    Counters counters_;
    uint64_t use_clock_ = 0;
    bool stopping_ = false;
    bool draining_ = false;
    std::vector<float> biased_;  // loop thread only
    std::thread thread_;
};

}  // namespace bitnet::server
