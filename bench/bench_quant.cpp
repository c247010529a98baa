// Quantize and dequantize throughput per type, ours beside ggml's (libggml-base.so from the
// npm reference, loaded with dlopen) in the same run. Values per second are reported as
// items/s; the reference rows are named "ggml/...".
//   build/bench/bitnet_bench --benchmark_filter=Quant
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bitnet/quant.h"

namespace {

using bitnet::GgmlType;

constexpr int64_t kRows = 16;
constexpr int64_t kCols = 4096;

const std::vector<float>& weights() {
    static const std::vector<float> w = [] {
        std::mt19937 rng(1);
        std::normal_distribution<float> nd(0.0f, 0.02f);
        std::vector<float> v(static_cast<size_t>(kRows * kCols));
        for (float& x : v) x = nd(rng);
        return v;
    }();
    return w;
}

struct Ggml {
    void* handle = nullptr;
    using Quantize = size_t (*)(const float*, void*, int64_t, int64_t, const float*);
    using Dequantize = void (*)(const void*, float*, int64_t);
    void (*init)(int) = nullptr;

    Ggml() {
        const char* dir = std::getenv("BITNET_REFERENCE_DIR");
        const std::string base = dir != nullptr ? dir : BITNET_REFERENCE_DIR;
        handle =
            dlopen((base + "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so")
                       .c_str(),
                   RTLD_NOW | RTLD_LOCAL);
        if (handle != nullptr)
            init = reinterpret_cast<void (*)(int)>(dlsym(handle, "ggml_quantize_init"));
    }
    Quantize quantizer(const std::string& n) const {
        return handle ? reinterpret_cast<Quantize>(dlsym(handle, ("quantize_" + n).c_str()))
                      : nullptr;
    }
    Dequantize dequantizer(const std::string& n) const {
        return handle ? reinterpret_cast<Dequantize>(dlsym(handle, ("dequantize_row_" + n).c_str()))
                      : nullptr;
    }
};

const Ggml& ggml() {
    static const Ggml g;
    return g;
}

void BM_Quantize(benchmark::State& state, GgmlType type) {
    const auto& w = weights();
    std::vector<uint8_t> out(*bitnet::tensor_bytes(type, kCols, kRows * kCols));
    for (auto _ : state) {
        bitnet::quantize_tensor(type, w.data(), kRows, kCols, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

void BM_Dequantize(benchmark::State& state, GgmlType type) {
    const auto& w = weights();
    std::vector<uint8_t> q(*bitnet::tensor_bytes(type, kCols, kRows * kCols));
    bitnet::quantize_tensor(type, w.data(), kRows, kCols, q);
    std::vector<float> out(w.size());
    for (auto _ : state) {
        bitnet::dequantize_tensor(type, q, kRows, kCols, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

void BM_GgmlQuantize(benchmark::State& state, GgmlType type, std::string name) {
    const auto q = ggml().quantizer(name);
    if (q == nullptr) {
        state.SkipWithError("reference libggml-base.so not found (run scripts/setup.sh)");
        return;
    }
    ggml().init(static_cast<int>(type));
    const auto& w = weights();
    std::vector<uint8_t> out(*bitnet::tensor_bytes(type, kCols, kRows * kCols));
    for (auto _ : state) {
        q(w.data(), out.data(), kRows, kCols, nullptr);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

void BM_GgmlDequantize(benchmark::State& state, GgmlType type, std::string name) {
    const auto d = ggml().dequantizer(name);
    if (d == nullptr) {
        state.SkipWithError("reference libggml-base.so not found (run scripts/setup.sh)");
        return;
    }
    const auto& w = weights();
    std::vector<uint8_t> q(*bitnet::tensor_bytes(type, kCols, kRows * kCols));
    bitnet::quantize_tensor(type, w.data(), kRows, kCols, q);
    std::vector<float> out(w.size());
    for (auto _ : state) {
        d(q.data(), out.data(), kRows * kCols);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

const int kRegistered = [] {
    const std::pair<GgmlType, const char*> types[] = {
        {GgmlType::F16, nullptr},   {GgmlType::BF16, nullptr},  {GgmlType::Q8_0, "q8_0"},
        {GgmlType::Q4_0, "q4_0"},   {GgmlType::TQ1_0, "tq1_0"}, {GgmlType::TQ2_0, "tq2_0"},
        {GgmlType::IQ2_S, "iq2_s"}, {GgmlType::I2_S, nullptr},
    };
    for (const auto& [type, gname] : types) {
        const std::string n(bitnet::type_name(type));
        benchmark::RegisterBenchmark(("Quantize/" + n).c_str(), BM_Quantize, type)
            ->Unit(benchmark::kMillisecond);
        if (gname != nullptr) {
            benchmark::RegisterBenchmark(("Quantize/ggml/" + n).c_str(), BM_GgmlQuantize, type,
                                         std::string(gname))
                ->Unit(benchmark::kMillisecond);
        }
        benchmark::RegisterBenchmark(("Dequantize/" + n).c_str(), BM_Dequantize, type)
            ->Unit(benchmark::kMicrosecond);
        if (gname != nullptr) {
            benchmark::RegisterBenchmark(("Dequantize/ggml/" + n).c_str(), BM_GgmlDequantize, type,
                                         std::string(gname))
                ->Unit(benchmark::kMicrosecond);
        }
    }
    return 0;
}();

}  // namespace
