// A conversation over one Session: each reply renders the whole conversation, keeps the
// longest cached prefix (Session::reuse_prefix) and evaluates only the rest.
#include <algorithm>
#include <string>
#include <utility>

#include <fmt/core.h>

#include "bitnet/chat.h"
#include "bitnet/error.h"

namespace bitnet {

namespace {

double per_second(int64_t n, double ms) {
    return ms > 0 ? 1000.0 * static_cast<double>(n) / ms : 0.0;
}

bool is_role(const Json& m, const char* role) {
    return m.at("role").get<std::string>() == role;
}

// Removes the oldest turn after the system message(s): a non-system message and every
// following one up to the next user message. Returns how many messages went, 0 when only the
// last user message (and what follows it) is left.
int drop_oldest_turn(Json& messages) {
    size_t first = 0;
    while (first < messages.size() && is_role(messages[first], "system")) ++first;
    size_t last_user = messages.size();
    for (size_t i = messages.size(); i-- > first;) {
        if (is_role(messages[i], "user")) {
            last_user = i;
            break;
        }
    }
    if (first >= last_user) return 0;
    size_t end = first + 1;
    while (end < last_user && !is_role(messages[end], "user")) ++end;
    messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first),
                   messages.begin() + static_cast<std::ptrdiff_t>(end));
    return static_cast<int>(end - first);
}

}  // namespace

double ChatStats::prompt_tokens_per_second() const {
    return per_second(new_tokens, prompt_ms);
}
double ChatStats::gen_tokens_per_second() const {
    return per_second(gen_tokens, gen_ms);
}

std::string ChatStats::summary() const {
    return fmt::format(
        "prompt: {} tokens ({} new, {} reused) in {:.1f} ms ({:.2f} tokens/s); generation: {} "
        "tokens in {:.1f} ms ({:.2f} tokens/s), stopped: {}",
        prompt_tokens, new_tokens, reused_tokens, prompt_ms, prompt_tokens_per_second(), gen_tokens,
        gen_ms, gen_tokens_per_second(), stop_reason_name(stop));
}

Conversation::Conversation(Session session, ChatFormatter formatter, ConversationOptions options)
    : session_(std::move(session)),
      formatter_(std::move(formatter)),
      options_(std::move(options)) {}

std::string Conversation::render(bool add_generation_prompt) const {
    ChatInput in = input_;
    in.add_generation_prompt = add_generation_prompt;
    return formatter_.render(in);
}

void Conversation::clear() {
    Json kept = Json::array();
    for (const Json& m : input_.messages) {
        if (is_role(m, "system")) kept.push_back(m);
    }
    input_.messages = std::move(kept);
}

void Conversation::set_system(const std::string& text) {
    Json& ms = input_.messages;
    ms.erase(
        std::remove_if(ms.begin(), ms.end(), [](const Json& m) { return is_role(m, "system"); }),
        ms.end());
    if (!text.empty()) ms.insert(ms.begin(), Json{{"role", "system"}, {"content", text}});
}

void Conversation::set_input(ChatInput input) {
    input_ = std::move(input);
}

// The conversation's ids, after dropping old turns when the context shift is on. Leaves room
// for the reply: n_predict tokens (a quarter of the context when unbounded), at most half.
std::vector<TokenId> Conversation::fit_context(ChatReply& out) {
    const int64_t n_ctx = session_.n_ctx();
    const int n_predict = options_.generate.n_predict;
    const int64_t room =
        std::min<int64_t>(n_predict >= 0 ? std::max(n_predict, 1) : n_ctx / 4, n_ctx / 2);
    input_.add_generation_prompt = true;
    std::vector<TokenId> ids = formatter_.tokenize(formatter_.render(input_));
    const int64_t first_size = static_cast<int64_t>(ids.size());
    int dropped = 0;
    while (options_.context_shift && static_cast<int64_t>(ids.size()) + room > n_ctx) {
        const int n = drop_oldest_turn(input_.messages);
        if (n == 0) break;
        dropped += n;
        ids = formatter_.tokenize(formatter_.render(input_));
    }
    if (dropped > 0) {
        out.notices.push_back(fmt::format(
            "context shift: dropped the {} oldest message(s) ({} -> {} tokens, context {}); the "
            "system message is kept",
            dropped, first_size, ids.size(), n_ctx));
    }
    out.stats.dropped_messages = dropped;
    if (static_cast<int64_t>(ids.size()) >= n_ctx) {
        throw Error(fmt::format(
            "the conversation is {} tokens but the context holds {}: raise -c, start over with "
            "/clear{}",
            ids.size(), n_ctx,
            options_.context_shift ? " (the last message alone does not fit)"
                                   : ", or use --context-shift to drop the oldest turns"));
    }
    return ids;
}

ChatReply Conversation::generate_reply(const OnText& on_text) {
    ChatReply out;
    const std::vector<TokenId> ids = fit_context(out);
    const int64_t kept = session_.reuse_prefix(ids);
    const std::vector<TokenId> rest(ids.begin() + kept, ids.end());
    const GenerateResult r = generate(session_, rest, options_.generate, on_text);
    input_.messages.push_back(Json{{"role", "assistant"}, {"content", r.text}});
    out.text = r.text;
    ChatStats& s = out.stats;
    s.prompt_tokens = static_cast<int64_t>(ids.size());
    s.reused_tokens = kept;
    s.new_tokens = static_cast<int64_t>(rest.size());
    s.gen_tokens = static_cast<int64_t>(r.ids.size());
    s.prompt_ms = r.prompt_ms;
    s.gen_ms = r.gen_ms;
    s.stop = r.stop;
    last_stats_ = s;
    return out;
}

ChatReply Conversation::reply(std::string_view user_text, const OnText& on_text) {
    const Json before = input_.messages;
    input_.messages.push_back(Json{{"role", "user"}, {"content", std::string(user_text)}});
    try {
        return generate_reply(on_text);
    } catch (...) {
        input_.messages = before;
        throw;
    }
}

ChatReply Conversation::regenerate(const OnText& on_text) {
    Json& ms = input_.messages;
    const Json before = ms;
    if (!ms.empty() && is_role(ms.back(), "assistant")) ms.erase(ms.end() - 1);
    if (ms.empty() || !is_role(ms.back(), "user"))
        throw Error("nothing to regenerate: the conversation does not end with a user message");
    try {
        return generate_reply(on_text);
    } catch (...) {
        ms = before;
        throw;
    }
}

}  // namespace bitnet
