// Several sequences over one model, advanced together: a batch of (sequence, token, position,
// wants-logits) entries from any of them is evaluated in one forward pass, so the weights are
// read once per step for all (continuous batching, as a server's slots need). Each sequence has
// its own KV cache of n_ctx positions and can be cleared, truncated or forked independently.
//
// Results never depend on the company a sequence keeps: the logits of an entry are bit-identical
// whether its sequence is evaluated alone, in another split, or batched with other sequences
// (every kernel computes each row the same way whatever the batch).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bitnet/model.h"
#include "bitnet/tokenizer.h"

namespace bitnet {

struct MultiSessionOptions {
    int n_seq = 1;          // sequences (server slots), 1..256
    int64_t n_ctx = 0;      // positions per sequence; 0: the model's training context, at most 4096
    int threads = 0;        // 0: all hardware threads
    int64_t n_batch = 512;  // entries per forward pass (longer batches are split)
    GgmlType type_k = GgmlType::F16;  // see SessionOptions::type_k
    GgmlType type_v = GgmlType::F16;
    std::string dump_dir;  // see SessionOptions::dump_dir
};

struct BatchEntry {
    int seq = 0;          // 0..n_seq-1
    TokenId token = 0;    // 0..n_vocab-1
    int64_t pos = 0;      // must be n_past(seq), then +1 for each further entry of that sequence
    bool logits = false;  // keep this entry's logits
};

class MultiSessionImpl;

class MultiSession {
  public:
    // Throws Error for absurd options, or when n_seq KV caches would not fit in physical memory
    // (the message gives the total).
    MultiSession(std::shared_ptr<const Model> model, const MultiSessionOptions& options = {});
    ~MultiSession();
    MultiSession(MultiSession&&) noexcept;
    MultiSession& operator=(MultiSession&&) noexcept;

    // Evaluates every entry. All entries are checked first (sequence, token, position, room in
    // the context); on an error nothing is evaluated and no cache changes. Entries of one
    // sequence must come in order; sequences may interleave freely.
    void evaluate(std::span<const BatchEntry> batch);

    // The logits of the i-th entry of the last evaluate() that asked for them (i counts only
    // those entries, in batch order); n_vocab floats. Throws Error when i is out of range.
    std::span<const float> logits(size_t i) const;
    size_t n_logits() const;

    int n_seq() const;
    int64_t n_ctx() const;  // per sequence
    int64_t n_past(int seq) const;
    std::span<const TokenId> history(int seq) const;
    // Forgets everything after the first n tokens of `seq` (0: empty).
    void truncate(int seq, int64_t n);
    void clear(int seq) { truncate(seq, 0); }
    // Makes `dst` hold the first n tokens of `src` (their K and V copied, not recomputed).
    void fork(int src, int dst, int64_t n);
    // Keeps the longest common prefix of the cache of `seq` and `ids` (leaving at least one id
    // to evaluate) and returns its length; see Session::reuse_prefix.
    int64_t reuse_prefix(int seq, std::span<const TokenId> ids);
    // Bytes of all KV caches together.
    uint64_t kv_bytes() const;

    const Model& model() const;
    int threads() const;

  private:
    std::unique_ptr<MultiSessionImpl> impl_;
};

}  // namespace bitnet
