// `bitnet run` (generate text) and `bitnet score` (teacher-forced log-probabilities).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "bitnet/generate.h"
#include "cli/commands.h"

namespace bitnet::cli {

namespace {

constexpr const char* kVerboseHelp =
    "Say what was assumed about the file, and when a BOS already in the text replaces the one "
    "the tokenizer adds";

// Tokenizes with BOS/EOS as the vocabulary asks; a BOS already at the start of the text is
// not doubled (the tokenizer does that), and --verbose says so.
std::vector<TokenId> encode_prompt(const Tokenizer& tok, const std::string& text,
                                   bool parse_special, bool verbose) {
    EncodeOptions eo;
    eo.add_special = true;
    eo.parse_special = parse_special;
    std::vector<TokenId> ids = tok.encode(text, eo);
    if (verbose && tok.add_bos() && parse_special) {
        const std::vector<TokenId> raw = tok.encode(text, {false, true});
        if (!raw.empty() && raw.front() == tok.special().bos) {
            fmt::print(stderr, "note: the text begins with BOS ({}); not adding a second one\n",
                       tok.token_text(tok.special().bos));
        }
    }
    return ids;
}

Session open_session(const ModelArgs& a) {
    return Session(load_model(a), session_options(a));
}

double tokens_per_second(size_t n, double ms) {
    return ms > 0 ? 1000.0 * static_cast<double>(n) / ms : 0.0;
}

}  // namespace

void register_run(CLI::App& app) {
    auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
    struct Args {
        ModelArgs model;
        std::string prompt, file;
        int n_predict = 128;
        SamplingOptions sampling;
        std::optional<uint64_t> seed;
        std::vector<std::string> stop;
        bool json = false, ignore_eos = false, no_escape = false;
    };
    auto a = std::make_shared<Args>();
    add_model_options(cmd, a->model, kVerboseHelp);
    auto* p = cmd->add_option("-p,--prompt", a->prompt,
                              "Prompt text (special tokens in it are parsed; escapes \\n \\r "
                              "\\t \\' \\\" \\\\ \\xHH are processed unless --no-escape)");
    auto* f = cmd->add_option("-f,--file", a->file,
                              "Read the prompt from a file (taken verbatim: no escapes)");
    p->excludes(f);
    cmd->add_option("-n,--n-predict", a->n_predict,
                    "Tokens to generate (-1: until end of generation)")
        ->capture_default_str()
        ->check(CLI::Range(-1, 1 << 20));
    cmd->add_option("--temp", a->sampling.temperature, "Temperature (0: greedy)")
        ->capture_default_str();
    cmd->add_option("--top-k", a->sampling.top_k, "Top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", a->sampling.top_p, "Top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", a->sampling.min_p, "Min-p (0: off)")->capture_default_str();
    cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1: off)")
        ->capture_default_str();
    cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalties look back")
        ->capture_default_str();
    cmd->add_option("--frequency-penalty", a->sampling.frequency_penalty)->capture_default_str();
    cmd->add_option("--presence-penalty", a->sampling.presence_penalty)->capture_default_str();
    cmd->add_option("--seed", a->seed, "Random seed (default: random)");
    cmd->add_option("--stop", a->stop, "Stop string (repeatable; escapes processed as in -p)");
    cmd->add_flag("--no-escape", a->no_escape, "Take -p and --stop literally (no \\n etc.)");
    cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
    cmd->add_flag("--json", a->json, "Print one JSON object at the end instead of streaming");
    cmd->callback([a, p, f] {
        if (p->count() == 0 && f->count() == 0) throw Error("give a prompt with -p or -f");
        a->sampling.seed = a->seed ? *a->seed : std::random_device{}();
        validate(a->sampling);
        Session session = open_session(a->model);
        const Tokenizer& tok = session.model().tokenizer();
        const std::string prompt = f->count() > 0 ? read_text_file(a->file)
                                   : a->no_escape ? a->prompt
                                                  : process_escapes(a->prompt);
        const std::vector<TokenId> ids = encode_prompt(tok, prompt, true, a->model.verbose);
        if (static_cast<int64_t>(ids.size()) > session.n_ctx()) {
            throw Error("the prompt has " + std::to_string(ids.size()) +
                        " tokens but the context holds " + std::to_string(session.n_ctx()) +
                        " (raise -c)");
        }
        GenerateOptions go;
        go.n_predict = a->n_predict;
        go.sampling = a->sampling;
        go.stop = a->stop;
        if (!a->no_escape) {
            for (std::string& s : go.stop) s = process_escapes(s);
        }
        go.stop_at_end_of_generation = !a->ignore_eos;
        const auto stream = [&](std::string_view text) {
            if (!a->json) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
            }
            return true;
        };
        const GenerateResult r = generate(session, ids, go, stream);
        if (a->json) {
            const nlohmann::json out = {{"prompt_ids", r.prompt_ids},
                                        {"ids", r.ids},
                                        {"text", r.text},
                                        {"stop", stop_reason_name(r.stop)},
                                        {"seed", a->sampling.seed},
                                        {"timings",
                                         {{"prompt_tokens", r.prompt_ids.size()},
                                          {"prompt_ms", r.prompt_ms},
                                          {"gen_tokens", r.ids.size()},
                                          {"gen_ms", r.gen_ms}}}};
            fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        } else {
            fmt::print("\n");
        }
        std::fflush(stdout);
        fmt::print(stderr, "prompt: {} tokens in {:.1f} ms ({:.2f} tokens/s)\n",
                   r.prompt_ids.size(), r.prompt_ms,
                   tokens_per_second(r.prompt_ids.size(), r.prompt_ms));
        fmt::print(stderr, "generation: {} tokens in {:.1f} ms ({:.2f} tokens/s), stopped: {}\n",
                   r.ids.size(), r.gen_ms, tokens_per_second(r.ids.size(), r.gen_ms),
                   stop_reason_name(r.stop));
    });
}

namespace {

// log-softmax of one row of logits, in double.
void log_softmax(std::span<const float> l, std::vector<double>& out) {
    double max = -INFINITY;
    for (float v : l) max = std::max(max, static_cast<double>(v));
    double z = 0.0;
    for (float v : l) z += std::exp(static_cast<double>(v) - max);
    const double lz = max + std::log(z);
    out.resize(l.size());
    for (size_t i = 0; i < l.size(); ++i) out[i] = static_cast<double>(l[i]) - lz;
}

size_t argmax(std::span<const float> l) {
    return static_cast<size_t>(std::max_element(l.begin(), l.end()) - l.begin());
}

}  // namespace

void register_score(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "score", "Teacher-forced log-probabilities, NLL and perplexity of a text");
    struct Args {
        ModelArgs model;
        std::string text, file, kl_base;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    add_model_options(cmd, a->model, kVerboseHelp);
    auto* t = cmd->add_option("--text", a->text, "Text to score");
    auto* f = cmd->add_option("--file", a->file, "File to score");
    t->excludes(f);
    cmd->add_option("--kl-base", a->kl_base,
                    "GGUF model to compare with (e.g. the same file without --head-type): the KL "
                    "divergence of its next-token distributions to this model's (mean, standard "
                    "error, 99th percentile by nearest rank, maximum) and how often both rank the "
                    "same token first, the measures of llama-perplexity --kl-divergence");
    cmd->add_flag(
        "--json", a->json,
        "Print {\"ids\", \"tokens\", \"nll\", \"ppl\", \"token_logprobs\"} (with --kl-base "
        "also \"base_nll\", \"kl_mean\", \"kl_stderr\", \"kl_p99\", \"kl_max\", "
        "\"top1_agreement\")");
    cmd->callback([a, t, f] {
        if (t->count() == 0 && f->count() == 0) throw Error("give --text or --file");
        Session session = open_session(a->model);
        std::optional<Session> base;
        if (!a->kl_base.empty()) {
            ModelOptions mo;
            mo.i2s_layout = parse_i2s_layout(a->model.layout);
            auto bm = Model::load(a->kl_base, mo);
            print_load_messages(*bm, a->model.verbose);
            if (bm->hparams().n_vocab != session.model().hparams().n_vocab) {
                throw Error(fmt::format(
                    "--kl-base {}: its vocabulary has {} tokens, the model's {}", a->kl_base,
                    bm->hparams().n_vocab, session.model().hparams().n_vocab));
            }
            SessionOptions so = session_options(a->model);
            so.n_ctx = session.n_ctx();  // the same context as the scored model
            so.dump_dir.clear();         // --dump-tensors is for the scored model
            base.emplace(std::move(bm), so);
        }
        const std::string text = f->count() > 0 ? read_text_file(a->file) : a->text;
        const std::vector<TokenId> ids =
            encode_prompt(session.model().tokenizer(), text, false, a->model.verbose);
        if (ids.size() < 2)
            throw Error("the text has " + std::to_string(ids.size()) +
                        " token(s); scoring needs at least 2");
        if (static_cast<int64_t>(ids.size()) > session.n_ctx()) {
            throw Error("the text has " + std::to_string(ids.size()) +
                        " tokens but the context holds " + std::to_string(session.n_ctx()) +
                        " (raise -c)");
        }
        // Evaluated in chunks (logits are the same however a text is split), so that only a
        // chunk's logits are held at a time.
        constexpr size_t kChunk = 256;
        std::vector<double> logprobs, base_logprobs, kl;
        size_t same_top = 0;
        std::vector<double> lp, lq;
        for (size_t c = 0; c < ids.size(); c += kChunk) {
            const size_t n = std::min(kChunk, ids.size() - c);
            const std::span<const TokenId> chunk(ids.data() + c, n);
            session.evaluate(chunk, true);
            if (base) base->evaluate(chunk, true);
            for (size_t j = 0; j < n && c + j + 1 < ids.size(); ++j) {
                const auto next = static_cast<size_t>(ids[c + j + 1]);
                const auto l = session.logits(static_cast<int64_t>(j));
                log_softmax(l, lq);
                logprobs.push_back(lq[next]);
                if (!base) continue;
                const auto lb = base->logits(static_cast<int64_t>(j));
                log_softmax(lb, lp);
                base_logprobs.push_back(lp[next]);
                double d = 0.0;  // KL(base || model) = Σ p_base (log p_base - log p_model)
                for (size_t v = 0; v < lp.size(); ++v) {
                    if (lp[v] == -INFINITY) continue;  // p = 0 contributes nothing
                    d += std::exp(lp[v]) * (lp[v] - lq[v]);
                }
                kl.push_back(d);
                same_top += argmax(l) == argmax(lb) ? 1 : 0;
            }
        }
        const auto mean = [](const std::vector<double>& v) {
            double s = 0.0;
            for (double x : v) s += x;
            return s / static_cast<double>(v.size());
        };
        const double nll = -mean(logprobs);
        nlohmann::json out = {{"ids", ids},
                              {"tokens", ids.size()},
                              {"nll", nll},
                              {"ppl", std::exp(nll)},
                              {"token_logprobs", logprobs}};
        std::string kl_line;
        if (base) {
            const double m = mean(kl);
            double var = 0.0;
            for (double x : kl) var += (x - m) * (x - m);
            const double se = kl.size() > 1 ? std::sqrt(var / static_cast<double>(kl.size() - 1) /
                                                        static_cast<double>(kl.size()))
                                            : 0.0;
            std::vector<double> sorted = kl;
            std::sort(sorted.begin(), sorted.end());
            const double p99 = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
            const double agree =
                100.0 * static_cast<double>(same_top) / static_cast<double>(kl.size());
            const double base_nll = -mean(base_logprobs);
            out["base_nll"] = base_nll;
            out["kl_mean"] = m;
            out["kl_stderr"] = se;
            out["kl_p99"] = p99;
            out["kl_max"] = sorted.back();
            out["top1_agreement"] = agree / 100.0;
            kl_line = fmt::format(
                "against {}: KL divergence mean {:.6f} ± {:.6f}, 99th percentile {:.6f}, max "
                "{:.6f}; same top token {:.2f} % ({} of {}); base nll {:.6f}, perplexity {:.4f}\n",
                a->kl_base, m, se, p99, sorted.back(), agree, same_top, kl.size(), base_nll,
                std::exp(base_nll));
        }
        if (a->json) {
            fmt::print("{}\n", out.dump());
        } else {
            fmt::print("tokens: {}, nll: {:.6f}, perplexity: {:.4f}\n", ids.size(), nll,
                       std::exp(nll));
            fmt::print("{}", kl_line);
        }
    });
}

}  // namespace bitnet::cli
