// A loaded model: hyperparameters, the tokenizer, and the weights bound in place in the
// mmapped file (no dequantization at load).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/gguf.h"
#include "bitnet/quant.h"
#include "bitnet/tokenizer.h"

namespace bitnet {

enum class Architecture {
    Bitnet,      // upstream llama.cpp "bitnet": sub-norms, SiLU-gated FFN, optional .scale tensors
    BitnetB158,  // Microsoft's "bitnet-b1.58" / "bitnet-25": sub-norms, ReLU²-gated FFN
    Llama,       // standard Llama
};

struct Hparams {
    Architecture arch = Architecture::Llama;
    std::string arch_name;  // general.architecture as written
    int64_t n_vocab = 0;
    int64_t n_ctx_train = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;
    int64_t n_ff = 0;
    int64_t n_rot = 0;  // RoPE dimensions per head
    float rope_freq_base = 10000.0f;
    float rms_eps = 1e-5f;
    bool neox_rope = false;
    bool tied_output = true;
};

struct ModelOptions {
    // How I2_S codes are packed. Auto: as the file's kI2sLayoutKey says (files this engine
    // writes), else x86 (Microsoft's released files, which do not say).
    I2sLayout i2s_layout = I2sLayout::Auto;
    // Requantize the output head at load (llama.cpp's --head-type idea from bitnet.cpp): Q8_0
    // halves the bytes a decode step reads from an F16 head. The embedding lookup of a tied
    // head stays exact. Unset: the file's own type.
    std::optional<GgmlType> head_type;
};

// Metadata key (our own namespace) recording the I2_S layout ("x86" or "arm") of files this
// engine writes; Microsoft's files lack it and are read as x86.
inline constexpr const char* kI2sLayoutKey = "bitnet_engine.i2_s_layout";

// The layout to read `file`'s I2_S tensors with: `requested` unless Auto, else the file's
// kI2sLayoutKey, else Auto (x86 unless a tensor's size only fits ARM blocks). When the layout is
// a guess, `assumption` (if given) receives a sentence saying so. Throws Error for a bad key.
I2sLayout i2s_layout_for(const GgufFile& file, I2sLayout requested, std::string* assumption);

class ModelImpl;

class Model {
  public:
    // Loads and validates; throws Error naming the key or tensor (and expected shape).
    static std::shared_ptr<Model> load(const std::string& path, const ModelOptions& options = {});
    ~Model();

    const Hparams& hparams() const;
    const Tokenizer& tokenizer() const;
    const GgufFile& file() const;
    // Human-readable one-line description ("bitnet-b1.58, 30 layers, ...").
    std::string describe() const;
    // Bytes of weights one decode step reads: every projection, the output head and one
    // embedding row (the KV cache comes on top).
    uint64_t weight_bytes_per_token() const;
    // Bytes of weights held in the engine's own memory instead of the mapped file (rearranged,
    // requantized or copied at load; huge pages where the kernel gives them).
    uint64_t held_weight_bytes() const;
    // The kernels the matrix multiplications use ("TQ2_0 avx2, head F16 avx2").
    std::string kernel_summary() const;
    // Guesses taken while loading, one sentence each (the I2_S layout assumed, a pre-tokenizer
    // recognised without tokenizer.ggml.pre, end-of-turn tokens found by their text): shown
    // with --verbose and by `bitnet inspect`, so that they land in bug reports.
    const std::vector<std::string>& assumptions() const;
    // Problems in the file that were worked around (special-token ids outside the
    // vocabulary, ignored); front ends show these always.
    const std::vector<std::string>& warnings() const;

    const ModelImpl& impl() const { return *impl_; }

  private:
    explicit Model(std::unique_ptr<ModelImpl> impl);
    std::unique_ptr<ModelImpl> impl_;
};

}  // namespace bitnet
