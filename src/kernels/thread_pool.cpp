#include "kernels/thread_pool.h"

#include <algorithm>

namespace bitnet {

ThreadPool::ThreadPool(int threads) {
    const int n = std::max(1, threads);
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    start_cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunk(int index) {
    const int64_t parts = size();
    const int64_t units = (n_ + grain_ - 1) / grain_;
    const int64_t per = (units + parts - 1) / parts;
    const int64_t begin = std::min(n_, index * per * grain_);
    const int64_t end = std::min(n_, (index + 1) * per * grain_);
    if (begin >= end) return;
    try {
        (*fn_)(index, begin, end);
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
    }
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    while (true) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        run_chunk(index);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int, int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (workers_.empty() || n <= grain) {
        fn(0, 0, n);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fn_ = &fn;
        n_ = n;
        grain_ = std::max<int64_t>(1, grain);
        pending_ = static_cast<int>(workers_.size());
        error_ = nullptr;
        ++generation_;
    }
    start_cv_.notify_all();
    run_chunk(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
}

}  // namespace bitnet
