#include "bitnet/session.h"

#include "bitnet/multi_session.h"

#include <unistd.h>
#include <algorithm>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "bitnet/error.h"
#include "kernels/attention.h"
#include "model/forward.h"

namespace bitnet {

namespace {

MultiSessionOptions checked(const Model& m, MultiSessionOptions o) {
    const Hparams& h = m.hparams();
    if (o.n_seq < 1 || o.n_seq > 256)
        throw Error("sequence count " + std::to_string(o.n_seq) + " is outside 1..256");
    if (o.n_ctx == 0) o.n_ctx = std::min<int64_t>(h.n_ctx_train, 4096);
    if (o.n_ctx < 1 || o.n_ctx > (1 << 20)) {
        throw Error("context size " + std::to_string(o.n_ctx) + " is outside 1..1048576");
    }
    if (o.threads == 0)
        o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (o.threads < 1 || o.threads > 1024)
        throw Error("thread count " + std::to_string(o.threads) + " is outside 1..1024");
    // Refuse KV caches the machine cannot hold, before allocating (and touching) them.
    for (const auto& [type, option] :
         {std::pair{o.type_k, "--cache-type-k"}, std::pair{o.type_v, "--cache-type-v"}}) {
        if (type != GgmlType::F16 && type != GgmlType::F32 && type != GgmlType::Q8_0)
            throw NotSupported(std::string(option) + " " + std::string(type_name(type)) +
                               " (the KV cache can be f16, f32 or q8_0)");
        if (!cache_type_supported(type, h.head_dim))
            throw NotSupported(std::string(option) + " " + std::string(type_name(type)) +
                               " with heads of " + std::to_string(h.head_dim) +
                               " values (q8_0 needs a multiple of 32)");
    }
    const double per_seq = static_cast<double>(h.n_layer) * static_cast<double>(o.n_ctx) *
                           static_cast<double>(h.n_head_kv) *
                           static_cast<double>(cache_row_bytes(o.type_k, h.head_dim) +
                                               cache_row_bytes(o.type_v, h.head_dim));
    const double kv_bytes = per_seq * o.n_seq;
    const double ram =
        static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    if (ram > 0 && kv_bytes > ram) {
        throw Error((o.n_seq > 1 ? std::to_string(o.n_seq) + " KV caches of "
                                 : std::string("a KV cache of ")) +
                    std::to_string(o.n_ctx) + " positions need" + (o.n_seq > 1 ? "" : "s") + " " +
                    std::to_string(static_cast<int64_t>(kv_bytes / (1 << 20))) +
                    " MiB, more than this machine's " +
                    std::to_string(static_cast<int64_t>(ram / (1 << 20))) + " MiB (lower -c" +
                    (o.n_seq > 1 ? " or -np)" : ")"));
    }
    if (o.dump_dir.empty()) {
        if (const char* env = std::getenv("BITNET_DUMP_TENSORS"); env != nullptr) o.dump_dir = env;
    }
    if (o.n_batch < 1 || o.n_batch > 65536)
        throw Error("batch size " + std::to_string(o.n_batch) + " is outside 1..65536");
    return o;
}

}  // namespace

class MultiSessionImpl {
  public:
    MultiSessionImpl(std::shared_ptr<const Model> m, const MultiSessionOptions& o)
        : model(std::move(m)),
          options(o),
          pool(o.threads),
          kv(static_cast<size_t>(o.n_seq)),
          history(static_cast<size_t>(o.n_seq)),
          forward(model->impl(), kv[0], pool) {
        const Hparams& h = model->hparams();
        for (KvCache& c : kv)
            c.init(h.n_layer, o.n_ctx, h.n_head_kv, h.head_dim, o.type_k, o.type_v);
        forward.dump_dir = o.dump_dir;
    }

    void check_seq(int seq) const {
        if (seq < 0 || seq >= options.n_seq) {
            throw Error("sequence " + std::to_string(seq) + " is outside 0.." +
                        std::to_string(options.n_seq - 1));
        }
    }

    std::shared_ptr<const Model> model;
    MultiSessionOptions options;
    ThreadPool pool;
    std::vector<KvCache> kv;                    // [n_seq]
    std::vector<std::vector<TokenId>> history;  // [n_seq] the ids in each cache
    Forward forward;
    std::vector<float> logits;  // [n_logits, n_vocab]
    size_t n_logits = 0;
};

MultiSession::MultiSession(std::shared_ptr<const Model> model, const MultiSessionOptions& options) {
    const MultiSessionOptions valid = checked(*model, options);
    impl_ = std::make_unique<MultiSessionImpl>(std::move(model), valid);
}
MultiSession::~MultiSession() = default;
MultiSession::MultiSession(MultiSession&&) noexcept = default;
MultiSession& MultiSession::operator=(MultiSession&&) noexcept = default;

void MultiSession::evaluate(std::span<const BatchEntry> batch) {
    MultiSessionImpl& s = *impl_;
    if (batch.empty()) throw Error("nothing to evaluate");
    const int64_t n_vocab = s.model->hparams().n_vocab;
    // Check everything before touching any cache.
    std::vector<int64_t> next(static_cast<size_t>(s.options.n_seq));
    for (int q = 0; q < s.options.n_seq; ++q)
        next[static_cast<size_t>(q)] =
            static_cast<int64_t>(s.history[static_cast<size_t>(q)].size());
    for (size_t i = 0; i < batch.size(); ++i) {
        const BatchEntry& e = batch[i];
        s.check_seq(e.seq);
        if (e.token < 0 || e.token >= n_vocab) {
            throw Error("token id " + std::to_string(e.token) + " is outside the vocabulary (0.." +
                        std::to_string(n_vocab - 1) + ")");
        }
        int64_t& want = next[static_cast<size_t>(e.seq)];
        if (e.pos != want) {
            throw Error("batch entry " + std::to_string(i) + ": sequence " + std::to_string(e.seq) +
                        " is at position " + std::to_string(want) + ", not " +
                        std::to_string(e.pos));
        }
        if (want >= s.options.n_ctx) {
            throw Error("context is full: sequence " + std::to_string(e.seq) + " holds " +
                        std::to_string(s.options.n_ctx) + " positions (raise -c)");
        }
        ++want;
    }
    std::vector<float> all, out;
    size_t n_logits = 0;
    // A pass that fails (non-finite logits) leaves no trace: histories go back to where they
    // were (cache cells past a history are never read) and no logits are left to read.
    std::vector<size_t> before(s.history.size());
    for (size_t q = 0; q < before.size(); ++q) before[q] = s.history[q].size();
    s.logits.clear();
    s.n_logits = 0;
    struct Rollback {
        MultiSessionImpl& impl;
        const std::vector<size_t>& sizes;
        bool armed = true;
        Rollback(MultiSessionImpl& i, const std::vector<size_t>& z) : impl(i), sizes(z) {}
        ~Rollback() {
            if (!armed) return;
            for (size_t q = 0; q < sizes.size(); ++q) impl.history[q].resize(sizes[q]);
        }
        Rollback(const Rollback&) = delete;
        Rollback& operator=(const Rollback&) = delete;
    } rollback{s, before};
    for (size_t start = 0; start < batch.size(); start += static_cast<size_t>(s.options.n_batch)) {
        const size_t len = std::min(static_cast<size_t>(s.options.n_batch), batch.size() - start);
        std::vector<Forward::Row> rows(len);
        for (size_t r = 0; r < len; ++r) {
            const BatchEntry& e = batch[start + r];
            rows[r] = {e.token, &s.kv[static_cast<size_t>(e.seq)], e.pos, e.logits};
            n_logits += e.logits ? 1 : 0;
        }
        s.forward.run(rows, out);
        all.insert(all.end(), out.begin(), out.end());
        for (size_t r = 0; r < len; ++r) {
            const BatchEntry& e = batch[start + r];
            s.history[static_cast<size_t>(e.seq)].push_back(e.token);
        }
    }
    rollback.armed = false;
    s.logits = std::move(all);
    s.n_logits = n_logits;
}

std::span<const float> MultiSession::logits(size_t i) const {
    const MultiSessionImpl& s = *impl_;
    if (i >= s.n_logits) {
        throw Error("no logits for entry " + std::to_string(i) + " of the last evaluation (" +
                    std::to_string(s.n_logits) + " asked for)");
    }
    const auto n_vocab = static_cast<size_t>(s.model->hparams().n_vocab);
    return {s.logits.data() + i * n_vocab, n_vocab};
}
size_t MultiSession::n_logits() const {
    return impl_->n_logits;
}
int MultiSession::n_seq() const {
    return impl_->options.n_seq;
}
int64_t MultiSession::n_ctx() const {
    return impl_->options.n_ctx;
}
int64_t MultiSession::n_past(int seq) const {
    impl_->check_seq(seq);
    return static_cast<int64_t>(impl_->history[static_cast<size_t>(seq)].size());
}
std::span<const TokenId> MultiSession::history(int seq) const {
    impl_->check_seq(seq);
    return impl_->history[static_cast<size_t>(seq)];
}
void MultiSession::truncate(int seq, int64_t n) {
    impl_->check_seq(seq);
    auto& h = impl_->history[static_cast<size_t>(seq)];
    if (n < 0 || n > static_cast<int64_t>(h.size()))
        throw Error("cannot truncate sequence " + std::to_string(seq) + " to " + std::to_string(n) +
                    " tokens (it holds " + std::to_string(h.size()) + ")");
    h.resize(static_cast<size_t>(n));
}
void MultiSession::fork(int src, int dst, int64_t n) {
    MultiSessionImpl& s = *impl_;
    s.check_seq(src);
    s.check_seq(dst);
    const auto& h = s.history[static_cast<size_t>(src)];
    if (n < 0 || n > static_cast<int64_t>(h.size()))
        throw Error("cannot fork " + std::to_string(n) + " tokens of sequence " +
                    std::to_string(src) + " (it holds " + std::to_string(h.size()) + ")");
    if (src == dst) {
        truncate(dst, n);
        return;
    }
    const KvCache& from = s.kv[static_cast<size_t>(src)];
    KvCache& to = s.kv[static_cast<size_t>(dst)];
    // The first n positions of every KV head (the cache is head-major).
    for (int64_t l = 0; l < from.n_layer; ++l) {
        for (int64_t hh = 0; hh < from.n_head_kv; ++hh) {
            std::memcpy(to.k(l) + to.row(hh, 0) * to.k_row,
                        from.k(l) + from.row(hh, 0) * from.k_row,
                        static_cast<size_t>(n) * from.k_row);
            std::memcpy(to.v(l) + to.row(hh, 0) * to.v_row,
                        from.v(l) + from.row(hh, 0) * from.v_row,
                        static_cast<size_t>(n) * from.v_row);
        }
    }
    s.history[static_cast<size_t>(dst)].assign(h.begin(), h.begin() + n);
}
int64_t MultiSession::reuse_prefix(int seq, std::span<const TokenId> ids) {
    const std::span<const TokenId> h = history(seq);
    const size_t limit = std::min(h.size(), ids.empty() ? size_t{0} : ids.size() - 1);
    size_t keep = 0;
    while (keep < limit && h[keep] == ids[keep]) ++keep;
    if (keep < h.size()) truncate(seq, static_cast<int64_t>(keep));
    return static_cast<int64_t>(keep);
}
uint64_t MultiSession::kv_bytes() const {
    const Hparams& h = impl_->model->hparams();
    const MultiSessionOptions& o = impl_->options;
    return static_cast<uint64_t>(h.n_layer) * static_cast<uint64_t>(o.n_ctx) *
           static_cast<uint64_t>(h.n_head_kv) *
           (cache_row_bytes(o.type_k, h.head_dim) + cache_row_bytes(o.type_v, h.head_dim)) *
           static_cast<uint64_t>(o.n_seq);
}
const Model& MultiSession::model() const {
    return *impl_->model;
}
int MultiSession::threads() const {
    return impl_->pool.size();
}

// A Session is one sequence of a MultiSession.
class SessionImpl {
  public:
    SessionImpl(std::shared_ptr<const Model> m, const SessionOptions& o)
        : multi(std::move(m), MultiSessionOptions{1, o.n_ctx, o.threads, o.n_batch, o.type_k,
                                                  o.type_v, o.dump_dir}) {}
    MultiSession multi;
    int64_t logit_rows = 0;  // tokens of the last evaluation
    bool all_rows = false;
};

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options)
    : impl_(std::make_unique<SessionImpl>(std::move(model), options)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::evaluate(std::span<const int32_t> tokens, bool all_logits) {
    SessionImpl& s = *impl_;
    if (tokens.empty()) throw Error("nothing to evaluate");
    const auto n = static_cast<int64_t>(tokens.size());
    const int64_t past = s.multi.n_past(0);
    if (past + n > s.multi.n_ctx()) {
        throw Error("context is full: " + std::to_string(past) + " + " + std::to_string(n) +
                    " tokens exceed the context of " + std::to_string(s.multi.n_ctx()) +
                    " (raise -c)");
    }
    std::vector<BatchEntry> batch(tokens.size());
    for (int64_t i = 0; i < n; ++i) {
        batch[static_cast<size_t>(i)] = {0, tokens[static_cast<size_t>(i)], past + i,
                                         all_logits || i == n - 1};
    }
    s.logit_rows = 0;
    s.multi.evaluate(batch);
    s.logit_rows = n;
    s.all_rows = all_logits;
}

std::span<const float> Session::logits(int64_t i) const {
    const SessionImpl& s = *impl_;
    if (s.logit_rows == 0) throw Error("no logits yet: evaluate tokens first");
    if (i < 0) i = s.logit_rows - 1;
    if (!s.all_rows && i != s.logit_rows - 1) i = -1;
    if (i < 0 || i >= s.logit_rows)
        throw Error("no logits for token " + std::to_string(i) + " of the last evaluation");
    return s.multi.logits(s.all_rows ? static_cast<size_t>(i) : 0);
}

int64_t Session::n_past() const {
    return impl_->multi.n_past(0);
}
int64_t Session::n_ctx() const {
    return impl_->multi.n_ctx();
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > n_past()) throw Error("cannot truncate to " + std::to_string(n) + " tokens");
    impl_->multi.truncate(0, n);
    impl_->logit_rows = 0;
}

std::span<const int32_t> Session::history() const {
    return impl_->multi.history(0);
}

int64_t Session::reuse_prefix(std::span<const int32_t> ids) {
    const int64_t before = n_past();
    const int64_t kept = impl_->multi.reuse_prefix(0, ids);
    if (kept < before) impl_->logit_rows = 0;
    return kept;
}

const Model& Session::model() const {
    return impl_->multi.model();
}
int Session::threads() const {
    return impl_->multi.threads();
}

}  // namespace bitnet
