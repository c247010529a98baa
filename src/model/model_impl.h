// Bound weights of a model, per layer, pointing into the mapped file.
#pragma once

#include <optional>
#include <vector>

#include "bitnet/model.h"
#include "core/page_buffer.h"
#include "kernels/matmul.h"

namespace bitnet {

// A matrix the forward pass multiplies by, or a vector it reads as floats.
struct LayerWeights {
    std::vector<float> attn_norm, attn_sub_norm, ffn_norm,
        ffn_sub_norm;  // sub-norms empty for llama
    WeightMatrix wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down;
};

class ModelImpl {
  public:
    GgufFile file;
    Hparams hp;
    std::optional<Tokenizer> tokenizer;
    // token_embd as stored (rows = n_vocab, cols = n_embd): rows are dequantized on lookup.
    WeightMatrix token_embd;
    WeightMatrix output;  // the lm head (token_embd when tied)
    std::vector<float> output_norm;
    std::vector<LayerWeights> layers;
    std::vector<std::string> assumptions, warnings;  // see Model::assumptions()
    // Weights held in memory instead of the mapped file (model.cpp, Holder): projections
    // rows16 (kernels/repack.h) or copied, the output head copied or requantized.
    std::vector<PageBuffer> held;  // one arena (one buffer per matrix under ASan)

    // The embedding of one token as floats.
    void embed(int32_t token, float* out) const;
};

}  // namespace bitnet
