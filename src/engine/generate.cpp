#include "bitnet/generate.h"

#include <algorithm>
#include <chrono>

#include "bitnet/error.h"
#include "engine/stop_filter.h"

namespace bitnet {

std::string_view stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::Length:
            return "length";
        case StopReason::EndOfGeneration:
            return "eos";
        case StopReason::StopString:
            return "stop";
        case StopReason::ContextFull:
            return "context";
        case StopReason::Cancelled:
            return "cancelled";
    }
    return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

GenerateResult generate(Session& session, const std::vector<TokenId>& prompt_ids,
                        const GenerateOptions& o,
                        const std::function<bool(std::string_view)>& on_text) {
    if (prompt_ids.empty()) throw Error("the prompt is empty (no tokens to start from)");
    const Tokenizer& tok = session.model().tokenizer();
    GenerateResult r;
    r.prompt_ids = prompt_ids;
    Sampler sampler(o.sampling);
    // Penalties look at the whole context, including tokens a reused prefix left in the cache.
    for (TokenId t : session.history()) sampler.accept(t);
    for (TokenId t : prompt_ids) sampler.accept(t);
    StopFilter stops(o.stop);
    StreamDecoder decoder(tok);

    const auto t0 = Clock::now();
    session.evaluate(prompt_ids);
    r.prompt_ms = ms_since(t0);

    const auto t1 = Clock::now();
    bool cancelled = false;
    auto emit = [&](const std::string& s) {
        if (s.empty()) return;
        r.text += s;
        if (on_text && !on_text(s)) cancelled = true;
    };
    r.stop = StopReason::Length;
    for (int i = 0; o.n_predict < 0 || i < o.n_predict; ++i) {
        const TokenId next = sampler.sample(session.logits());
        sampler.accept(next);
        r.ids.push_back(next);
        if (o.stop_at_end_of_generation && tok.is_end_of_generation(next)) {
            r.stop = StopReason::EndOfGeneration;
            break;
        }
        bool hit = false;
        emit(stops.push(decoder.push(next), hit));
        if (hit) {
            r.stop = StopReason::StopString;
            break;
        }
        if (cancelled) {
            r.stop = StopReason::Cancelled;
            break;
        }
        if (o.n_predict >= 0 && i + 1 == o.n_predict) break;  // no need to evaluate the last token
        if (session.n_past() >= session.n_ctx()) {
            r.stop = StopReason::ContextFull;
            break;
        }
        session.evaluate(std::span<const TokenId>(&next, 1));
    }
    if (r.stop != StopReason::StopString) {
        bool hit = false;
        emit(stops.push(decoder.flush(), hit));
        if (hit) {
            r.stop = StopReason::StopString;
        } else {
            emit(stops.flush());
        }
    }
    r.gen_ms = ms_since(t1);
    return r;
}

}  // namespace bitnet
