// A streaming-read bandwidth test: the ceiling a bandwidth-bound decode can reach.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "core/page_buffer.h"

namespace bitnet {

namespace {

// Sums 64-bit words with eight independent accumulators so that loads, not the adds, limit it.
uint64_t read_all(const uint64_t* p, size_t n) {
    uint64_t a[8] = {};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) a[k] += p[i + static_cast<size_t>(k)];
    }
    for (; i < n; ++i) a[0] += p[i];
    uint64_t s = 0;
    for (uint64_t v : a) s += v;
    return s;
}

}  // namespace

double measure_read_bandwidth(int threads, size_t bytes, int repetitions) {
    if (threads < 1 || threads > 1024) throw Error("bandwidth test: threads out of range");
    if (bytes < (1u << 20)) throw Error("bandwidth test: needs at least 1 MiB");
    const size_t words = bytes / 8;
    // The same memory the engine streams its weights from (huge pages where the kernel gives
    // them): the ceiling is what the machine can do, not what 4 KiB pages allow.
    PageBuffer mem(words * 8);
    auto* buf = reinterpret_cast<uint64_t*>(mem.data());
    for (size_t i = 0; i < words; i += 512) buf[i] = i;  // fault every page in before timing
    double best = 0.0;
    std::vector<uint64_t> sink(static_cast<size_t>(threads));
    for (int r = 0; r < std::max(1, repetitions); ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> pool;
        pool.reserve(static_cast<size_t>(threads));
        const size_t per = words / static_cast<size_t>(threads);
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                const size_t begin = per * static_cast<size_t>(t);
                const size_t n = t == threads - 1 ? words - begin : per;
                sink[static_cast<size_t>(t)] = read_all(buf + begin, n);
            });
        }
        for (auto& th : pool) th.join();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(words * 8) / s / 1e9);
    }
    volatile uint64_t keep = 0;
    for (uint64_t v : sink) keep = keep + v;
    return best;
}

}  // namespace bitnet
