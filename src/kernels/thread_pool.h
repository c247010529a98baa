// A fixed pool of worker threads for data-parallel loops. The calling thread takes part, so a
// pool of n threads has n-1 workers. One loop runs at a time.
//
// A forward pass runs hundreds of short parallel regions per token; waking workers through a
// condition variable each time costs tens of microseconds. So workers spin for a short while
// (kSpin, measured by the clock: PAUSE takes 10 to 140 cycles depending on the CPU) after each
// region and only then sleep, and the caller spins likewise while waiting for the last chunk.
#pragma once

#include <atomic>
#include <chrono>
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

    // The same, but [0, n) is cut into pieces of `piece` (a multiple of the caller's grain)
    // that the threads take in order, each the next one as soon as it is free: a thread that
    // the host or another process holds up leaves its share to the others. For long regions
    // and uneven work (a batch's matrix products and attention jobs); fn may run many times on
    // one thread.
    void parallel_pieces(int64_t n, int64_t piece,
                         const std::function<void(int, int64_t, int64_t)>& fn);

  private:
    static constexpr std::chrono::microseconds kSpin{200};
    // Spins until done() or kSpin has passed; returns done().
    template <typename Done>
    static bool spin(Done&& done);

    void run(int64_t n, int64_t grain, bool pieces,
             const std::function<void(int, int64_t, int64_t)>& fn);
    void worker(int index);
    void run_chunk(int index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable start_cv_, done_cv_;
    const std::function<void(int, int64_t, int64_t)>* fn_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    bool pieces_ = false;  // parallel_pieces: threads take from next_
    std::atomic<int64_t> next_{0};
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
};

}  // namespace bitnet
