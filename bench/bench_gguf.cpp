// GGUF parse throughput on a vocabulary-sized metadata section (128k strings).
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <cstdio>

#include "bitnet/gguf.h"

namespace {

std::string make_file() {
    const std::string path = "/tmp/bitnet_bench_vocab." + std::to_string(::getpid()) + ".gguf";
    bitnet::GgufWriter w;
    std::vector<std::string> tokens;
    for (int i = 0; i < 128256; ++i) tokens.push_back("tok" + std::to_string(i));
    w.metadata().set("tokenizer.ggml.tokens", bitnet::GgufArray::of(std::move(tokens)));
    w.write(path);
    return path;
}

void BM_GgufOpenVocab(benchmark::State& state) {
    static const std::string path = make_file();
    for (auto _ : state) {
        bitnet::GgufFile f = bitnet::GgufFile::open(path);
        benchmark::DoNotOptimize(f.metadata().size());
    }
}
BENCHMARK(BM_GgufOpenVocab)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
