// The generation loop: prompt processing, then sample, evaluate, stream, until a stop
// condition. Text is streamed in complete UTF-8 pieces and never includes a stop string.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/sampling.h"
#include "bitnet/session.h"

namespace bitnet {

struct GenerateOptions {
    int n_predict = 128;  // at most this many new tokens (< 0: until a stop)
    SamplingOptions sampling;
    std::vector<std::string> stop;          // stop strings (not included in the output)
    bool stop_at_end_of_generation = true;  // EOS/EOT tokens end the answer
};

enum class StopReason { Length, EndOfGeneration, StopString, ContextFull, Cancelled };
std::string_view stop_reason_name(StopReason r);

struct GenerateResult {
    std::vector<TokenId> prompt_ids;  // as evaluated (BOS included when the model adds one)
    std::vector<TokenId> ids;         // generated ids (an ending EOS/EOT is included)
    std::string text;                 // generated text, up to any stop string
    StopReason stop = StopReason::Length;
    double prompt_ms = 0, gen_ms = 0;
};

// Evaluates `prompt_ids` after whatever the session holds (the penalties see both), then
// generates. `on_text` receives
// text as it becomes final; returning false cancels.
GenerateResult generate(Session& session, const std::vector<TokenId>& prompt_ids,
                        const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text = {});

}  // namespace bitnet
