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

void Forward::for_rows(const std::function<void(int64_t)>& fn) {
    if (n_tokens <= 1) {
        if (n_tokens == 1) fn(0);
        return;
    }
    pool.parallel_for(n_tokens, 1, [&](int, int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) fn(t);
    });
}

void Forward::norm(const std::vector<float>& in, const std::vector<float>& w,
                   std::vector<float>& out, int64_t width) {
    out.resize(static_cast<size_t>(n_tokens * width));
    for_rows([&](int64_t t) {
        rms_norm(in.data() + t * width, w.data(), out.data() + t * width, width, m.hp.rms_eps);
    });
}

void Forward::mm(const WeightMatrix& w, const std::vector<float>& in, std::vector<float>& out) {
    out.resize(static_cast<size_t>(n_tokens * w.rows));
    matmul(w, in.data(), n_tokens, out.data(), pool, scratch);
}

void Forward::mm_shared(std::initializer_list<const WeightMatrix*> ws, const std::vector<float>& in,
                        std::initializer_list<std::vector<float>*> outs) {
    std::vector<float*> ys;
    auto w = ws.begin();
    for (std::vector<float>* out : outs) {
        out->resize(static_cast<size_t>(n_tokens * (*w++)->rows));
        ys.push_back(out->data());
    }
    matmul_shared({ws.begin(), ws.size()}, in.data(), n_tokens, ys, pool, scratch);
}

void Forward::glu(bool relu2) {
    const auto width = static_cast<size_t>(m.hp.n_ff);
    for_rows([&](int64_t t) {
        float* g = a.gate.data() + static_cast<size_t>(t) * width;
        const float* u = a.up.data() + static_cast<size_t>(t) * width;
        if (relu2) {
            relu_squared_glu(g, u, static_cast<int64_t>(width));
        } else {
            for (size_t i = 0; i < width; ++i) g[i] = silu(g[i]) * u[i];
        }
    });
}

void Forward::add(std::vector<float>& x, const std::vector<float>& y) {
    if (n_tokens == 0) return;
    const size_t width = x.size() / static_cast<size_t>(n_tokens);
    for_rows([&](int64_t t) {
        const size_t begin = static_cast<size_t>(t) * width;
        for (size_t i = begin; i < begin + width; ++i) x[i] += y[i];
    });
}

void Forward::rope_qk() {
    const Hparams& h = m.hp;
    const RopeStyle style = h.neox_rope ? RopeStyle::Neox : RopeStyle::Normal;
    for_rows([&](int64_t t) {
        const int64_t p = position[static_cast<size_t>(t)];
        rope(a.q.data() + t * h.n_embd, h.n_head, h.head_dim, h.n_rot, p, h.rope_freq_base, style);
        rope(a.k.data() + t * kv.width, h.n_head_kv, h.head_dim, h.n_rot, p, h.rope_freq_base,
             style);
    });
}

void Forward::self_attention(const LayerWeights& lw, int il) {
    const int64_t width = m.hp.n_embd;
    norm(a.x, lw.attn_norm, a.cur, width);
    dump("attn_norm", il, a.cur, width);
    mm_shared({&lw.wq, &lw.wk, &lw.wv}, a.cur, {&a.q, &a.k, &a.v});
    rope_qk();
    dump("Qcur", il, a.q, width);
    dump("Kcur", il, a.k, kv.width);
    dump("Vcur", il, a.v, kv.width);
    attention(il);
    dump("kqv_out", il, a.attn, width);
}

// Causal grouped-query attention for the batch, after storing every row's K and V in its
// sequence's cache. Scores, softmax and the weighted sum of V are computed in float32.
void Forward::attention(int il) {
    const auto l = static_cast<size_t>(il);
    const auto w = static_cast<size_t>(kv.width);
    for_rows([&](int64_t t) {
        KvCache& c = *caches[static_cast<size_t>(t)];
        const size_t off = static_cast<size_t>(position[static_cast<size_t>(t)]) * w;
        const float* k = a.k.data() + static_cast<size_t>(t) * w;
        const float* v = a.v.data() + static_cast<size_t>(t) * w;
        if (c.f32) {
            std::copy(k, k + w, c.k32[l].data() + off);
            std::copy(v, v + w, c.v32[l].data() + off);
        } else {
            for (size_t i = 0; i < w; ++i) {
                c.k16[l][off + i] = fp32_to_fp16(k[i]);
                c.v16[l][off + i] = fp32_to_fp16(v[i]);
            }
        }
    });
    if (kv.f32) {
        attend<float>(il);
    } else {
        attend<uint16_t>(il);
    }
}

template <typename T>
void Forward::attend(int il) {
    const Hparams& h = m.hp;
    const auto l = static_cast<size_t>(il);
    a.attn.assign(static_cast<size_t>(n_tokens * h.n_embd), 0.0f);
    int64_t longest = 0;
    for (const KvCache* c : caches) longest = std::max(longest, c->n_ctx);
    const float scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
    const int64_t group = h.n_head / h.n_head_kv;
    a.scores.resize(static_cast<size_t>(pool.size() * group * longest));
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
    // One job per row and KV head: the query heads sharing that KV head go together (four
    // at a time through the grouped kernels, which read each key and value once for them).
    // Rows are taken from both ends alternately (0, T-1, 1, T-2, ...): a causal row's cost
    // grows with its position, and the pool hands out contiguous ranges of jobs.
    const bool by4 = std::is_same_v<T, uint16_t> && group % 4 == 0;
    pool.parallel_for(n_tokens * h.n_head_kv, 1, [&](int thread, int64_t begin, int64_t end) {
        float* s =
            a.scores.data() + static_cast<size_t>(thread) * static_cast<size_t>(group * longest);
        for (int64_t job = begin; job < end; ++job) {
            const int64_t i = job / h.n_head_kv, kvh = job % h.n_head_kv;
            const int64_t t = i % 2 == 0 ? i / 2 : n_tokens - 1 - i / 2;
            const KvCache& c = *caches[static_cast<size_t>(t)];
            const T* keys = nullptr;
            const T* values = nullptr;
            if constexpr (std::is_same_v<T, uint16_t>) {
                keys = c.k16[l].data();
                values = c.v16[l].data();
            } else {
                keys = c.k32[l].data();
                values = c.v32[l].data();
            }
            const int64_t n_keys = position[static_cast<size_t>(t)] + 1;  // causal
            const float* q = a.q.data() + t * h.n_embd + kvh * group * h.head_dim;
            float* out = a.attn.data() + t * h.n_embd + kvh * group * h.head_dim;
            const int64_t hd = h.head_dim;
            for (int64_t g0 = 0; g0 < group; g0 += by4 ? 4 : 1) {
                float* sg = s + g0 * n_keys;  // scores of head g0 (+1, +2, +3 follow)
                const float* qg = q + g0 * hd;
                for (int64_t p = 0; p < n_keys; ++p) {
                    const T* k = keys + p * kv.width + kvh * hd;
                    if constexpr (std::is_same_v<T, uint16_t>) {
                        if (by4) {
                            float d4[4];
                            ak.dot4_f16(qg, hd, k, hd, d4);
                            for (int j = 0; j < 4; ++j) sg[j * n_keys + p] = d4[j] * scale;
                            continue;
                        }
                    }
                    sg[p] = dot(qg, k, hd) * scale;
                }
                const int nh = by4 ? 4 : 1;
                for (int j = 0; j < nh; ++j) softmax(sg + j * n_keys, n_keys);
                float* og = out + g0 * hd;
                for (int64_t p = 0; p < n_keys; ++p) {
                    const T* v = values + p * kv.width + kvh * hd;
                    if constexpr (std::is_same_v<T, uint16_t>) {
                        if (by4) {
                            const float w4[4] = {sg[p], sg[n_keys + p], sg[2 * n_keys + p],
                                                 sg[3 * n_keys + p]};
                            ak.axpy4_f16(w4, v, og, hd, hd);
                            continue;
                        }
                    }
                    axpy(sg[p], v, og, hd);
                }
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
                                    position[static_cast<size_t>(t)], v};
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
    std::vector<Row> rows(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) {
        rows[static_cast<size_t>(t)] = Row{tokens[t], &kv, p0 + t, all_logits || t == n - 1};
    }
    run(rows, logits);
}

void Forward::run(const std::vector<Row>& rows, std::vector<float>& logits) {
    pass(rows, logits);
    // NaN or +Inf logits are never handed on (a user's -inf bias is applied later, by the
    // sampler). Finding the first bad intermediate costs one more pass with checks, taken only
    // after the cheap scan of the logits failed.
    const int64_t n_vocab = m.hp.n_vocab;
    std::vector<int64_t> wanted;
    for (const Row& r : rows) {
        if (r.logits) wanted.push_back(r.pos);
    }
    for (size_t r = 0; r < wanted.size(); ++r) {
        for (int64_t i = 0; i < n_vocab; ++i) {
            const float v = logits[r * static_cast<size_t>(n_vocab) + static_cast<size_t>(i)];
            if (!std::isnan(v) && v != INFINITY) continue;
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
                pass(rows, ignored);
            } catch (const NonFinite& e) {
                where = fmt::format("{} (at position {}, {})", e.name, e.pos, e.value);
            }
            throw Error(fmt::format(
                "the model's logits are not finite ({} for token {} at position {}); the first "
                "non-finite intermediate is {}: the weights hold NaN/Inf or the activations "
                "overflow (bitnet inspect --check FILE scans the weights)",
                v, i, wanted[r], where));
        }
    }
}

void Forward::pass(const std::vector<Row>& rows, std::vector<float>& logits) {
    const Hparams& h = m.hp;
    const auto n = static_cast<int64_t>(rows.size());
    caches.resize(rows.size());
    position.resize(rows.size());
    for (size_t t = 0; t < rows.size(); ++t) {
        const Row& r = rows[t];
        if (r.pos < 0 || r.pos >= r.cache->n_ctx) {
            throw Error("context is full: position " + std::to_string(r.pos) +
                        " is outside the context of " + std::to_string(r.cache->n_ctx) +
                        " (raise -c)");
        }
        caches[t] = r.cache;
        position[t] = r.pos;
    }
    n_tokens = n;
    pos0 = n > 0 ? rows[0].pos : 0;
    a.x.resize(static_cast<size_t>(n * h.n_embd));
    for (int64_t t = 0; t < n; ++t)
        m.embed(rows[static_cast<size_t>(t)].token, a.x.data() + t * h.n_embd);
    dump("inp_embd", -1, a.x, h.n_embd);
    for (int il = 0; il < static_cast<int>(h.n_layer); ++il) {
        if (h.arch == Architecture::Llama) {
            llama_layer(*this, il);
        } else {
            bitnet_layer(*this, il);
        }
    }
    // Only the rows whose logits are wanted go through the output head.
    Forward tail(m, kv, pool);
    std::vector<float> wanted;
    for (int64_t t = 0; t < n; ++t) {
        const Row& r = rows[static_cast<size_t>(t)];
        if (!r.logits) continue;
        if (tail.n_tokens == 0) tail.pos0 = r.pos;
        ++tail.n_tokens;
        tail.caches.push_back(r.cache);
        tail.position.push_back(r.pos);
        wanted.insert(wanted.end(), a.x.begin() + t * h.n_embd, a.x.begin() + (t + 1) * h.n_embd);
    }
    logits.clear();
    if (tail.n_tokens == 0) return;
    tail.dump_dir = dump_dir;
    tail.check_finite = check_finite;
    tail.norm(wanted, m.output_norm, tail.a.cur, h.n_embd);
    tail.dump("result_norm", -1, tail.a.cur, h.n_embd);
    tail.mm(m.output, tail.a.cur, logits);
    tail.dump("result_output", -1, logits, h.n_vocab);
}

}  // namespace bitnet
