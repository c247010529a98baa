// Tokenizer throughput on English text (llama.cpp's own documentation) with the Llama-3
// vocabulary, ours beside llama.cpp's (node-llama-cpp) in the same run. Bytes/s is the figure
// to compare; the reference's time excludes model loading and the Node.js start.
//   build/bench/bitnet_bench --benchmark_filter=Tokenize
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bitnet/tokenizer.h"

namespace {

namespace fs = std::filesystem;

fs::path reference_dir() {
    const char* dir = std::getenv("BITNET_REFERENCE_DIR");
    return dir != nullptr ? fs::path(dir) : fs::path(BITNET_REFERENCE_DIR);
}

fs::path vocab_path() {
    return reference_dir() / "llama.cpp/models/ggml-vocab-llama-bpe.gguf";
}

// English prose: llama.cpp's README and docs, concatenated once into a temporary file.
const fs::path& corpus_path() {
    static const fs::path path = [] {
        const fs::path root = reference_dir() / "llama.cpp";
        std::string text;
        std::vector<fs::path> files = {root / "README.md"};
        if (fs::exists(root / "docs")) {
            for (const auto& e : fs::recursive_directory_iterator(root / "docs")) {
                if (e.path().extension() == ".md") files.push_back(e.path());
            }
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::ostringstream ss;
            ss << in.rdbuf();
            text += ss.str();
            if (text.size() > (1u << 20)) break;
        }
        const fs::path out = fs::temp_directory_path() / "bitnet_bench_corpus.txt";
        std::ofstream(out, std::ios::binary) << text;
        return out;
    }();
    return path;
}

std::string corpus() {
    std::ifstream in(corpus_path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void BM_TokenizeOurs(benchmark::State& state) {
    if (!fs::exists(vocab_path())) {
        state.SkipWithError("reference vocabulary not found (run scripts/setup.sh)");
        return;
    }
    const bitnet::Tokenizer tok = bitnet::Tokenizer::from_gguf_file(vocab_path().string());
    const std::string text = corpus();
    size_t n = 0;
    for (auto _ : state) {
        n = tok.encode(text).size();
        benchmark::DoNotOptimize(n);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["tokens"] = static_cast<double>(n);
}
BENCHMARK(BM_TokenizeOurs)->Name("Tokenize/llama3/bitnet")->Unit(benchmark::kMillisecond);

void BM_TokenizeReference(benchmark::State& state) {
    if (!fs::exists(vocab_path())) {
        state.SkipWithError("reference not found (run scripts/setup.sh)");
        return;
    }
    const fs::path script = fs::path(BITNET_SOURCE_DIR) / "bench/reference_tokenize.mjs";
    const std::string cmd = "node '" + script.string() + "' '" + reference_dir().string() + "' '" +
                            vocab_path().string() + "' '" + corpus_path().string() +
                            "' 5 2>/dev/null";
    for (auto _ : state) {
        std::string output;
        FILE* p = popen(cmd.c_str(), "r");
        if (p == nullptr) {
            state.SkipWithError("cannot run node");
            return;
        }
        std::array<char, 4096> buf{};
        while (fgets(buf.data(), buf.size(), p) != nullptr) output += buf.data();
        if (pclose(p) != 0 || output.empty()) {
            state.SkipWithError("reference tokenizer failed");
            return;
        }
        const auto j = nlohmann::json::parse(output);
        state.SetIterationTime(j.at("seconds_per_run").get<double>());
        state.SetBytesProcessed(j.at("bytes").get<int64_t>());
        state.counters["tokens"] = j.at("tokens").get<double>();
    }
}
BENCHMARK(BM_TokenizeReference)
    ->Name("Tokenize/llama3/llama.cpp")
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
