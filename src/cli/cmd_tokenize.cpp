// `bitnet tokenize` and `bitnet detokenize`.
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "bitnet/tokenizer.h"
#include "cli/commands.h"

namespace bitnet::cli {

namespace {

struct Source {
    std::string model;
    std::string json;
    bool verbose = false;
};

void add_source_options(CLI::App* cmd, Source& s) {
    auto* m = cmd->add_option("-m,--model", s.model, "GGUF file whose tokenizer.* metadata to use");
    auto* j = cmd->add_option("--tokenizer", s.json, "Hugging Face tokenizer.json");
    m->excludes(j);
    cmd->add_flag("-v,--verbose", s.verbose, "Say which pre-tokenizer and defaults were chosen");
}

Tokenizer load(const Source& s) {
    if (s.model.empty() == s.json.empty())
        throw Error("give exactly one of -m/--model or --tokenizer");
    Tokenizer t =
        s.model.empty() ? Tokenizer::from_json_file(s.json) : Tokenizer::from_gguf_file(s.model);
    for (const std::string& w : t.warnings()) fmt::print(stderr, "warning: {}\n", w);
    if (s.verbose) {
        fmt::print(stderr, "tokenizer: {} tokens, pre-tokenizer '{}', add_bos {}, add_eos {}\n",
                   t.size(), t.pre_tokenizer(), t.add_bos(), t.add_eos());
        for (const std::string& n : t.notes()) fmt::print(stderr, "assumption: {}\n", n);
    }
    return t;
}

std::vector<TokenId> parse_ids(const std::string& text, size_t vocab) {
    std::vector<TokenId> ids;
    std::string cleaned = text;
    for (char& c : cleaned) {
        if (c == ',' || c == '[' || c == ']') c = ' ';
    }
    std::istringstream ss(cleaned);
    for (std::string w; ss >> w;) {
        size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(w, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != w.size()) throw Error("--ids: '" + w + "' is not a token id");
        if (v < 0 || static_cast<unsigned long long>(v) >= vocab) {
            throw Error("--ids: " + w + " is outside the vocabulary (0.." +
                        std::to_string(vocab - 1) + ")");
        }
        ids.push_back(static_cast<TokenId>(v));
    }
    return ids;
}

}  // namespace

void register_tokenize(CLI::App& app) {
    auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
    struct Args {
        Source source;
        std::string text, file;
        bool add_special = false, parse_special = false, json = false;
    };
    auto a = std::make_shared<Args>();
    add_source_options(cmd, a->source);
    auto* t = cmd->add_option("--text", a->text, "Text to tokenize");
    auto* f = cmd->add_option("--file", a->file, "File whose contents to tokenize");
    t->excludes(f);
    cmd->add_flag("--add-special", a->add_special, "Add BOS/EOS as the vocabulary asks");
    cmd->add_flag("--parse-special", a->parse_special, "Turn special-token text into its id");
    cmd->add_flag("--json", a->json, "Print {\"ids\":[...], \"pieces\":[...]}");
    cmd->callback([a, t, f] {
        if (t->count() == 0 && f->count() == 0) throw Error("give --text or --file");
        const Tokenizer tok = load(a->source);
        const std::string text = f->count() > 0 ? read_text_file(a->file) : a->text;
        EncodeOptions o;
        o.add_special = a->add_special;
        o.parse_special = a->parse_special;
        const std::vector<TokenId> ids = tok.encode(text, o);
        if (a->json) {
            nlohmann::json pieces = nlohmann::json::array();
            for (TokenId id : ids) pieces.push_back(tok.token_text(id));
            const nlohmann::json out = {{"ids", ids}, {"pieces", pieces}};
            fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            return;
        }
        std::string line;
        for (TokenId id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
        fmt::print("{}\n", line);
    });
}

void register_detokenize(CLI::App& app) {
    auto* cmd = app.add_subcommand("detokenize", "Print the text of token ids");
    struct Args {
        Source source;
        std::string ids;
        bool render_special = false;
    };
    auto a = std::make_shared<Args>();
    add_source_options(cmd, a->source);
    cmd->add_option("--ids", a->ids, "Token ids, separated by spaces or commas")->required();
    cmd->add_flag("--render-special", a->render_special, "Print control tokens' text");
    cmd->callback([a] {
        const Tokenizer tok = load(a->source);
        DecodeOptions o;
        o.render_special = a->render_special;
        fmt::print("{}\n", tok.decode(parse_ids(a->ids, tok.size()), o));
    });
}

}  // namespace bitnet::cli
