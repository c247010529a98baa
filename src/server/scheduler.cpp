#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "bitnet/error.h"
#include "engine/stop_filter.h"

namespace bitnet::server {

namespace {
void push(Task& t, Event e);  // hands an event to the waiting HTTP side (defined below)
}  // namespace

bool Task::wait(std::vector<Event>& out, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, timeout, [&] { return !events.empty() || finished; });
    while (!events.empty()) {
        out.push_back(std::move(events.front()));
        events.pop_front();
    }
    return finished;
}

struct Scheduler::Slot {
    int id = 0;
    std::shared_ptr<Task> task;
    uint64_t last_used = 0;
    // Per request
    int64_t n_prompt_done = 0;  // prompt tokens in the cache
    // Tokens in the slot's cache, as of the last pass: /slots reads this under the lock while
    // the next pass runs without it.
    int64_t n_cached = 0;
    bool generating = false;
    TokenId last = kNoToken;  // sampled, not yet evaluated
    std::optional<Sampler> sampler;
    std::optional<StreamDecoder> decoder;
    std::optional<StopFilter> stops;
};

Scheduler::Scheduler(const std::shared_ptr<const Model>& model, const SchedulerOptions& options)
    : model_(model),
      options_(options),
      session_(model, MultiSessionOptions{options.n_slots,
                                          options.n_ctx,
                                          options.threads,
                                          options.n_batch,
                                          options.type_k,
                                          options.type_v,
                                          {}}),
      n_ctx_(session_.n_ctx()),
      kv_bytes_(session_.kv_bytes()),
      slots_(static_cast<size_t>(options.n_slots)) {
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].id = static_cast<int>(i);
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    stop();
}

bool Scheduler::submit(const std::shared_ptr<Task>& task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || draining_) return false;
    // Waiting requests whose clients left do not hold places in the queue.
    for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancel) {
            ++counters_.requests_cancelled;
            push(**it, Event{{}, {}, true, "cancelled", {}});
            it = queue_.erase(it);
        } else {
            ++it;
        }
    }
    int free = 0;
    for (const Slot& s : slots_) free += s.task ? 0 : 1;
    if (static_cast<int>(queue_.size()) >= options_.max_queue + free) return false;
    task->queued = Clock::now();
    queue_.push_back(task);
    ++counters_.requests;
    cv_.notify_all();
    return true;
}

void Scheduler::cancel_all() {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    for (auto& t : queue_) t->cancel = true;
    for (Slot& s : slots_) {
        if (s.task) s.task->cancel = true;
    }
    cv_.notify_all();
}

void Scheduler::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
        for (auto& t : queue_) t->cancel = true;
        for (Slot& s : slots_) {
            if (s.task) s.task->cancel = true;
        }
        cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
}

std::vector<SlotInfo> Scheduler::slots() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SlotInfo> out;
    for (const Slot& s : slots_) {
        SlotInfo i;
        i.id = s.id;
        i.busy = s.task != nullptr;
        i.processing_prompt = s.task && !s.generating;
        i.n_cached = s.n_cached;
        if (s.task) {
            i.n_prompt = static_cast<int64_t>(s.task->prompt.size());
            i.n_decoded = s.task->completion_tokens;
        }
        out.push_back(i);
    }
    return out;
}

Counters Scheduler::counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    return counters_;
}

int Scheduler::queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(queue_.size());
}

int Scheduler::busy() const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const Slot& s : slots_) n += s.task ? 1 : 0;
    return n;
}

namespace {

size_t common_prefix(std::span<const TokenId> a, const std::vector<TokenId>& b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
}

void push(Task& t, Event e) {
    std::lock_guard<std::mutex> lock(t.mu);
    if (e.done) {
        t.finished = true;
        t.ended = Clock::now();
    }
    t.events.push_back(std::move(e));
    t.cv.notify_all();
}

// log-softmax of one row, and the `top` most likely tokens.
TokenLogprob logprob_of(std::span<const float> logits, TokenId chosen, int top) {
    float mx = -std::numeric_limits<float>::infinity();
    for (float v : logits) mx = std::max(mx, v);
    double sum = 0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
    const double log_z = mx + std::log(sum);
    TokenLogprob lp;
    lp.id = chosen;
    lp.logprob = static_cast<float>(logits[static_cast<size_t>(chosen)] - log_z);
    if (top > 0) {
        std::vector<TokenId> ids(logits.size());
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<TokenId>(i);
        const auto k = std::min<size_t>(static_cast<size_t>(top), ids.size());
        std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                          [&](TokenId a, TokenId b) {
                              const float la = logits[static_cast<size_t>(a)];
                              const float lb = logits[static_cast<size_t>(b)];
                              return la != lb ? la > lb : a < b;
                          });
        for (size_t i = 0; i < k; ++i) {
            lp.top.emplace_back(ids[i],
                                static_cast<float>(logits[static_cast<size_t>(ids[i])] - log_z));
        }
    }
    return lp;
}

}  // namespace

// Moves queued tasks into free slots: the free slot whose cache shares the longest prefix with
// the prompt, else the one unused longest. Called with mu_ held.
void Scheduler::admit() {
    while (!queue_.empty()) {
        std::shared_ptr<Task> task = queue_.front();
        if (task->cancel) {
            queue_.pop_front();
            ++counters_.requests_cancelled;
            push(*task, Event{{}, {}, true, "cancelled", {}});
            continue;
        }
        Slot* best = nullptr;
        size_t best_prefix = 0;
        for (Slot& s : slots_) {
            if (s.task) continue;
            const size_t p = common_prefix(session_.history(s.id), task->prompt);
            if (best == nullptr || p > best_prefix ||
                (p == best_prefix && s.last_used < best->last_used)) {
                best = &s;
                best_prefix = p;
            }
        }
        if (best == nullptr) return;
        queue_.pop_front();
        Slot& s = *best;
        s.task = task;
        s.last_used = ++use_clock_;
        s.n_prompt_done = session_.reuse_prefix(s.id, task->prompt);
        s.n_cached = s.n_prompt_done;
        s.generating = false;
        s.last = kNoToken;
        s.sampler.emplace(task->sampling);
        for (TokenId t : task->prompt) s.sampler->accept(t);
        s.decoder.emplace(model_->tokenizer());
        s.stops.emplace(task->stop);
        counters_.prompt_tokens_cached += static_cast<uint64_t>(s.n_prompt_done);
        std::lock_guard<std::mutex> tl(task->mu);
        task->slot = s.id;
        task->cached_tokens = s.n_prompt_done;
        task->started = Clock::now();
    }
}

void Scheduler::finish(Slot& s, const std::string& reason, const std::string& error, bool flush) {
    Event e;
    e.done = true;
    e.finish_reason = reason;
    e.error = error;
    if (flush && error.empty() && s.decoder && s.stops && reason != "cancelled") {
        // Whatever is held back (an incomplete character, a possible stop-string start) is
        // text after all.
        bool hit = false;
        e.text = s.stops->push(s.decoder->flush(), hit);
        if (!hit) e.text += s.stops->flush();
    }
    if (reason == "cancelled") ++counters_.requests_cancelled;
    if (!error.empty()) ++counters_.requests_failed;
    push(*s.task, std::move(e));
    s.task.reset();
    s.sampler.reset();
    s.decoder.reset();
    s.stops.reset();
    s.generating = false;
}

void Scheduler::loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
        admit();
        bool active = false;
        for (const Slot& s : slots_) active = active || s.task != nullptr;
        if (!active) {
            if (stopping_) break;
            cv_.wait(lock);
            continue;
        }
        step(lock);
    }
    // Nothing runs any more: tell whoever still waits.
    for (auto& t : queue_) push(*t, Event{{}, {}, true, "cancelled", {}});
    queue_.clear();
}

// One forward pass: the next token of every generating slot, then prompt chunks.
void Scheduler::step(std::unique_lock<std::mutex>& lock) {
    for (Slot& s : slots_) {
        if (s.task && s.task->cancel) finish(s, "cancelled");
    }
    std::vector<BatchEntry> batch;
    std::vector<Slot*> owner;  // for entries that want logits
    int64_t decoding = 0;
    for (Slot& s : slots_) {
        if (!s.task || !s.generating) continue;
        batch.push_back({s.id, s.last, session_.n_past(s.id), true});
        owner.push_back(&s);
        ++decoding;
    }
    // Prompt chunks: small while others generate (their next token waits for this pass).
    int64_t budget = decoding > 0 ? options_.n_chunk : options_.n_batch;
    budget = std::max<int64_t>(1, std::min(budget, options_.n_batch - decoding));
    int64_t prompt_entries = 0;
    std::vector<std::pair<Slot*, int64_t>> chunks;
    for (Slot& s : slots_) {
        if (!s.task || s.generating || budget == 0) continue;
        const auto& prompt = s.task->prompt;
        const int64_t left = static_cast<int64_t>(prompt.size()) - s.n_prompt_done;
        const int64_t take = std::min(left, budget);
        for (int64_t i = 0; i < take; ++i) {
            const int64_t pos = s.n_prompt_done + i;
            const bool last = pos + 1 == static_cast<int64_t>(prompt.size());
            batch.push_back({s.id, prompt[static_cast<size_t>(pos)], pos, last});
            if (last) owner.push_back(&s);
        }
        chunks.emplace_back(&s, take);
        budget -= take;
        prompt_entries += take;
    }
    if (batch.empty()) return;

    lock.unlock();
    const auto t0 = Clock::now();
    std::string failure;
    try {
        session_.evaluate(batch);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    lock.lock();

    if (!failure.empty()) {
        for (Slot& s : slots_) {
            const bool involved = std::any_of(batch.begin(), batch.end(),
                                              [&](const BatchEntry& e) { return e.seq == s.id; });
            if (!involved || !s.task) continue;
            session_.clear(s.id);  // its cache may be partly written
            s.n_cached = 0;
            finish(s, "error", failure);
        }
        return;
    }
    ++counters_.forward_passes;
    counters_.pass_tokens += batch.size();
    if (decoding > 0) {
        ++counters_.decode_passes;
        counters_.decode_tokens += static_cast<uint64_t>(decoding);
    }
    counters_.prompt_tokens_evaluated += static_cast<uint64_t>(prompt_entries);
    // Split the pass's time between prompt and generation by entries.
    const double share = static_cast<double>(prompt_entries) / static_cast<double>(batch.size());
    counters_.prompt_seconds += seconds * share;
    counters_.generation_seconds += seconds * (1 - share);
    for (auto& [s, take] : chunks) s->n_prompt_done += take;
    for (Slot& s : slots_) s.n_cached = session_.n_past(s.id);

    for (size_t i = 0; i < owner.size(); ++i) {
        Slot& s = *owner[i];
        if (!s.task) continue;
        try {
            advance(s, session_.logits(i));
        } catch (const std::exception& e) {
            finish(s, "error", e.what());
        }
    }
}

// Samples the next token of a slot from its logits and streams what became final.
void Scheduler::advance(Slot& s, std::span<const float> all_logits) {
    const Tokenizer& tok = model_->tokenizer();
    Task& t = *s.task;
    if (!s.generating) {
        s.generating = true;
        std::lock_guard<std::mutex> tl(t.mu);
        t.prompt_done = Clock::now();
    }
    // Only ids the tokenizer knows are candidates (a model may pad its output rows).
    std::span<const float> logits = all_logits.first(std::min(all_logits.size(), tok.size()));
    if (!t.logit_bias.empty()) {
        biased_.assign(logits.begin(), logits.end());
        for (const auto& [id, b] : t.logit_bias) biased_[static_cast<size_t>(id)] += b;
        logits = biased_;
    }
    const TokenId next = s.sampler->sample(logits);
    s.sampler->accept(next);
    s.last = next;
    ++counters_.tokens_generated;
    {
        std::lock_guard<std::mutex> tl(t.mu);
        ++t.completion_tokens;
    }
    Event ev;
    if (t.logprobs >= 0) ev.logprobs.push_back(logprob_of(logits, next, t.logprobs));
    if (!t.ignore_eos && tok.is_end_of_generation(next)) {
        if (!ev.logprobs.empty()) push(t, std::move(ev));
        finish(s, "stop");
        return;
    }
    bool hit = false;
    ev.text = s.stops->push(s.decoder->push(next), hit);
    if (hit) {
        push(t, std::move(ev));
        finish(s, "stop", {}, false);  // nothing after the stop string is text
        return;
    }
    if (!ev.text.empty() || !ev.logprobs.empty()) push(t, std::move(ev));
    // max_tokens reached, or the slot's context is full.
    if ((t.max_tokens >= 0 && t.completion_tokens >= t.max_tokens) ||
        session_.n_past(s.id) >= n_ctx_) {
        finish(s, "length");
    }
}

}  // namespace bitnet::server
