#include "kernels/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BITNET_PAUSE() _mm_pause()
#else
#define BITNET_PAUSE() std::this_thread::yield()
#endif

namespace bitnet {

template <typename Done>
bool ThreadPool::spin(Done&& done) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (!done()) {
        // A look at `done` after every PAUSE and at the clock after 64: with the clock read
        // only every 64 PAUSEs (a PAUSE is ~65 cycles on Zen 3), a waiting thread noticed its
        // work up to ~1.6 us late and an empty two-thread region cost 2.0 us.
        for (int i = 0; i < 64; ++i) {
            if (done()) return true;
            BITNET_PAUSE();
        }
        if (std::chrono::steady_clock::now() > until) return done();
    }
    return true;
}

ThreadPool::ThreadPool(int threads) {
    const int n = std::max(1, threads);
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
    }
    start_cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunk(int index) {
    try {
        if (pieces_) {
            for (int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed); b < n_;
                 b = next_.fetch_add(grain_, std::memory_order_relaxed)) {
                (*fn_)(index, b, std::min(n_, b + grain_));
            }
            return;
        }
        const int64_t parts = size();
        const int64_t units = (n_ + grain_ - 1) / grain_;
        const int64_t per = (units + parts - 1) / parts;
        const int64_t begin = std::min(n_, index * per * grain_);
        const int64_t end = std::min(n_, (index + 1) * per * grain_);
        if (begin < end) (*fn_)(index, begin, end);
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
    }
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    while (true) {
        const bool woken = spin([&] {
            return generation_.load(std::memory_order_acquire) != seen ||
                   stop_.load(std::memory_order_relaxed);
        });
        if (!woken) {
            std::unique_lock<std::mutex> lock(mutex_);
            start_cv_.wait(lock, [&] {
                return stop_.load() || generation_.load(std::memory_order_acquire) != seen;
            });
        }
        if (stop_.load()) return;
        seen = generation_.load(std::memory_order_acquire);
        run_chunk(index);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_cv_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int, int64_t, int64_t)>& fn) {
    run(n, grain, false, fn);
}

void ThreadPool::parallel_pieces(int64_t n, int64_t piece,
                                 const std::function<void(int, int64_t, int64_t)>& fn) {
    run(n, piece, true, fn);
}

void ThreadPool::run(int64_t n, int64_t grain, bool pieces,
                     const std::function<void(int, int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (workers_.empty() || n <= grain) {
        fn(0, 0, n);
        return;
    }
    fn_ = &fn;
    n_ = n;
    grain_ = std::max<int64_t>(1, grain);
    pieces_ = pieces;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    {
        // A worker that checked the generation under the lock is waiting by now: wake it.
        std::lock_guard<std::mutex> lock(mutex_);
    }
    start_cv_.notify_all();
    run_chunk(0);
    if (!spin([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
}

}  // namespace bitnet
