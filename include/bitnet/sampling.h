// Choosing the next token from logits: penalties, then top-k, top-p and min-p filters (on
// probabilities at temperature 1), then temperature, then a seeded draw. Temperature 0 (or
// less) is greedy. The same seed and settings give the same choices on every machine.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>

#include "bitnet/tokenizer.h"

namespace bitnet {

struct SamplingOptions {
    float temperature = 0.8f;
    int top_k = 40;               // 0: off
    float top_p = 0.95f;          // 1: off
    float min_p = 0.05f;          // 0: off
    float repeat_penalty = 1.0f;  // 1: off; divides positive logits, multiplies negative ones
    int repeat_last_n = 64;       // how many recent tokens the penalties look at
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    uint64_t seed = 0;
};

// Throws Error naming the first option out of range.
void validate(const SamplingOptions& options);

class Sampler {
  public:
    explicit Sampler(const SamplingOptions& options);
    // Picks a token. Does not remember it: call accept() for tokens that join the context.
    TokenId sample(std::span<const float> logits);
    void accept(TokenId id);
    const SamplingOptions& options() const { return o_; }

    // The candidate distribution after penalties and filters (token, probability), sorted by
    // probability; what sample() draws from. Exposed for tests and diagnostics.
    std::vector<std::pair<TokenId, float>> distribution(std::span<const float> logits) const;

  private:
    std::vector<float> penalized(std::span<const float> logits) const;
    double uniform();

    SamplingOptions o_;
    uint64_t state_[4];
    std::deque<TokenId> recent_;
};

}  // namespace bitnet
