// Whole-model evaluation helpers shared by the parity tests: our per-position log-probabilities
// of the next tokens, their comparison, and running a reference program over JSON files.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitnet/tokenizer.h"

namespace bitnet::test {

struct Stats {
    double mean = 0, max = 0;
};

// Mean and max of |a[i] - b[i]| (a test failure when the sizes differ).
Stats compare(const std::vector<double>& a, const std::vector<double>& b);

// log p(ids[i+1] | ids[..i]) for every position, from one batched evaluation (2 threads), with
// K and V cached as `kv` (F16, F32 or Q8_0).
std::vector<double> our_logprobs(const std::string& model, const std::vector<TokenId>& ids,
                                 GgmlType kv = GgmlType::F16);

// Runs `program args... IN.json OUT.json` with `request` as IN.json; returns OUT.json (an
// empty object, with a test failure, when the program fails).
nlohmann::json run_json(const std::string& program, const std::vector<std::string>& args,
                        const nlohmann::json& request);

// llama.cpp (node-llama-cpp, tests/reference/logits.mjs) on the model: {"logprobs": [...],
// "greedy": [...]} for `ids` and n_predict greedy tokens.
// With `kv` (F16 or Q8_0) as the KV cache type of K and V (a quantized V needs llama.cpp's flash
// attention, which is then on).
nlohmann::json llama_cpp(const std::string& model, const std::vector<TokenId>& ids, int n_predict,
                         GgmlType kv = GgmlType::F16);

}  // namespace bitnet::test
