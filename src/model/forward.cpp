#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "bitnet/error.h"
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/ops.h"

namespace bitnet {

void KvCache::init(int64_t layers, int64_t ctx, int64_t heads, int64_t dim, GgmlType tk,
                   GgmlType tv) {
    n_ctx = ctx;
    n_head_kv = heads;
    head_dim = dim;
    width = heads * dim;
    type_k = tk;
    type_v = tv;
    k_row = cache_row_bytes(tk, dim);
    v_row = cache_row_bytes(tv, dim);
    n_layer = layers;
    const auto rows = static_cast<size_t>(ctx * heads);
    const size_t kb = (rows * k_row + 63) / 64 * 64, vb = (rows * v_row + 63) / 64 * 64;
    mem_.clear();
    k_.assign(static_cast<size_t>(layers), nullptr);
    v_.assign(static_cast<size_t>(layers), nullptr);
    if (!kSeparateBuffers) mem_.emplace_back(static_cast<size_t>(layers) * (kb + vb));
    for (size_t l = 0; l < static_cast<size_t>(layers); ++l) {
        if (kSeparateBuffers) {
            k_[l] = mem_.emplace_back(kb).data();
            v_[l] = mem_.emplace_back(vb).data();
        } else {
            k_[l] = mem_[0].data() + l * (kb + vb);
            v_[l] = k_[l] + kb;
        }
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
            silu_glu(g, u, static_cast<int64_t>(width));
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
        const int64_t pos = position[static_cast<size_t>(t)];
        for (int64_t kvh = 0; kvh < c.n_head_kv; ++kvh) {
            const size_t at = static_cast<size_t>(t) * w + static_cast<size_t>(kvh * c.head_dim);
            cache_store_row(c.type_k, a.k.data() + at, c.head_dim,
                            c.k(l) + c.row(kvh, pos) * c.k_row);
            cache_store_row(c.type_v, a.v.data() + at, c.head_dim,
                            c.v(l) + c.row(kvh, pos) * c.v_row);
        }
    });
    attend(il);
}

// Attention of one row and KV head is computed in chunks of kKeyChunk keys (a fixed split that
// depends only on the row's number of keys, never on threads or batching): per chunk and
// query head the scores, their maximum m, e = exp(score - m), l = Σ e and o = Σ e · v; then the
// chunks are merged in order as an online softmax does: M = max m, out = Σ_c (exp(m_c - M) / L)
// · o_c with L = Σ_c exp(m_c - M) · l_c. Chunks of all rows and KV heads are the parallel jobs,
// so that a single decoded token still keeps every thread busy at long context.
constexpr int64_t kKeyChunk = 256;
// Jobs whose partial results are held at once (rows are taken in waves below this).
constexpr int64_t kMaxAttentionJobs = 2048;

void Forward::attend(int il) {
    const Hparams& h = m.hp;
    const auto l = static_cast<size_t>(il);
    a.attn.assign(static_cast<size_t>(n_tokens * h.n_embd), 0.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
    const int64_t group = h.n_head / h.n_head_kv;
    const int64_t hd = h.head_dim;
    const int64_t stride = hd + 2;  // per query head in a job: o, then m and l
    a.scores.resize(static_cast<size_t>(pool.size() * group * kKeyChunk));
    const AttentionKernels& ak = attention_kernels();
    const bool by4 = group % 4 == 0;
    const auto chunks = [&](int64_t t) {
        return (position[static_cast<size_t>(t)] + kKeyChunk) / kKeyChunk;  // of pos + 1 keys
    };
    // A batch's rows have different numbers of keys (a prompt's ever more, causally; several
    // sequences decoding together, their own): cut into two contiguous halves, a wave of a
    // 512-token prompt left one thread three times the other's work. For any batch the
    // threads take jobs one at a time; a job's result does not depend on which thread runs
    // it.
    const auto over_jobs = [&](int64_t n, const std::function<void(int, int64_t, int64_t)>& fn) {
        if (n_tokens > 1)
            pool.parallel_pieces(n, 1, fn);
        else
            pool.parallel_for(n, 1, fn);
    };
    std::vector<int64_t> first;  // first job of each row of the wave, then the total
    for (int64_t t0 = 0; t0 < n_tokens;) {
        first.assign(1, 0);
        int64_t t1 = t0;
        while (t1 < n_tokens &&
               (t1 == t0 || first.back() + h.n_head_kv * chunks(t1) <= kMaxAttentionJobs)) {
            first.push_back(first.back() + h.n_head_kv * chunks(t1));
            ++t1;
        }
        const int64_t jobs = first.back();
        a.partial.resize(static_cast<size_t>(jobs * group * stride));
        over_jobs(jobs, [&](int thread, int64_t begin, int64_t end) {
            float* s = a.scores.data() +
                       static_cast<size_t>(thread) * static_cast<size_t>(group * kKeyChunk);
            for (int64_t job = begin; job < end; ++job) {
                const auto row =
                    std::upper_bound(first.begin(), first.end(), job) - first.begin() - 1;
                const int64_t t = t0 + row;
                const int64_t local = job - first[static_cast<size_t>(row)];
                const int64_t nc = chunks(t);
                const int64_t kvh = local / nc, chunk = local % nc;
                const KvCache& c = *caches[static_cast<size_t>(t)];
                const CacheKernels& kk = ak.of(c.type_k);
                const CacheKernels& vk = ak.of(c.type_v);
                const int64_t p0 = chunk * kKeyChunk;
                const uint8_t* keys = c.k(l) + c.row(kvh, p0) * c.k_row;
                const uint8_t* values = c.v(l) + c.row(kvh, p0) * c.v_row;
                const int64_t nk =
                    std::min(position[static_cast<size_t>(t)] + 1 - p0, kKeyChunk);  // causal
                const float* q = a.q.data() + t * h.n_embd + kvh * group * hd;
                float* part = a.partial.data() + static_cast<size_t>(job * group * stride);
                const int nh = by4 ? 4 : 1;
                for (int64_t g0 = 0; g0 < group; g0 += nh) {
                    float* sg = s + g0 * kKeyChunk;  // scores of head g0 (+1, +2, +3 follow)
                    const float* qg = q + g0 * hd;
                    for (int64_t p = 0; p < nk; ++p) {
                        const uint8_t* k = keys + static_cast<size_t>(p) * c.k_row;
                        if (by4) {
                            float d4[4];
                            kk.dot4(qg, hd, k, hd, d4);
                            for (int j = 0; j < 4; ++j) sg[j * kKeyChunk + p] = d4[j] * scale;
                        } else {
                            sg[p] = kk.dot(qg, k, hd) * scale;
                        }
                    }
                    for (int j = 0; j < nh; ++j) {
                        double sum = 0.0;
                        const float max = ak.exp_shift(sg + j * kKeyChunk, nk, &sum);
                        float* pj = part + (g0 + j) * stride;
                        pj[hd] = max;
                        pj[hd + 1] = static_cast<float>(sum);
                    }
                    float* og = part + g0 * stride;
                    if (by4) {
                        vk.wsum4(sg, kKeyChunk, values, nk, hd, og, stride);
                    } else {
                        vk.wsum(sg, values, nk, hd, og);
                    }
                }
            }
        });
        // Merge the chunks of each row, KV head and query head, in chunk order.
        over_jobs((t1 - t0) * h.n_head_kv, [&](int, int64_t begin, int64_t end) {
            for (int64_t item = begin; item < end; ++item) {
                const int64_t row = item / h.n_head_kv, kvh = item % h.n_head_kv;
                const int64_t t = t0 + row;
                const int64_t nc = chunks(t);
                const float* part0 =
                    a.partial.data() +
                    static_cast<size_t>((first[static_cast<size_t>(row)] + kvh * nc) * group *
                                        stride);
                for (int64_t g = 0; g < group; ++g) {
                    float* out = a.attn.data() + t * h.n_embd + (kvh * group + g) * hd;
                    float top = -INFINITY;
                    for (int64_t ci = 0; ci < nc; ++ci)
                        top = std::max(top, part0[(ci * group + g) * stride + hd]);
                    double total = 0.0;
                    for (int64_t ci = 0; ci < nc; ++ci) {
                        const float* pc = part0 + (ci * group + g) * stride;
                        total += static_cast<double>(std::exp(pc[hd] - top)) * pc[hd + 1];
                    }
                    for (int64_t ci = 0; ci < nc; ++ci) {
                        const float* pc = part0 + (ci * group + g) * stride;
                        const auto f =
                            static_cast<float>(static_cast<double>(std::exp(pc[hd] - top)) / total);
                        for (int64_t d = 0; d < hd; ++d) out[d] += f * pc[d];
                    }
                }
            }
        });
        t0 = t1;
    }
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
