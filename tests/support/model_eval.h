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

// log p(ids[i+1] | ids[..i]) for every position, from one batched evaluation (2 threads).
std::vector<double> our_logprobs(const std::string& model, const std::vector<TokenId>& ids,
                                 bool kv_f32 = false);

// Runs `program args... IN.json OUT.json` with `request` as IN.json; returns OUT.json (an
// empty object, with a test failure, when the program fails).
nlohmann::json run_json(const std::string& program, const std::vector<std::string>& args,
                        const nlohmann::json& request);

// llama.cpp (node-llama-cpp, tests/reference/logits.mjs) on the model: {"logprobs": [...],
// "greedy": [...]} for `ids` and n_predict greedy tokens.
nlohmann::json llama_cpp(const std::string& model, const std::vector<TokenId>& ids, int n_predict);

}  // namespace bitnet::test
