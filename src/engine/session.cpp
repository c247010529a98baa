#include "bitnet/session.h"

#include <unistd.h>
#include <algorithm>

#include <cstdlib>
#include <thread>

#include "bitnet/error.h"
#include "model/forward.h"

namespace bitnet {

class SessionImpl {
  public:
    SessionImpl(std::shared_ptr<const Model> m, const SessionOptions& o)
        : model(std::move(m)), options(o), pool(o.threads), forward(model->impl(), kv, pool) {
        const Hparams& h = model->hparams();
        kv.init(h.n_layer, o.n_ctx, h.n_head_kv * h.head_dim, o.kv_f32);
        forward.dump_dir = o.dump_dir;
    }

    std::shared_ptr<const Model> model;
    SessionOptions options;
    KvCache kv;
    ThreadPool pool;
    Forward forward;
    int64_t n_past = 0;
    std::vector<int32_t> history;  // [n_past] the ids in the KV cache
    std::vector<float> logits;     // [rows, n_vocab]
    int64_t logit_rows = 0;
    bool all_rows = false;
};

namespace {

SessionOptions checked(const Model& m, SessionOptions o) {
    const Hparams& h = m.hparams();
    if (o.n_ctx == 0) o.n_ctx = std::min<int64_t>(h.n_ctx_train, 4096);
    if (o.n_ctx < 1 || o.n_ctx > (1 << 20)) {
        throw Error("context size " + std::to_string(o.n_ctx) + " is outside 1..1048576");
    }
    if (o.threads == 0)
        o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (o.threads < 1 || o.threads > 1024)
        throw Error("thread count " + std::to_string(o.threads) + " is outside 1..1024");
    // Refuse a KV cache the machine cannot hold, before allocating (and touching) it.
    const double kv_bytes = 2.0 * static_cast<double>(h.n_layer) * static_cast<double>(o.n_ctx) *
                            static_cast<double>(h.n_head_kv * h.head_dim) * (o.kv_f32 ? 4.0 : 2.0);
    const double ram =
        static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    if (ram > 0 && kv_bytes > ram) {
        throw Error("a KV cache of " + std::to_string(o.n_ctx) + " positions needs " +
                    std::to_string(static_cast<int64_t>(kv_bytes / (1 << 20))) +
                    " MiB, more than this machine's " +
                    std::to_string(static_cast<int64_t>(ram / (1 << 20))) + " MiB (lower -c)");
    }
    if (o.dump_dir.empty()) {
        if (const char* env = std::getenv("BITNET_DUMP_TENSORS"); env != nullptr) o.dump_dir = env;
    }
    if (o.n_batch < 1 || o.n_batch > 65536)
        throw Error("batch size " + std::to_string(o.n_batch) + " is outside 1..65536");
    return o;
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options) {
    const SessionOptions valid = checked(*model, options);
    impl_ = std::make_unique<SessionImpl>(std::move(model), valid);
}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::evaluate(std::span<const int32_t> tokens, bool all_logits) {
    SessionImpl& s = *impl_;
    if (tokens.empty()) throw Error("nothing to evaluate");
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (s.n_past + n > s.kv.n_ctx) {
        throw Error("context is full: " + std::to_string(s.n_past) + " + " + std::to_string(n) +
                    " tokens exceed the context of " + std::to_string(s.kv.n_ctx) + " (raise -c)");
    }
    const int64_t n_vocab = s.model->hparams().n_vocab;
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) {
            throw Error("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                        std::to_string(n_vocab - 1) + ")");
        }
    }
    std::vector<float> out;
    std::vector<float> all;
    if (all_logits) all.reserve(static_cast<size_t>(n * n_vocab));
    for (int64_t start = 0; start < n; start += s.options.n_batch) {
        const int64_t len = std::min(s.options.n_batch, n - start);
        const bool last_chunk = start + len == n;
        s.forward.run(tokens.data() + start, len, s.n_past + start, all_logits, out);
        if (all_logits) {
            all.insert(all.end(), out.begin(), out.end());
        } else if (last_chunk) {
            all = std::move(out);
        }
    }
    s.n_past += n;
    s.history.insert(s.history.end(), tokens.begin(), tokens.end());
    s.logits = std::move(all);
    s.logit_rows = all_logits ? n : 1;
    s.all_rows = all_logits;
}

std::span<const float> Session::logits(int64_t i) const {
    const SessionImpl& s = *impl_;
    const auto n_vocab = static_cast<size_t>(s.model->hparams().n_vocab);
    if (s.logit_rows == 0) throw Error("no logits yet: evaluate tokens first");
    if (i < 0) i = s.logit_rows - 1;
    if (!s.all_rows && i != s.logit_rows - 1) i = -1;
    if (i < 0 || i >= s.logit_rows)
        throw Error("no logits for token " + std::to_string(i) + " of the last evaluation");
    return {s.logits.data() + static_cast<size_t>(i) * n_vocab, n_vocab};
}

int64_t Session::n_past() const {
    return impl_->n_past;
}
int64_t Session::n_ctx() const {
    return impl_->kv.n_ctx;
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > impl_->n_past)
        throw Error("cannot truncate to " + std::to_string(n) + " tokens");
    impl_->n_past = n;
    impl_->history.resize(static_cast<size_t>(n));
    impl_->logits.clear();
    impl_->logit_rows = 0;
}

std::span<const int32_t> Session::history() const {
    return impl_->history;
}

int64_t Session::reuse_prefix(std::span<const int32_t> ids) {
    const std::vector<int32_t>& h = impl_->history;
    const size_t limit = std::min(h.size(), ids.empty() ? size_t{0} : ids.size() - 1);
    size_t keep = 0;
    while (keep < limit && h[keep] == ids[keep]) ++keep;
    if (keep < h.size()) truncate(static_cast<int64_t>(keep));
    return static_cast<int64_t>(keep);
}

const Model& Session::model() const {
    return *impl_->model;
}
int Session::threads() const {
    return impl_->pool.size();
}

}  // namespace bitnet
