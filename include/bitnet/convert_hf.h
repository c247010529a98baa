// Hugging Face checkpoints to GGUF (`bitnet convert HF_DIR -o OUT.gguf`).
//
// Reads a model folder: config.json, model.safetensors (or the shards of
// model.safetensors.index.json), tokenizer.json with tokenizer_config.json (chat template,
// special tokens, add_bos_token) and generation_config.json (extra end-of-generation ids).
//
//   config.json architectures[0]   weights                              GGUF architecture
//   BitNetForCausalLM (2B-4T)      packed uint8 ternary + weight_scale  bitnet-b1.58 (ReLU²)
//                                  or bf16/f16/f32 master weights       bitnet-b1.58
//   BitnetForCausalLM (1bitLLM)    full-precision latent weights        bitnet (SiLU)
//                                  (its weights; the SentencePiece tokenizer.json the originals
//                                  ship is not read yet: NotSupported)
//   LlamaForCausalLM               float weights                        llama (Q/K permuted)
//
// Packed BitNet projections (MODELS.md): uint8 [out/4, in], unpacked row i*R + r of the
// ternary matrix is ((byte[r] >> 2i) & 3) - 1, R = out/4 (transformers' unpack_weights).
// Their scalar weight_scale divides under transformers' BitLinear and multiplies under
// AutoBitLinear: quantization_config.linear_class decides ("bitlinear", transformers' default
// when absent, or "autobitlinear"). Float BitNet weights are absmean-quantized per tensor
// (scale = mean |W|, t = clamp(round(W / scale), -1, 1), weight t·scale: the BitNet b1.58 paper,
// llama.cpp's converter); weights already ternary are never re-quantized. The GGUF holds
// the effective weights t·scale in the chosen type (exact in TQ1_0, TQ2_0 and I2_S).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/quant.h"
#include "bitnet/types.h"

namespace bitnet {

struct HfConvertOptions {
    // Projections. Default: I2_S for bitnet-b1.58, TQ2_0 for bitnet, F16 for llama. Ternary
    // types are refused for a float Llama, I2_S for anything but bitnet-b1.58.
    std::optional<GgmlType> type;
    std::optional<GgmlType> embd_type;  // token_embd.weight (default F16; not ternary)
    // output.weight (default F16 when the checkpoint has lm_head). On a tied checkpoint this
    // writes a separate output.weight, a second vocab x width matrix in the file.
    std::optional<GgmlType> output_type;
    // Empty: the architecture the checkpoint implies. Otherwise it must be that one.
    std::string architecture;
    I2sLayout i2s_layout = I2sLayout::X86;
    int threads = 1;
};

struct HfConvertReport {
    std::string checkpoint_class;  // config.json architectures[0]
    std::string architecture;      // written general.architecture
    std::string weights;           // how projections were read (packed/master/float, scale rule)
    size_t tensors = 0;            // written
    uint64_t file_bytes = 0;
    double seconds = 0;
    std::vector<std::string> notes;  // what was assumed or left out, one line each
};

// Converts the folder `dir` into `out` (written atomically: nothing is left on failure).
// Everything is checked before the file is written: unknown or missing tensors, shapes,
// dtypes. `progress(done, total)` is called after each tensor.
HfConvertReport convert_hf_checkpoint(const std::string& dir, const std::string& out,
                                      const HfConvertOptions& options,
                                      const std::function<void(size_t, size_t)>& progress = {});

}  // namespace bitnet
