// An inference session over a model: a KV cache of n_ctx positions, worker threads, and the
// logits of the last evaluation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bitnet/model.h"
#include "bitnet/types.h"

namespace bitnet {

struct SessionOptions {
    int64_t n_ctx = 0;      // 0: the model's training context, at most 4096
    int threads = 0;        // 0: all hardware threads
    int64_t n_batch = 512;  // tokens per forward pass while processing a prompt
    std::string dump_dir;   // write every named intermediate here (.npy); "" = off, unless the
                            // environment variable BITNET_DUMP_TENSORS names a folder
    // How K and V are cached (llama.cpp's --cache-type-k / --cache-type-v): F16 (default), F32
    // (twice the memory) or Q8_0 (ggml's 8-bit blocks: 0.53 of F16's bytes; head_dim must be a
    // multiple of 32). Anything else is refused with NotSupported.
    GgmlType type_k = GgmlType::F16;
    GgmlType type_v = GgmlType::F16;
};

class SessionImpl;

class Session {
  public:
    // Throws Error for absurd options (n_ctx, threads, n_batch out of range).
    Session(std::shared_ptr<const Model> model, const SessionOptions& options = {});
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;

    // Appends tokens after the ones already evaluated. With all_logits, logits(i) is defined
    // for every new token i; otherwise only for the last. Throws Error when the context is full
    // or a token is outside the vocabulary (nothing is appended then).
    void evaluate(std::span<const int32_t> tokens, bool all_logits = false);

    // Logits after the i-th token of the last evaluate() (-1: the last one); n_vocab floats.
    std::span<const float> logits(int64_t i = -1) const;

    int64_t n_past() const;  // tokens in the KV cache
    int64_t n_ctx() const;
    // Forgets everything after the first n tokens (0: start over).
    void truncate(int64_t n);

    // The token ids in the KV cache, in order (n_past() of them).
    std::span<const int32_t> history() const;
    // Prefix reuse (chat turns, server slots): keeps the longest common prefix of the cache
    // and `ids`, forgets the rest, and returns how many tokens were kept, so that only
    // ids[kept..] needs evaluating. At least one token of `ids` is always left to evaluate
    // (so that fresh logits exist): when all of `ids` is cached, ids.size() - 1 are kept.
    int64_t reuse_prefix(std::span<const int32_t> ids);

    const Model& model() const;
    int threads() const;

  private:
    std::unique_ptr<SessionImpl> impl_;
};

}  // namespace bitnet
