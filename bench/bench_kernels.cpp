// Matrix products per weight format, ours beside ggml-cpu's own kernel in the same run, one
// thread each: GEMV (one token, as in decoding) and GEMM (128 tokens, as in prompt
// processing) of a 2560 x 2560 matrix (BitNet 2B-4T's attention width). Ours is matmul() as
// the engine calls it (rows16 tiles where the engine repacks; activations quantized inside);
// ggml's is the reference's libggml-cpu-<variant>.so (the variant ggml itself would pick on this
// CPU: the highest ggml_backend_score), its type traits' from_float for the activations and
// vec_dot for every row and token, as ggml's CPU backend computes a mul_mat of these types.
// Except IQ2_S batches: ggml-cpu decodes grid formats into int8 panels for batches of 8 or
// more tokens (ggml-cpu/iqp.cpp, no exported entry point), so its Gemm128 row here is the
// row-dot path, slower than what llama.cpp runs; bench/compare.sh measures the whole model
// against llama.cpp itself. Items are multiply-accumulates.
//   build/bench/bitnet_bench --benchmark_filter='Gemv|Gemm'
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bitnet/quant.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/repack.h"
#include "kernels/thread_pool.h"

namespace {

using bitnet::GgmlType;

constexpr int64_t kRows = 2560;
constexpr int64_t kCols = 2560;

std::vector<float> random_floats(size_t n, uint32_t seed, float sd) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
}

// ggml-cpu through dlopen: the variant with the best score for this CPU.
struct GgmlCpu {
    using FromFloat = void (*)(const float*, void*, int64_t);
    using VecDot = void (*)(int, float*, size_t, const void*, size_t, const void*, size_t, int);
    struct Traits {
        FromFloat from_float;
        VecDot vec_dot;
        int vec_dot_type;
        int64_t nrows;
    };
    using GetTraits = const Traits* (*)(int);
    GetTraits traits = nullptr;
    std::string variant;

    GgmlCpu() {
        const char* dir = std::getenv("BITNET_REFERENCE_DIR");
        const std::string bins = std::string(dir != nullptr ? dir : BITNET_REFERENCE_DIR) +
                                 "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/";
        // libggml-base.so first, global, so that the CPU variants find its symbols.
        if (dlopen((bins + "libggml-base.so").c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) return;
        int best = 0;
        void* chosen = nullptr;
        for (const char* v : {"sapphirerapids", "zen4", "icelake", "cooperlake", "cascadelake",
                              "cannonlake", "skylakex", "alderlake", "haswell", "piledriver",
                              "sandybridge", "ivybridge", "sse42", "x64"}) {
            void* h = dlopen((bins + "libggml-cpu-" + v + ".so").c_str(), RTLD_NOW | RTLD_LOCAL);
            if (h == nullptr) continue;
            auto score = reinterpret_cast<int (*)()>(dlsym(h, "ggml_backend_score"));
            const int s = score != nullptr ? score() : 0;
            if (s > best) {
                if (chosen != nullptr) dlclose(chosen);
                best = s;
                chosen = h;
                variant = v;
            } else {
                dlclose(h);
            }
        }
        if (chosen == nullptr) return;
        if (auto init = reinterpret_cast<void (*)()>(dlsym(chosen, "ggml_cpu_init"))) init();
        traits = reinterpret_cast<GetTraits>(dlsym(chosen, "ggml_get_type_traits_cpu"));
    }
};

const GgmlCpu& ggml_cpu() {
    static const GgmlCpu g;
    return g;
}

struct Operands {
    std::vector<uint8_t> w;  // stored layout
    std::vector<float> x, y;
    size_t row_bytes;
};

Operands operands(GgmlType type, int64_t tokens) {
    Operands o;
    const auto wf = random_floats(static_cast<size_t>(kRows * kCols), 1, 0.02f);
    o.w.resize(*bitnet::tensor_bytes(type, kCols, kRows * kCols));
    bitnet::QuantOptions qo;
    qo.i2s_layout = bitnet::I2sLayout::X86;
    bitnet::quantize_tensor(type, wf.data(), kRows, kCols, o.w, qo);
    o.row_bytes = type == GgmlType::I2_S ? static_cast<size_t>(kCols / 4)
                                         : *bitnet::tensor_bytes(type, kCols, kCols);
    o.x = random_floats(static_cast<size_t>(tokens * kCols), 2, 1.0f);
    o.y.resize(static_cast<size_t>(tokens * kRows));
    return o;
}

void BM_Ours(benchmark::State& state, GgmlType type, int64_t tokens) {
    Operands o = operands(type, tokens);
    bitnet::WeightMatrix w;
    w.type = type;
    w.rows = kRows;
    w.cols = kCols;
    w.row_bytes = o.row_bytes;
    std::vector<uint8_t> packed;
    // As the engine holds it: rows16 tiles where its kernels use them.
    if (bitnet::gemm_rows16_for(bitnet::rows16_type(type)) != nullptr &&
        bitnet::can_repack_rows16(type, bitnet::I2sLayout::X86, kRows, kCols)) {
        packed.resize(bitnet::rows16_bytes(type, kRows, kCols));
        bitnet::repack_rows16(type, bitnet::I2sLayout::X86, o.w, kRows, kCols, packed);
        w.data = packed.data();
        w.rows16 = true;
        w.type = bitnet::rows16_type(type);  // TQ1_0 is held as TQ2_0
    } else {
        w.data = o.w.data();
    }
    bitnet::ThreadPool pool(1);
    bitnet::MatmulScratch scratch;
    for (auto _ : state) {
        bitnet::matmul(w, o.x.data(), tokens, o.y.data(), pool, scratch);
        benchmark::DoNotOptimize(o.y.data());
    }
    state.SetItemsProcessed(state.iterations() * kRows * kCols * tokens);
    state.SetLabel(bitnet::kernel_name(w));
}

void BM_Ggml(benchmark::State& state, GgmlType type, int64_t tokens) {
    const GgmlCpu& g = ggml_cpu();
    if (g.traits == nullptr) {
        state.SkipWithError("ggml-cpu not found (run scripts/setup.sh)");
        return;
    }
    const GgmlCpu::Traits* t = g.traits(static_cast<int>(type));
    const GgmlCpu::Traits* at = g.traits(t->vec_dot_type);
    if (t->vec_dot == nullptr || at->from_float == nullptr) {
        state.SkipWithError("no vec_dot for this type in ggml-cpu");
        return;
    }
    Operands o = operands(type, tokens);
    const auto act_type = static_cast<GgmlType>(t->vec_dot_type);
    const size_t arow = *bitnet::tensor_bytes(act_type, kCols, kCols);
    std::vector<uint8_t> act(arow * static_cast<size_t>(tokens));
    for (auto _ : state) {
        for (int64_t k = 0; k < tokens; ++k)
            at->from_float(o.x.data() + k * kCols, act.data() + static_cast<size_t>(k) * arow,
                           kCols);
        for (int64_t k = 0; k < tokens; ++k) {
            const uint8_t* a = act.data() + static_cast<size_t>(k) * arow;
            for (int64_t r = 0; r < kRows; ++r)
                t->vec_dot(static_cast<int>(kCols), &o.y[static_cast<size_t>(k * kRows + r)], 0,
                           o.w.data() + static_cast<size_t>(r) * o.row_bytes, 0, a, 0, 1);
        }
        benchmark::DoNotOptimize(o.y.data());
    }
    state.SetItemsProcessed(state.iterations() * kRows * kCols * tokens);
    state.SetLabel("libggml-cpu-" + g.variant);
}

void register_all() {
    struct Format {
        const char* name;
        GgmlType type;
        bool in_ggml;  // I2_S is Microsoft's fork's type, not upstream ggml's
    };
    for (const Format& f :
         {Format{"TQ2_0", GgmlType::TQ2_0, true}, Format{"TQ1_0", GgmlType::TQ1_0, true},
          Format{"I2_S", GgmlType::I2_S, false}, Format{"IQ2_S", GgmlType::IQ2_S, true},
          Format{"Q8_0", GgmlType::Q8_0, true}, Format{"Q6_K", GgmlType::Q6_K, true},
          Format{"Q4_K", GgmlType::Q4_K, true}, Format{"F16", GgmlType::F16, true},
          Format{"BF16", GgmlType::BF16, true}}) {
        for (const int64_t tokens : {int64_t{1}, int64_t{128}}) {
            const std::string op = tokens == 1 ? "Gemv" : "Gemm128";
            benchmark::RegisterBenchmark((op + "/ours/" + f.name).c_str(), BM_Ours, f.type, tokens)
                ->Unit(benchmark::kMillisecond);
            if (f.in_ggml) {
                benchmark::RegisterBenchmark((op + "/ggml-cpu/" + f.name).c_str(), BM_Ggml, f.type,
                                             tokens)
                    ->Unit(benchmark::kMillisecond);
            }
        }
    }
}

[[maybe_unused]] const int registered = (register_all(), 0);

}  // namespace
