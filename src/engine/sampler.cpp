#include "bitnet/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "bitnet/error.h"

namespace bitnet {

void validate(const SamplingOptions& o) {
    auto bad = [](const std::string& what) { return Error("sampling: " + what); };
    if (!std::isfinite(o.temperature) || o.temperature > 100.0f)
        throw bad("temperature must be at most 100");
    if (o.top_k < 0) throw bad("top-k must be 0 (off) or positive");
    if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) throw bad("top-p must be in (0, 1]");
    if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) throw bad("min-p must be in [0, 1]");
    if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty))
        throw bad("repeat penalty must be positive");
    if (o.repeat_last_n < 0 || o.repeat_last_n > (1 << 20))
        throw bad("repeat-last-n must be in 0..1048576");
    if (!std::isfinite(o.frequency_penalty) || !std::isfinite(o.presence_penalty))
        throw bad("penalties must be finite");
}

Sampler::Sampler(const SamplingOptions& o) : o_(o) {
    validate(o);
    // xoshiro256** seeded through splitmix64: specified bit for bit, unlike std:: engines'
    // distributions.
    uint64_t x = o.seed;
    for (uint64_t& s : state_) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s = z ^ (z >> 31);
    }
}

double Sampler::uniform() {
    auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return static_cast<double>(result >> 11) * 0x1.0p-53;
}

void Sampler::accept(TokenId id) {
    recent_.push_back(id);
    while (recent_.size() > static_cast<size_t>(o_.repeat_last_n)) recent_.pop_front();
}

std::vector<float> Sampler::penalized(std::span<const float> logits) const {
    std::vector<float> l(logits.begin(), logits.end());
    if (recent_.empty()) return l;
    std::unordered_map<TokenId, int> count;
    for (TokenId t : recent_) {
        if (t >= 0 && static_cast<size_t>(t) < l.size()) ++count[t];
    }
    for (const auto& [t, c] : count) {
        float& v = l[static_cast<size_t>(t)];
        if (o_.repeat_penalty != 1.0f) v = v > 0.0f ? v / o_.repeat_penalty : v * o_.repeat_penalty;
        v -= static_cast<float>(c) * o_.frequency_penalty + (c > 0 ? o_.presence_penalty : 0.0f);
    }
    return l;
}

std::vector<std::pair<TokenId, float>> Sampler::distribution(std::span<const float> logits) const {
    const std::vector<float> l = penalized(logits);
    // Never choose from NaN: a NaN compares false with everything and would make the sort and
    // the draw meaningless. -inf (a ban) is fine as long as something remains.
    bool any_finite = false;
    for (size_t i = 0; i < l.size(); ++i) {
        if (std::isnan(l[i]) || l[i] == INFINITY) {
            const bool from_penalty = std::isfinite(logits[i]);
            throw Error(
                "sampling: the logit of token " + std::to_string(i) + " is " +
                (std::isnan(l[i]) ? "NaN" : "+inf") +
                (from_penalty ? " after the repetition penalties (check their values)" : "") +
                "; refusing to sample");
        }
        any_finite = any_finite || l[i] != -INFINITY;
    }
    if (!any_finite) throw Error("sampling: every token's logit is -inf; nothing to sample");
    std::vector<TokenId> ids(l.size());
    std::iota(ids.begin(), ids.end(), 0);
    auto by_logit = [&](TokenId a, TokenId b) {
        const float la = l[static_cast<size_t>(a)], lb = l[static_cast<size_t>(b)];
        return la > lb || (la == lb && a < b);
    };
    if (o_.temperature <= 0.0f) {
        const TokenId best = *std::min_element(ids.begin(), ids.end(), by_logit);
        return {{best, 1.0f}};
    }
    size_t keep = ids.size();
    if (o_.top_k > 0 && static_cast<size_t>(o_.top_k) < keep) keep = static_cast<size_t>(o_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(),
                      by_logit);
    ids.resize(keep);
    // Probabilities at temperature 1 decide the top-p and min-p cuts.
    const float max = l[static_cast<size_t>(ids[0])];
    std::vector<double> p(ids.size());
    double sum = 0.0;
    for (size_t i = 0; i < ids.size(); ++i)
        sum += p[i] = std::exp(static_cast<double>(l[static_cast<size_t>(ids[i])] - max));
    for (double& x : p) x /= sum;
    if (o_.top_p < 1.0f) {
        double cum = 0.0;
        size_t n = 0;
        while (n < p.size()) {
            cum += p[n++];
            if (cum >= o_.top_p) break;
        }
        ids.resize(n);
        p.resize(n);
    }
    if (o_.min_p > 0.0f) {
        const double cut = p[0] * o_.min_p;
        size_t n = 1;
        while (n < p.size() && p[n] >= cut) ++n;
        ids.resize(n);
        p.resize(n);
    }
    // Temperature on the survivors' logits.
    std::vector<std::pair<TokenId, float>> out(ids.size());
    double z = 0.0;
    std::vector<double> w(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        z += w[i] =
            std::exp(static_cast<double>(l[static_cast<size_t>(ids[i])] - max) / o_.temperature);
    }
    for (size_t i = 0; i < ids.size(); ++i) out[i] = {ids[i], static_cast<float>(w[i] / z)};
    return out;
}

TokenId Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) throw Error("sampling: no logits");
    const auto dist = distribution(logits);
    if (dist.size() == 1) return dist[0].first;
    const double r = uniform();
    double cum = 0.0;
    for (const auto& [id, prob] : dist) {
        cum += prob;
        if (r < cum) return id;
    }
    return dist.back().first;
}

}  // namespace bitnet
