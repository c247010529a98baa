// The forward pass over a batch of tokens: embeddings, one layer function per architecture over
// named intermediates, final norm, logits. Each row of the batch has its own KV cache and
// position, so one pass can advance several sequences (the server's slots) while reading the
// weights once; every row is computed exactly as it would be alone. Any intermediate can be
// dumped (as .npy, by name) for diffing against a reference.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/page_buffer.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"
#include "model/model_impl.h"

namespace bitnet {

// K and V of every past position, per layer, head-major: [n_head_kv][n_ctx] rows of head_dim
// values, so that attention streams each KV head's keys and values from consecutive memory.
// Each of K and V is held in F16 (the default, as llama.cpp), F32 or Q8_0 (kernels/attention.h).
struct KvCache {
    int64_t n_ctx = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;
    int64_t width = 0;  // n_head_kv · head_dim
    GgmlType type_k = GgmlType::F16;
    GgmlType type_v = GgmlType::F16;
    size_t k_row = 0;  // bytes of one cached key (head_dim values)
    size_t v_row = 0;
    int64_t n_layer = 0;

    void init(int64_t n_layer, int64_t ctx, int64_t heads, int64_t dim, GgmlType tk, GgmlType tv);
    // A layer's K rows and V rows (n_head_kv · n_ctx rows each), 64-byte aligned.
    uint8_t* k(int64_t layer) { return k_[static_cast<size_t>(layer)]; }
    uint8_t* v(int64_t layer) { return v_[static_cast<size_t>(layer)]; }
    const uint8_t* k(int64_t layer) const { return k_[static_cast<size_t>(layer)]; }
    const uint8_t* v(int64_t layer) const { return v_[static_cast<size_t>(layer)]; }
    // Row index of position `pos` of KV head `head` (times k_row or v_row for the byte offset).
    size_t row(int64_t head, int64_t pos) const { return static_cast<size_t>(head * n_ctx + pos); }

  private:
    // One buffer for all layers (huge pages where the kernel gives them), or one per layer's K
    // and V under AddressSanitizer (core/page_buffer.h).
    std::vector<PageBuffer> mem_;
    std::vector<uint8_t*> k_, v_;
};

// Activations of the batch being processed; each row is one token.
struct Activations {
    std::vector<float> x;         // residual stream   [T, n_embd]
    std::vector<float> cur;       // normed input      [T, n_embd]
    std::vector<float> q, k, v;   // projections       [T, n_embd], [T, kv], [T, kv]
    std::vector<float> attn;      // attention output  [T, n_embd]
    std::vector<float> proj;      // projected output  [T, n_embd]
    std::vector<float> gate, up;  // FFN               [T, n_ff]
    std::vector<float> scores;    // per thread        [threads, group, kKeyChunk]
    std::vector<float> partial;   // attention chunks  [jobs, group, head_dim + 2]
};

class Forward {
  public:
    Forward(const ModelImpl& model, KvCache& kv, ThreadPool& pool);

    // Runs tokens at positions pos0.. of `kv` (which must hold pos0 + n entries). Writes logits
    // of the last token, or of every token when all_logits, into `logits` ([rows, n_vocab]).
    void run(const int32_t* tokens, int64_t n, int64_t pos0, bool all_logits,
             std::vector<float>& logits);

    // One row of a batch over several sequences: the token, the cache it belongs to and its
    // position there. Rows of one sequence must be at consecutive positions after what its
    // cache holds; all rows store K and V before any row attends, so later rows of a
    // sequence see the earlier ones.
    struct Row {
        int32_t token;
        KvCache* cache;
        int64_t pos;
        bool logits;  // this row's logits are wanted
    };
    // Writes the logits of the rows that want them, in row order, into `logits`.
    void run(const std::vector<Row>& rows, std::vector<float>& logits);

    // Directory for dumps of named intermediates ("" = off).
    std::string dump_dir;
    // Check every named intermediate for NaN/Inf (the diagnostic pass after bad logits).
    bool check_finite = false;
    struct NonFinite {
        std::string name;  // "blk.3.ffn_down"
        int64_t pos;
        float value;
    };

    // Helpers the layer functions are written with; each works on all T rows.
    void norm(const std::vector<float>& in, const std::vector<float>& w, std::vector<float>& out,
              int64_t width);
    void mm(const WeightMatrix& w, const std::vector<float>& in, std::vector<float>& out);
    // Matrices reading the same input (Q/K/V, gate/up): one quantization, one parallel region.
    void mm_shared(std::initializer_list<const WeightMatrix*> ws, const std::vector<float>& in,
                   std::initializer_list<std::vector<float>*> outs);
    // a.gate = act(a.gate) ⊙ a.up, element by element (SiLU, or ReLU² for BitNet b1.58).
    void glu(bool relu_squared);
    // fn(t) for every row, split across threads when there are several.
    void for_rows(const std::function<void(int64_t)>& fn);
    void rope_qk();
    // Norm(x) → Q, K, V → RoPE → causal attention, leaving the result in a.attn.
    void self_attention(const LayerWeights& lw, int il);
    void attention(int il);
    void attend(int il);
    void add(std::vector<float>& x, const std::vector<float>& y);
    // run() without the logits check.
    void pass(const std::vector<Row>& rows, std::vector<float>& logits);
    void dump(const std::string& name, int il, const std::vector<float>& data, int64_t width);

    const ModelImpl& m;
    KvCache& kv;
    ThreadPool& pool;
    MatmulScratch scratch;
    Activations a;
    int64_t n_tokens = 0;
    int64_t pos0 = 0;               // position of the first row (names dumps)
    std::vector<KvCache*> caches;   // [n_tokens] each row's KV cache
    std::vector<int64_t> position;  // [n_tokens] each row's position in it
};

// One transformer block, per architecture (model/arch_*.cpp).
void bitnet_layer(Forward& f, int il);
void llama_layer(Forward& f, int il);

}  // namespace bitnet
