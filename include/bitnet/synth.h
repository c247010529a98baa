// Synthetic models: real GGUF files with real shapes and vocabularies but random weights, for
// tests, benchmarks and demos. Every file this writes says so in general.description.
#pragma once

#include <cstdint>
#include <string>

#include "bitnet/types.h"

namespace bitnet {

struct SynthOptions {
    std::string architecture = "bitnet";  // bitnet | bitnet-b1.58 | llama
    int64_t n_embd = 256;
    int64_t n_layer = 2;
    int64_t n_head = 4;
    int64_t n_head_kv = 2;
    int64_t n_ff = 640;
    int64_t n_ctx = 2048;
    int64_t n_vocab = 0;             // 0: take it from vocab_from (required then)
    std::string vocab_from;          // a GGUF whose tokenizer.* metadata is copied
    GgmlType weight_type = GgmlType::F16;  // projections
    GgmlType embd_type = GgmlType::F16;    // token_embd
    float rope_freq_base = 10000.0f;
    float rms_eps = 1e-5f;
    uint64_t seed = 1;
};

// Writes the model atomically to `path`. Throws Error on inconsistent options.
void write_synthetic_model(const SynthOptions& options, const std::string& path);

}  // namespace bitnet
