// `bitnet bench`: prompt processing and generation speed, in the spirit of llama-bench, with
// the machine's measured read bandwidth as the ceiling decode is compared against.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "bitnet/session.h"
#include "cli/commands.h"
#include "core/page_buffer.h"
#include "kernels/attention.h"

namespace bitnet::cli {

namespace {

struct Stats {
    double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& v) {
    Stats s;
    if (v.empty()) return s;
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
    return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Token ids spread over the vocabulary (skipping the first 256, often control or byte tokens),
// the same for every run.
std::vector<TokenId> bench_tokens(int64_t n, int64_t n_vocab, uint64_t salt) {
    std::vector<TokenId> ids(static_cast<size_t>(n));
    uint64_t x = 0x9e3779b97f4a7c15ull ^ salt;
    const int64_t lo = std::min<int64_t>(256, n_vocab - 1);
    for (TokenId& id : ids) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id = static_cast<TokenId>(lo +
                                  static_cast<int64_t>(x % static_cast<uint64_t>(n_vocab - lo)));
    }
    return ids;
}

std::string cpu_text() {
    const CpuFeatures& f = cpu_features();
    std::string isa;
    auto add = [&](bool on, const char* name) {
        if (on) isa += (isa.empty() ? "" : " ") + std::string(name);
    };
    add(f.avx2, "avx2");
    add(f.fma, "fma");
    add(f.f16c, "f16c");
    add(f.avx_vnni, "avx_vnni");
    add(f.avx512f, "avx512f");
    add(f.avx512bw, "avx512bw");
    add(f.avx512vl, "avx512vl");
    add(f.avx512vnni, "avx512_vnni");
    add(f.amx_int8, "amx_int8");
    return (f.brand.empty() ? std::string("unknown CPU") : f.brand) + " [" + isa + "]";
}

}  // namespace

void register_bench(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("bench",
                           "Measure prompt processing and generation speed (tokens/s) against the "
                           "machine's read bandwidth");
    struct Args {
        std::string model, layout = "auto", head_type, cache_type_k = "f16", cache_type_v = "f16";
        HubArgs hf;
        int n_prompt = 128, n_gen = 32, threads = 0, reps = 3;
        int64_t depth = 0;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("-m,--model", a->model, "GGUF model file (or -hf ORG/NAME[:TAG])");
    add_hub_options(cmd, a->hf, true);
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens, processed as one batch")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 16));
    cmd->add_option("-n,--n-gen", a->n_gen, "Tokens generated one at a time after the prompt")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 16));
    cmd->add_option("-t,--threads", a->threads, "Threads (default: all)")
        ->check(CLI::Range(0, 1024));
    cmd->add_option("-r,--repetitions", a->reps, "Timed repetitions after one warm-up")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
    cmd->add_option("-d,--n-depth", a->depth,
                    "Tokens already in the context before each repetition (not timed)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
    cmd->add_option("--i2s-layout", a->layout, "I2_S packing: auto, x86 or arm")
        ->capture_default_str();
    cmd->add_option("--head-type", a->head_type,
                    "Requantize the output head at load (q8_0 or q6_k), as run and score do");
    cmd->add_option("--cache-type-k", a->cache_type_k,
                    "KV cache type for K (also -ctk): f16, f32 or q8_0")
        ->capture_default_str();
    cmd->add_option("--cache-type-v", a->cache_type_v,
                    "KV cache type for V (also -ctv): f16, f32 or q8_0")
        ->capture_default_str();
    cmd->add_flag("--json", a->json, "Print one JSON object as the last line");
    cmd->callback([a] {
        if (a->n_prompt == 0 && a->n_gen == 0) throw Error("nothing to measure: -p and -n are 0");
        const GgmlType type_k = parse_cache_type(a->cache_type_k, "--cache-type-k");
        const GgmlType type_v = parse_cache_type(a->cache_type_v, "--cache-type-v");
        ModelOptions mo;
        mo.i2s_layout = parse_i2s_layout(a->layout);
        if (!a->head_type.empty()) {
            const auto t = type_from_name(a->head_type);
            if (!t) throw Error("--head-type '" + a->head_type + "' is not a ggml type name");
            mo.head_type = *t;
        }
        a->model = model_path(a->model, a->hf);
        const auto t_load = std::chrono::steady_clock::now();
        const auto model = Model::load(a->model, mo);
        const double load_s = seconds_since(t_load);
        print_load_messages(*model, false);
        const Hparams& h = model->hparams();
        SessionOptions so;
        so.threads = a->threads;
        so.n_ctx = a->depth + a->n_prompt + a->n_gen + 1;
        so.n_batch = std::max(1, a->n_prompt);
        so.type_k = type_k;
        so.type_v = type_v;
        Session session(model, so);
        // Before the KV cache is written: what is in huge pages now is (nearly all) the weights.
        const int64_t huge_bytes = anon_huge_page_bytes();
        const int threads = session.threads();
        const std::vector<TokenId> depth_ids = bench_tokens(a->depth, h.n_vocab, 1);
        const std::vector<TokenId> prompt = bench_tokens(a->n_prompt, h.n_vocab, 2);
        const std::vector<TokenId> gen = bench_tokens(a->n_gen, h.n_vocab, 3);

        std::vector<double> pp, tg;
        for (int rep = 0; rep <= a->reps; ++rep) {  // repetition 0 is the warm-up
            session.truncate(0);
            if (!depth_ids.empty()) session.evaluate(depth_ids);
            if (a->n_prompt > 0) {
                const auto t0 = std::chrono::steady_clock::now();
                session.evaluate(prompt);
                if (rep > 0) pp.push_back(a->n_prompt / seconds_since(t0));
            }
            if (a->n_gen > 0) {
                const auto t0 = std::chrono::steady_clock::now();
                for (TokenId id : gen) session.evaluate(std::span<const TokenId>(&id, 1));
                if (rep > 0) tg.push_back(a->n_gen / seconds_since(t0));
            }
        }
        const Stats p = stats(pp), g = stats(tg);
        const double bandwidth = measure_read_bandwidth(threads);
        // Weights plus the KV cache a decode step reads at the mean generated position.
        const double kv_mean = static_cast<double>(a->depth + a->n_prompt) + a->n_gen / 2.0;
        const double kv_bytes = static_cast<double>(h.n_layer * h.n_head_kv) *
                                static_cast<double>(cache_row_bytes(so.type_k, h.head_dim) +
                                                    cache_row_bytes(so.type_v, h.head_dim)) *
                                kv_mean;
        const double bytes = static_cast<double>(model->weight_bytes_per_token()) + kv_bytes;
        const double roofline = bandwidth > 0 ? 100.0 * g.mean * bytes / (bandwidth * 1e9) : 0;
        const std::string weight_type =
            h.n_layer > 0 ? model->kernel_summary().substr(0, model->kernel_summary().find(' '))
                          : "";
        fmt::print("cpu:        {}\n", cpu_text());
        fmt::print("isa:        {} (kernels: {})\n", isa_name(active_isa()),
                   model->kernel_summary());
        fmt::print("model:      {}\n", model->describe());
        fmt::print("threads:    {}\n", threads);
        fmt::print("load:       {:.2f} s\n", load_s);
        fmt::print("bandwidth:  {:.1f} GB/s streaming read ({} threads, best of 5 over 1 GiB)\n",
                   bandwidth, threads);
        fmt::print("per token:  {:.1f} MB read (weights {:.1f} MB + KV cache)\n", bytes / 1e6,
                   static_cast<double>(model->weight_bytes_per_token()) / 1e6);
        fmt::print("held:       {:.1f} MB of weights in memory, {}\n",
                   static_cast<double>(model->held_weight_bytes()) / 1e6,
                   huge_bytes < 0 ? std::string("huge pages not reported by the kernel")
                                  : fmt::format("{:.1f} MB in huge pages", huge_bytes / 1e6));
        if (a->n_prompt > 0) {
            fmt::print("pp{:<4}      {:8.2f} ± {:.2f} tokens/s{}\n", a->n_prompt, p.mean, p.stddev,
                       a->depth > 0 ? fmt::format(" (depth {})", a->depth) : "");
        }
        if (a->n_gen > 0) {
            fmt::print(
                "tg{:<4}      {:8.2f} ± {:.2f} tokens/s ({:.0f} % of the bandwidth "
                "ceiling){}\n",
                a->n_gen, g.mean, g.stddev, roofline,
                a->depth > 0 ? fmt::format(" (depth {})", a->depth) : "");
        }
        if (a->json) {
            const nlohmann::json out = {{"version", "0.1.0"},
                                        {"cpu", cpu_text()},
                                        {"model", a->model},
                                        {"weight_type", weight_type},
                                        {"kernels", model->kernel_summary()},
                                        {"isa", isa_name(active_isa())},
                                        {"threads", threads},
                                        {"head_type", a->head_type.empty() ? "file" : a->head_type},
                                        {"load_s", load_s},
                                        {"n_prompt", a->n_prompt},
                                        {"n_gen", a->n_gen},
                                        {"n_depth", a->depth},
                                        {"cache_type_k", a->cache_type_k},
                                        {"cache_type_v", a->cache_type_v},
                                        {"pp_tok_s", p.mean},
                                        {"pp_stddev", p.stddev},
                                        {"tg_tok_s", g.mean},
                                        {"tg_stddev", g.stddev},
                                        {"bytes_per_token", bytes},
                                        {"held_bytes", model->held_weight_bytes()},
                                        {"huge_page_bytes", huge_bytes},
                                        {"bandwidth_gb_s", bandwidth},
                                        {"tg_roofline_pct", roofline}};
            fmt::print("{}\n", out.dump());
        }
    });
}

}  // namespace bitnet::cli
