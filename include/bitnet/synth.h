// Synthetic models: real GGUF files with real shapes and vocabularies but random weights, for
// tests, benchmarks and demos. Every file this writes says so in general.description.
#pragma once

#include <cstdint>
#include <string>

#include "bitnet/quant.h"
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
    int64_t n_vocab = 0;                   // 0: take it from vocab_from (required then)
    std::string vocab_from;                // a GGUF whose tokenizer.* metadata is copied
    GgmlType weight_type = GgmlType::F16;  // projections
    GgmlType embd_type = GgmlType::F16;    // token_embd
    float rope_freq_base = 10000.0f;
    float rms_eps = 1e-5f;
    uint64_t seed = 1;
    // Projection weights scale·{-1, 0, +1} with one fp16-exact scale per tensor and every
    // 256-block holding ±scale, so TQ1_0, TQ2_0 and I2_S store exactly the same values.
    bool ternary = false;
    // Add blk.N.<projection>.scale tensors (upstream bitnet conversions carry them).
    bool projection_scales = false;
    // Microsoft's BitNet b1.58 2B-4T file layout: its 24 keys in order (general.name "bitnet2b",
    // general.file_type 40, no tokenizer.ggml.pre), its 332-tensor naming and types (F32 norms,
    // F16 token_embd, I2_S projections in the x86 layout). Shapes come from the fields above;
    // replica_2b4t_defaults() gives the released ones.
    bool replica_2b4t = false;
};

// The released 2B-4T shapes: 30 layers, width 2560, 20 heads (5 KV), FFN 6912, context 4096,
// RoPE base 500000; I2_S projections, F16 embeddings, ternary weights.
SynthOptions replica_2b4t_defaults();

// Writes the model atomically to `path`. Throws Error on inconsistent options.
void write_synthetic_model(const SynthOptions& options, const std::string& path);

}  // namespace bitnet
