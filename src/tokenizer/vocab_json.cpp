// Builds a tokenizer from a Hugging Face tokenizer.json (and tokenizer_config.json beside it).
// Supported: BPE models with a ByteLevel pre-tokenizer, optionally after an isolating Split
// regex (as Llama-3, GPT-2, Qwen2 use); SentencePiece-style BPE (Llama-2, Mistral: byte
// fallback, a "▁" prepended and spaces replaced by it, by a Prepend+Replace normalizer or a
// Metaspace pre-tokenizer); added tokens. Anything else is refused by name.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace bitnet {

namespace {

using nlohmann::json;

json read_json(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        throw Error(path + ": not valid JSON: " + e.what());
    }
}

constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

void check_byte_level(const json& p, const std::string& path) {
    if (p.value("add_prefix_space", false)) {
        throw NotSupported(path + ": ByteLevel pre-tokenizer with add_prefix_space");
    }
}

// The pre-tokenizer's regexes (one Split, or ByteLevel's own GPT-2 regex).
PreTokenizerDef pre_tokenizer_of(const json& pre, const std::string& path) {
    if (pre.is_null()) throw NotSupported(path + ": BPE without a pre-tokenizer");
    const std::string type = pre.value("type", "");
    if (type == "ByteLevel") {
        check_byte_level(pre, path);
        if (!pre.value("use_regex", true))
            throw NotSupported(path + ": ByteLevel pre-tokenizer without a regex");
        return {"gpt-2", {kGpt2Regex}, true};
    }
    if (type != "Sequence") throw NotSupported(path + ": pre-tokenizer type '" + type + "'");
    std::vector<std::string> regexes;
    bool byte_level = false;
    for (const json& p : pre.at("pretokenizers")) {
        const std::string t = p.value("type", "");
        if (t == "Split") {
            if (p.value("behavior", "") != "Isolated" || p.value("invert", false) ||
                !p.at("pattern").contains("Regex")) {
                throw NotSupported(path + ": Split pre-tokenizer other than an isolating regex");
            }
            regexes.push_back(p.at("pattern").at("Regex").get<std::string>());
        } else if (t == "ByteLevel") {
            check_byte_level(p, path);
            if (p.value("use_regex", true)) regexes.push_back(kGpt2Regex);
            byte_level = true;
        } else {
            throw NotSupported(
                std::string(path).append(": pre-tokenizer type '").append(t).append("'"));
        }
    }
    if (!byte_level) throw NotSupported(path + ": BPE without byte-level encoding");
    std::string name = "custom";
    if (regexes.size() == 1 && regexes[0] == kLlama3Regex) name = "llama3";
    if (regexes.size() == 1 && regexes[0] == kQwen2Regex) name = "qwen2";
    return {name, regexes, true};
}

bool is_string_replace(const json& n, const char* from, const char* to) {
    return n.is_object() && n.value("type", "") == "Replace" && n.contains("pattern") &&
           n["pattern"].is_object() && n["pattern"].value("String", "") == from &&
           n.value("content", "") == to;
}

// The SentencePiece-style front end as HF's LlamaConverter writes it: a Prepend("▁") +
// Replace(" " -> "▁") normalizer, no pre-tokenizer, a decoder of Replace/ByteFallback/Fuse/
// Strip, a plain BPE model. (The older Metaspace form is refused: HF splits on it and
// prepends only when the text does not start with "▁", which GGUF cannot express.)
void check_spm_front_end(const json& j, const json& model, const std::string& path) {
    const json normalizer = j.value("normalizer", json());
    bool ok = j.value("pre_tokenizer", json()).is_null() && normalizer.is_object() &&
              normalizer.value("type", "") == "Sequence" && normalizer.contains("normalizers") &&
              normalizer["normalizers"].is_array() && normalizer["normalizers"].size() == 2;
    if (ok) {
        const json& ns = normalizer["normalizers"];
        ok = ns[0].is_object() && ns[0].value("type", "") == "Prepend" &&
             ns[0].value("prepend", "") == "\u2581" && is_string_replace(ns[1], " ", "\u2581");
    }
    if (!ok)
        throw NotSupported(path +
                           ": a byte-fallback BPE whose normalizer/pre-tokenizer is not "
                           "SentencePiece's (a Prepend \"\u2581\" + Replace \" \" normalizer, "
                           "no pre-tokenizer)");
    const json decoder = j.value("decoder", json());
    bool decoder_ok = decoder.is_object() && decoder.value("type", "") == "Sequence" &&
                      decoder.contains("decoders") && decoder["decoders"].is_array();
    if (decoder_ok) {
        for (const json& d : decoder["decoders"]) {
            const std::string t = d.is_object() ? d.value("type", "") : "";
            decoder_ok = decoder_ok &&
                         (t == "Replace" || t == "ByteFallback" || t == "Fuse" || t == "Strip");
        }
    }
    if (!decoder_ok)
        throw NotSupported(path +
                           ": a byte-fallback BPE with a decoder other than "
                           "SentencePiece's (Replace, ByteFallback, Fuse, Strip)");
    for (const char* field : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"}) {
        const json v = model.value(field, json());
        if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty()))
            throw NotSupported(path + ": a byte-fallback BPE with model." + field);
    }
    if (model.value("ignore_merges", false))
        throw NotSupported(path + ": a byte-fallback BPE with ignore_merges");
}

// Scores from merge ranks reproduce HF's BPE exactly when the merge list is what transformers
// derives from a SentencePiece model: every split of a token into two vocabulary pieces is a
// merge, and the merges that make one token are adjacent in rank. A byte-fallback BPE trained
// otherwise is refused rather than tokenized differently.
void check_sentencepiece_merges(const TokenizerImpl& t, const MergeTable& pairs,
                                const std::vector<int>& first_rank,
                                const std::vector<int>& last_rank, const std::vector<int>& made_by,
                                const std::string& path) {
    const auto utf8_len = [](unsigned char c) {
        return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    };
    for (size_t i = 0; i < t.tokens.size(); ++i) {
        const TokenData& d = t.tokens[i];
        if (d.attr != token_attr::kNormal) continue;
        if (made_by[i] > 0 && last_rank[i] - first_rank[i] + 1 != made_by[i])
            throw NotSupported(path + ": the merges that make '" + d.text +
                               "' are not adjacent (not a merge list derived from a "
                               "SentencePiece model)");
        const std::string& x = d.text;
        size_t first_char = static_cast<size_t>(utf8_len(static_cast<unsigned char>(x[0])));
        for (size_t cut = first_char; cut < x.size();
             cut += static_cast<size_t>(utf8_len(static_cast<unsigned char>(x[cut])))) {
            const std::string_view a = std::string_view(x).substr(0, cut);
            const std::string_view b = std::string_view(x).substr(cut);
            const bool a_ok = t.find(std::string(a)) != kNoToken;
            const bool b_ok = t.find(std::string(b)) != kNoToken;
            if (a_ok && b_ok && pairs.find(a, b) < 0)
                throw NotSupported(path + ": '" + d.text + "' splits into '" + std::string(a) +
                                   "' + '" + std::string(b) +
                                   "', which is not a merge (not a merge list derived from a "
                                   "SentencePiece model)");
        }
    }
}

}  // namespace

Tokenizer Tokenizer::from_json_file(const std::string& path) {
    const json j = read_json(path);
    json config = json::object();
    const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    if (std::filesystem::exists(config_path)) config = read_json(config_path.string());

    const json& model = j.at("model");
    const std::string type = model.value("type", "");
    if (type != "BPE")
        throw NotSupported(path + ": tokenizer model '" + type +
                           "' (only BPE is read from tokenizer.json)");
    const bool spm = model.value("byte_fallback", false);
    if (spm) {
        check_spm_front_end(j, model, path);
    } else if (!j.value("normalizer", json()).is_null()) {
        throw NotSupported(path + ": normalizers in tokenizer.json (other than SentencePiece's)");
    }

    auto t = std::make_unique<TokenizerImpl>();
    t->clean_spaces = config.value("clean_up_tokenization_spaces", !spm);
    if (spm) {
        // SentencePiece's algorithm (merge the adjacent pair whose result scores best) with
        // scores from the merge list: a token made by merge r scores -r, so that the pair HF's
        // BPE merges first is the one with the best score; tokens no merge makes score below
        // all of them. Characters outside the vocabulary become <0xXX> byte tokens.
        t->type = VocabType::Spm;
        t->add_space_prefix = true;
        t->escape_whitespaces = true;
        t->pre = {"default", {}, false};
    } else {
        t->type = VocabType::Bpe;
        t->escape_whitespaces = false;
        t->ignore_merges = model.value("ignore_merges", false);
        t->pre = pre_tokenizer_of(j.value("pre_tokenizer", json()), path);
    }

    // Vocabulary, then added tokens on top (they may extend it).
    size_t n = 0;
    for (const auto& [text, id] : model.at("vocab").items()) n = std::max(n, id.get<size_t>() + 1);
    for (const json& a : j.value("added_tokens", json::array()))
        n = std::max(n, a.at("id").get<size_t>() + 1);
    if (n == 0 || n > (1u << 24))
        throw Error(path + ": vocabulary of " + std::to_string(n) + " tokens");
    t->tokens.resize(n);
    std::vector<bool> seen(n, false);
    for (const auto& [text, id] : model.at("vocab").items()) {
        const auto i = id.get<size_t>();
        t->tokens[i].text = text;
        seen[i] = true;
    }
    for (const json& a : j.value("added_tokens", json::array())) {
        const auto i = a.at("id").get<size_t>();
        TokenData& d = t->tokens[i];
        d.text = a.at("content").get<std::string>();
        d.attr = a.value("special", false) ? token_attr::kControl : token_attr::kUserDefined;
        if (a.value("lstrip", false)) d.attr |= token_attr::kLStrip;
        if (a.value("rstrip", false)) d.attr |= token_attr::kRStrip;
        seen[i] = true;
    }
    for (size_t i = 0; i < n; ++i) {
        TokenData& d = t->tokens[i];
        if (!seen[i]) {
            d.text = "[PAD" + std::to_string(i) + "]";
            d.attr = token_attr::kUnused;
        }
        t->token_to_id[d.text] = static_cast<TokenId>(i);
        t->max_token_len = std::max(t->max_token_len, d.text.size());
    }

    const json& merges = model.at("merges");
    std::vector<float> spm_scores;
    // Per result token: first and last rank of the merges that make it, and how many.
    std::vector<int> first_rank, last_rank, made_by;
    MergeTable spm_pairs;
    if (spm) {
        spm_scores.assign(n, -static_cast<float>(merges.size()) - 1.0f);
        first_rank.assign(n, -1);
        last_rank.assign(n, -1);
        made_by.assign(n, 0);
    }
    const auto add_merge = [&](std::string_view a, std::string_view b, int rank) {
        if (!spm) {
            t->merge_ranks.insert(a, b, rank);
            return;
        }
        spm_pairs.insert(a, b, rank);
        const TokenId id = t->find(std::string(a).append(b));
        if (id != kNoToken) {
            const auto i = static_cast<size_t>(id);
            spm_scores[i] = std::max(spm_scores[i], -static_cast<float>(rank));
            if (first_rank[i] < 0) first_rank[i] = rank;
            last_rank[i] = rank;
            ++made_by[i];
        }
    };
    if (!spm) t->merge_ranks.reserve(merges.size());
    int rank = 0;
    for (const json& m : merges) {
        if (m.is_string()) {
            const std::string& w = m.get_ref<const std::string&>();
            const size_t pos = w.find(' ', 1);
            if (pos == std::string::npos) {
                add_merge({}, {}, rank++);
            } else {
                const std::string_view v = w;
                add_merge(v.substr(0, pos), v.substr(pos + 1), rank++);
            }
        } else {
            add_merge(m.at(0).get_ref<const std::string&>(), m.at(1).get_ref<const std::string&>(),
                      rank++);
        }
    }
    if (spm) {
        check_sentencepiece_merges(*t, spm_pairs, first_rank, last_rank, made_by, path);
        for (size_t i = 0; i < n; ++i) {
            TokenData& d = t->tokens[i];
            d.score = spm_scores[i];
            const std::string& x = d.text;
            if (d.attr == token_attr::kNormal && x.size() == 6 && x.rfind("<0x", 0) == 0 &&
                x[5] == '>' && std::isxdigit(static_cast<unsigned char>(x[3])) &&
                std::isxdigit(static_cast<unsigned char>(x[4]))) {
                d.attr = token_attr::kByte;
                d.score = 0.0f;
            }
        }
    }

    auto token_named = [&](const char* field) {
        const json v = config.value(field, json());
        std::string text = v.is_string()   ? v.get<std::string>()
                           : v.is_object() ? v.value("content", "")
                                           : "";
        return text.empty() ? kNoToken : t->find(text);
    };
    t->special.bos = token_named("bos_token");
    t->special.eos = token_named("eos_token");
    t->special.unk = token_named("unk_token");
    if (t->special.unk == kNoToken && model.value("unk_token", json()).is_string())
        t->special.unk = t->find(model["unk_token"].get<std::string>());
    t->special.pad = token_named("pad_token");
    if (spm && t->special.unk != kNoToken) {
        TokenData& u = t->tokens[static_cast<size_t>(t->special.unk)];
        u.attr = token_attr::kUnknown;
        u.score = 0.0f;
    }
    // BOS: as tokenizer_config.json or the post-processor says; Llama-3's vocabulary always
    // starts with <|begin_of_text|> (as llama.cpp does for its pre-tokenizer).
    bool add_bos = config.value("add_bos_token", false);
    const json& post = j.value("post_processor", json());
    if (post.is_object() && post.value("type", "") == "TemplateProcessing" &&
        t->special.bos != kNoToken) {
        for (const json& step : post.value("single", json::array())) {
            if (step.contains("SpecialToken") &&
                step["SpecialToken"].value("id", "") ==
                    t->tokens[static_cast<size_t>(t->special.bos)].text) {
                add_bos = true;
            }
        }
    }
    if (t->pre.name == "llama3") {
        t->ignore_merges = true;
        add_bos = true;
    }
    t->add_bos = add_bos;
    t->add_eos = config.value("add_eos_token", false);
    if (!spm) t->splitter = std::make_unique<RegexSplitter>(t->pre.regexes);
    t->finish("");
    return Tokenizer(std::move(t));
}

}  // namespace bitnet
