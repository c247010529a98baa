// A fixed pool of worker threads for data-parallel loops. The calling thread takes part, so a
// pool of n threads has n-1 workers. One loop runs at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bitnet {

class ThreadPool {
  public:
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(thread_index, begin, end) over [0, n) split into size() contiguous chunks
    // (chunks are multiples of `grain`). Returns when all are done; rethrows the first error.
    void parallel_for(int64_t n, int64_t grain,
                      const std::function<void(int, int64_t, int64_t)>& fn);

  private:
    void worker(int index);
    void run_chunk(int index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable start_cv_, done_cv_;
    const std::function<void(int, int64_t, int64_t)>* fn_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace bitnet
