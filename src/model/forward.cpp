#include "model/forward.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <type_traits>

#include <fmt/format.h>

#include "bitnet/error.h"
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/ops.h"

namespace bitnet {

void KvCache::init(int64_t n_layer, int64_t ctx, int64_t kv_width, bool use_f32) {
    n_ctx = ctx;
    width = kv_width;
    f32 = use_f32;
    const auto layers = static_cast<size_t>(n_layer), n = static_cast<size_t>(ctx * kv_width);
    if (f32) {
        k32.assign(layers, std::vector<float>(n));
        v32.assign(layers, std::vector<float>(n));
    } else {
        k16.assign(layers, std::vector<uint16_t>(n));
        v16.assign(layers, std::vector<uint16_t>(n));
    }
}

Forward::Forward(const ModelImpl& model, KvCache& cache, ThreadPool& threads)
    : m(model), kv(cache), pool(threads) {}

void Forward::norm(const std::vector<float>& in, const std::vector<float>& w,
                   std::vector<float>& out, int64_t width) {
    out.resize(static_cast<size_t>(n_tokens * width));
    for (int64_t t = 0; t < n_tokens; ++t) {
        rms_norm(in.data() + t * width, w.data(), out.data() + t * width, width, m.hp.rms_eps);
    }
}

void Forward::mm(const WeightMatrix& w, const std::vector<float>& in, std::vector<float>& out) {
    out.resize(static_cast<size_t>(n_tokens * w.rows));
    matmul(w, in.data(), n_tokens, out.data(), pool, scratch);
}

void Forward::add(std::vector<float>& x, const std::vector<float>& y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

void Forward::rope_qk() {
    const Hparams& h = m.hp;
    const RopeStyle style = h.neox_rope ? RopeStyle::Neox : RopeStyle::Normal;
    for (int64_t t = 0; t < n_tokens; ++t) {
        rope(a.q.data() + t * h.n_embd, h.n_head, h.head_dim, h.n_rot, pos0 + t, h.rope_freq_base,
             style);
        rope(a.k.data() + t * kv.width, h.n_head_kv, h.head_dim, h.n_rot, pos0 + t,
             h.rope_freq_base, style);
    }
}

void Forward::self_attention(const LayerWeights& lw, int il) {
    const int64_t width = m.hp.n_embd;
    norm(a.x, lw.attn_norm, a.cur, width);
    dump("attn_norm", il, a.cur, width);
    mm(lw.wq, a.cur, a.q);
    mm(lw.wk, a.cur, a.k);
    mm(lw.wv, a.cur, a.v);
    rope_qk();
    dump("Qcur", il, a.q, width);
    dump("Kcur", il, a.k, kv.width);
    dump("Vcur", il, a.v, kv.width);
    attention(il);
    dump("kqv_out", il, a.attn, width);
}

// Causal grouped-query attention for the batch, after storing its K and V in the cache.
// Scores, softmax and the weighted sum of V are computed in float32.
void Forward::attention(int il) {
    const auto l = static_cast<size_t>(il);
    const size_t off = static_cast<size_t>(pos0 * kv.width);
    const size_t n = static_cast<size_t>(n_tokens * kv.width);
    if (kv.f32) {
        std::copy(a.k.begin(), a.k.begin() + static_cast<std::ptrdiff_t>(n),
                  kv.k32[l].begin() + static_cast<std::ptrdiff_t>(off));
        std::copy(a.v.begin(), a.v.begin() + static_cast<std::ptrdiff_t>(n),
                  kv.v32[l].begin() + static_cast<std::ptrdiff_t>(off));
        attend(kv.k32[l].data(), kv.v32[l].data());
    } else {
        for (size_t i = 0; i < n; ++i) {
            kv.k16[l][off + i] = fp32_to_fp16(a.k[i]);
            kv.v16[l][off + i] = fp32_to_fp16(a.v[i]);
        }
        attend(kv.k16[l].data(), kv.v16[l].data());
    }
}

template <typename T>
void Forward::attend(const T* K, const T* V) {
    const Hparams& h = m.hp;
    a.attn.assign(static_cast<size_t>(n_tokens * h.n_embd), 0.0f);
    a.scores.resize(static_cast<size_t>(pool.size() * kv.n_ctx));
    const float scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
    const int64_t group = h.n_head / h.n_head_kv;
    const AttentionKernels& ak = attention_kernels();
    const auto dot = [&] {
        if constexpr (std::is_same_v<T, uint16_t>) {
            return ak.dot_f16;
        } else {
            return ak.dot_f32;
        }
    }();
    const auto axpy = [&] {
        if constexpr (std::is_same_v<T, uint16_t>) {
            return ak.axpy_f16;
        } else {
            return ak.axpy_f32;
        }
    }();
    pool.parallel_for(n_tokens * h.n_head, 1, [&](int thread, int64_t begin, int64_t end) {
        float* s = a.scores.data() + static_cast<size_t>(thread) * static_cast<size_t>(kv.n_ctx);
        for (int64_t job = begin; job < end; ++job) {
            const int64_t t = job / h.n_head, head = job % h.n_head;
            const int64_t kvh = head / group;
            const int64_t n_keys = pos0 + t + 1;  // causal: positions 0..pos0+t
            const float* q = a.q.data() + t * h.n_embd + head * h.head_dim;
            for (int64_t p = 0; p < n_keys; ++p) {
                const T* k = K + p * kv.width + kvh * h.head_dim;
                s[p] = dot(q, k, h.head_dim) * scale;
            }
            softmax(s, n_keys);
            float* out = a.attn.data() + t * h.n_embd + head * h.head_dim;
            for (int64_t p = 0; p < n_keys; ++p) {
                const T* v = V + p * kv.width + kvh * h.head_dim;
                axpy(s[p], v, out, h.head_dim);
            }
        }
    });
}

void Forward::dump(const std::string& name, int il, const std::vector<float>& data, int64_t width) {
    if (check_finite) {
        for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t i = 0; i < width; ++i) {
                const float v = data[static_cast<size_t>(t * width + i)];
                if (!std::isfinite(v)) {
                    throw NonFinite{(il >= 0 ? "blk." + std::to_string(il) + "." : "") + name,
                                    pos0 + t, v};
                }
            }
        }
    }
    if (dump_dir.empty()) return;
    std::filesystem::create_directories(dump_dir);
    const std::string file = dump_dir + "/" +
                             (il >= 0 ? "blk." + std::to_string(il) + "." : std::string()) + name +
                             ".pos" + std::to_string(pos0) + ".npy";
    // NumPy .npy v1: magic, header length, a dict padded to 64 bytes, then little-endian f32.
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                         std::to_string(n_tokens) + ", " + std::to_string(width) + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(file, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const auto len = static_cast<uint16_t>(header.size());
    out.write(reinterpret_cast<const char*>(&len), 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(n_tokens * width * 4));
    if (!out) throw Error(file + ": cannot write tensor dump");
}

void Forward::run(const int32_t* tokens, int64_t n, int64_t p0, bool all_logits,
                  std::vector<float>& logits) {
    pass(tokens, n, p0, all_logits, logits);
    // NaN or +Inf logits are never handed on (a user's -inf bias is applied later, by the
    // sampler). Finding the first bad intermediate costs one more pass with checks, taken only
    // after the cheap scan of the logits failed.
    const int64_t n_vocab = m.hp.n_vocab;
    const int64_t rows = static_cast<int64_t>(logits.size()) / n_vocab;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < n_vocab; ++i) {
            const float v = logits[static_cast<size_t>(r * n_vocab + i)];
            if (!std::isnan(v) && v != INFINITY) continue;
            const int64_t pos = p0 + (n - rows) + r;
            std::string where = "result_output";
            std::vector<float> ignored;
            struct Checking {  // checks stay on for this pass only, however it ends
                bool& flag;
                explicit Checking(bool& f) : flag(f) { flag = true; }
                ~Checking() { flag = false; }
                Checking(const Checking&) = delete;
                Checking& operator=(const Checking&) = delete;
            } checking(check_finite);
            try {
                pass(tokens, n, p0, all_logits, ignored);
            } catch (const NonFinite& e) {
                where = fmt::format("{} (at position {}, {})", e.name, e.pos, e.value);
            }
            throw Error(fmt::format(
                "the model's logits are not finite ({} for token {} at position {}); the first "
                "non-finite intermediate is {}: the weights hold NaN/Inf or the activations "
                "overflow (bitnet inspect --check FILE scans the weights)",
                v, i, pos, where));
        }
    }
}

void Forward::pass(const int32_t* tokens, int64_t n, int64_t p0, bool all_logits,
                   std::vector<float>& logits) {
    const Hparams& h = m.hp;
    if (p0 + n > kv.n_ctx) {
        throw Error("context is full: " + std::to_string(p0 + n) +
                    " positions needed, the context holds " + std::to_string(kv.n_ctx) +
                    " (raise -c)");
    }
    n_tokens = n;
    pos0 = p0;
    a.x.resize(static_cast<size_t>(n * h.n_embd));
    for (int64_t t = 0; t < n; ++t) m.embed(tokens[t], a.x.data() + t * h.n_embd);
    dump("inp_embd", -1, a.x, h.n_embd);
    for (int il = 0; il < static_cast<int>(h.n_layer); ++il) {
        if (h.arch == Architecture::Llama) {
            llama_layer(*this, il);
        } else {
            bitnet_layer(*this, il);
        }
    }
    // Only the rows whose logits are wanted go through the output head.
    const int64_t first = all_logits ? 0 : n - 1;
    Forward tail(m, kv, pool);
    tail.n_tokens = n - first;
    tail.pos0 = pos0 + first;
    tail.dump_dir = dump_dir;
    tail.check_finite = check_finite;
    std::vector<float> rows(a.x.begin() + first * h.n_embd, a.x.end());
    tail.norm(rows, m.output_norm, tail.a.cur, h.n_embd);
    tail.dump("result_norm", -1, tail.a.cur, h.n_embd);
    tail.mm(m.output, tail.a.cur, logits);
    tail.dump("result_output", -1, logits, h.n_vocab);
}

}  // namespace bitnet
