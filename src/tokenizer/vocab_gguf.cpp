// Builds a tokenizer from GGUF metadata, following llama.cpp's rules for defaults, special
// tokens and pre-tokenizer names.
#include <map>

#include "bitnet/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace bitnet {

namespace {

struct PreName {
    const char* kind;  // llama.cpp's LLAMA_VOCAB_PRE_TYPE_* name
    bool clean_spaces = true;
    bool ignore_merges = false;
    bool force_add_bos = false;
    bool escape_whitespaces = false;
    bool add_sep = false;
    bool no_bos = false;
};

// tokenizer.ggml.pre values and what llama.cpp does with each.
const std::map<std::string, PreName>& pre_names() {
    static const std::map<std::string, PreName> names = [] {
        std::map<std::string, PreName> m;
        auto add = [&](std::initializer_list<const char*> keys, PreName p) {
            for (const char* k : keys) m[k] = p;
        };
        const PreName llama3{"LLAMA3", true, true, true};
        add({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
             "lfm2", "jina-v5-nano"},
            llama3);
        add({"default"}, {"DEFAULT"});
        add({"minicpm5"}, {"MINICPM5", true, true});
        add({"deepseek-llm"}, {"DEEPSEEK_LLM", false});
        add({"deepseek-coder"}, {"DEEPSEEK_CODER", false});
        add({"deepseek-v3"}, {"DEEPSEEK3_LLM", false});
        add({"spark2_5"}, {"SPARK2_5", false});
        add({"youtu"}, {"YOUTU", false, true});
        add({"falcon"}, {"FALCON"});
        add({"mpt"}, {"MPT"});
        add({"starcoder"}, {"STARCODER"});
        add({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
             "a.x-4.0", "mellum", "modern-bert", "exaone4"},
            {"GPT2"});
        add({"jais-2"}, {"JAIS2"});
        add({"gemma4", "granite-embed-multi-311m"}, {"GEMMA4", true, false, false, true});
        add({"sarvam-moe"}, {"SARVAM_MOE", false, false, false, true});
        add({"jina-v1-en", "jina-v2-code", "roberta-bpe"},
            {"GPT2", true, false, false, false, true});
        add({"whitespace"}, {"WHITESPACE"});
        add({"refact"}, {"REFACT"});
        add({"command-r"}, {"COMMAND_R", false});
        add({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"}, {"QWEN2", false});
        add({"qwen35"}, {"QWEN35", false});
        add({"stablelm2"}, {"STABLELM2"});
        add({"olmo"}, {"OLMO"});
        add({"dbrx"}, {"DBRX"});
        add({"smaug-bpe"}, {"SMAUG"});
        add({"poro-chat"}, {"PORO", false});
        add({"glm4", "chatglm-bpe"}, {"CHATGLM4", true, false, false, false, false, true});
        add({"viking"}, {"VIKING", false});
        add({"jais"}, {"JAIS"});
        add({"tekken"}, {"TEKKEN", false, true, true});
        add({"smollm"}, {"SMOLLM", false});
        add({"codeshell"}, {"CODESHELL"});
        add({"bloom"}, {"BLOOM"});
        add({"gpt3-finnish"}, {"GPT3_FINNISH"});
        add({"exaone"}, {"EXAONE"});
        add({"exaone-moe"}, {"EXAONE_MOE"});
        add({"chameleon"}, {"CHAMELEON", false, false, true});
        add({"minerva-7b"}, {"MINERVA"});
        add({"gpt-4o", "llama4", "kanana2", "talkie"}, {"GPT4O", false});
        add({"granite-embed-multi-97m"}, {"GRANITE_EMB_MULTI", false, true});
        add({"trillion"}, {"TRILLION", false});
        add({"granite-docling"}, {"GRANITE_DOCLING", false});
        add({"bailingmoe", "bailingmoe2", "llada-moe"}, {"BAILINGMOE", false});
        add({"seed-coder"}, {"SEED_CODER", false});
        add({"hunyuan"}, {"HUNYUAN", false});
        add({"hunyuan-dense"}, {"HUNYUAN_DENSE", false});
        add({"hy_v4"}, {"HY_V4", false});
        add({"joyai-llm"}, {"JOYAI_LLM", false});
        add({"ufakzeka"}, {"UFAKZEKA", false});
        add({"grok-2"}, {"GROK_2", false});
        add({"laguna"}, {"LAGUNA", false});
        add({"minimax-m2"}, {"MINIMAX_M2", false});
        add({"solar-open"}, {"SOLAR_OPEN", false});
        add({"mellum2"}, {"MELLUM2"});
        return m;
    }();
    return names;
}

// Pre-tokenizers llama.cpp implements with hand-written code rather than a regex.
bool is_custom_only(const std::string& pre) {
    return pre == "kimi-k2" || pre == "afmoe" || pre == "tiny_aya" || pre == "cohere2moe" ||
           pre == "superbpe";
}

// Microsoft's BitNet 2B-4T file carries Llama-3's vocabulary without tokenizer.ggml.pre.
bool looks_like_llama3(const std::vector<std::string>& tokens, const GgufMetadata& m) {
    if (tokens.size() < 128256) return false;
    if (tokens[128000] != "<|begin_of_text|>" || tokens[128001] != "<|end_of_text|>" ||
        tokens[128009] != "<|eot_id|>") {
        return false;
    }
    const GgufValue* merges = m.find("tokenizer.ggml.merges");
    if (merges == nullptr || merges->type() != GgufType::Array) return false;
    const auto& a = std::get<GgufArray>(merges->data);
    return a.elem_type == GgufType::String && a.size() == 280147 &&
           std::get<std::vector<std::string>>(a.data)[0] == "\xc4\xa0 \xc4\xa0";
}

std::string where(const GgufMetadata& m) {
    return m.source.empty() ? "" : m.source + ": ";
}

void load_merges(TokenizerImpl& t, const GgufMetadata& m) {
    const auto& merges = m.get_array<std::string>("tokenizer.ggml.merges");
    t.merge_ranks.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string_view w = merges[i];
        const size_t pos = w.find(' ', 1);
        if (pos == std::string_view::npos) {
            t.merge_ranks.insert({}, {}, static_cast<int>(i));  // as llama.cpp: an empty pair
        } else {
            t.merge_ranks.insert(w.substr(0, pos), w.substr(pos + 1), static_cast<int>(i));
        }
    }
}

void set_bpe_pre(TokenizerImpl& t, const std::string& pre_key, const GgufMetadata& m,
                 const std::vector<std::string>& tokens) {
    t.add_space_prefix = false;
    t.escape_whitespaces = false;
    t.clean_spaces = true;
    std::string pre = pre_key;
    if (pre.empty()) {
        if (looks_like_llama3(tokens, m)) {
            pre = "llama3";
            t.notes.push_back(
                "tokenizer.ggml.pre is missing but the vocabulary is Llama-3's: using the llama3 "
                "pre-tokenizer");
        } else {
            t.notes.push_back(
                "tokenizer.ggml.pre is missing: using llama.cpp's default pre-tokenizer "
                "(tokenization may differ from the original model's)");
            pre = "default";
        }
    }
    if (is_custom_only(pre)) throw NotSupported(where(m) + "pre-tokenizer '" + pre + "'");
    auto it = pre_names().find(pre);
    if (it == pre_names().end())
        throw NotSupported(where(m) + "unknown pre-tokenizer '" + pre + "' (tokenizer.ggml.pre)");
    const PreName& p = it->second;
    t.pre = pre_tokenizer_kind(p.kind);
    t.pre.name = pre;
    t.clean_spaces = p.clean_spaces;
    t.ignore_merges = p.ignore_merges;
    if (p.force_add_bos) t.add_bos = true;
    t.escape_whitespaces = p.escape_whitespaces;
    if (p.add_sep) t.add_sep = true;
    if (p.no_bos) t.special.bos = kNoToken;
    t.gemma4_newlines = std::string(p.kind) == "GEMMA4";
    t.splitter = std::make_unique<RegexSplitter>(t.pre.regexes);
}

template <typename T>
const std::vector<T>* optional_array(const GgufMetadata& m, const char* key) {
    return m.contains(key) ? &m.get_array<T>(key) : nullptr;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufMetadata& m) {
    auto t = std::make_unique<TokenizerImpl>();
    const std::string model = m.get<std::string>("tokenizer.ggml.model");
    const std::string pre = m.get_or<std::string>("tokenizer.ggml.pre", "");
    const auto& tokens = m.get_array<std::string>("tokenizer.ggml.tokens");
    SpecialTokens& s = t->special;

    if (model == "llama") {
        t->type = VocabType::Spm;
        s.bos = 1;
        s.eos = 2;
        s.unk = 0;
        t->add_space_prefix = true;
        t->clean_spaces = false;
        t->add_bos = true;
    } else if (model == "bert") {
        t->type = VocabType::Wpm;
        s.bos = 101;
        s.unk = 100;
        s.sep = 102;
        s.pad = 0;
        s.mask = 103;
        t->add_space_prefix = false;
        t->clean_spaces = true;
        t->add_bos = true;
        t->add_sep = true;
    } else if (model == "gpt2" || model == "gemma4") {
        t->type = VocabType::Bpe;
        load_merges(*t, m);
        if (model == "gpt2") {
            s.bos = 11;
            s.eos = 11;
        }
        set_bpe_pre(*t, model == "gemma4" ? "gemma4" : pre, m, tokens);
    } else {
        throw NotSupported(where(m) + "tokenizer model '" + model + "' (tokenizer.ggml.model)");
    }
    t->add_space_prefix = m.get_or<bool>("tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    t->remove_extra_whitespaces = m.get_or<bool>("tokenizer.ggml.remove_extra_whitespaces", false);

    // Scores are f32, or i32 in some conversions (llama.cpp reads both).
    std::vector<float> int_scores;
    const std::vector<float>* scores = nullptr;
    if (const GgufValue* sv = m.find("tokenizer.ggml.scores");
        sv != nullptr && sv->type() == GgufType::Array &&
        std::get<GgufArray>(sv->data).elem_type == GgufType::I32) {
        for (int32_t v : m.get_array<int32_t>("tokenizer.ggml.scores"))
            int_scores.push_back(static_cast<float>(v));
        scores = &int_scores;
    } else {
        scores = optional_array<float>(m, "tokenizer.ggml.scores");
    }
    const auto* types = optional_array<int32_t>(m, "tokenizer.ggml.token_type");
    if (scores != nullptr && scores->size() < tokens.size()) {
        throw Error(where(m) + "tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                    " entries for " + std::to_string(tokens.size()) + " tokens");
    }
    if (types != nullptr && types->size() < tokens.size()) {
        throw Error(where(m) + "tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                    " entries for " + std::to_string(tokens.size()) + " tokens");
    }
    if (tokens.empty() || tokens.size() > static_cast<size_t>(INT32_MAX)) {
        throw Error(where(m) + "tokenizer.ggml.tokens has " + std::to_string(tokens.size()) +
                    " entries");
    }
    t->tokens.resize(tokens.size());
    t->token_to_id.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        TokenData& d = t->tokens[i];
        d.text = tokens[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : tokens[i];
        t->token_to_id[d.text] = static_cast<TokenId>(i);
        t->max_token_len = std::max(t->max_token_len, d.text.size());
        d.score = scores != nullptr ? (*scores)[i] : 0.0f;
        d.attr = token_attr::kNormal;
        if (types != nullptr) {
            switch ((*types)[i]) {
                case 1:
                    d.attr = token_attr::kNormal;
                    break;
                case 2:
                    d.attr = token_attr::kUnknown;
                    break;
                case 3:
                    d.attr = token_attr::kControl;
                    break;
                case 4:
                    d.attr = token_attr::kUserDefined;
                    break;
                case 5:
                    d.attr = token_attr::kUnused;
                    break;
                case 6:
                    d.attr = token_attr::kByte;
                    break;
                default:
                    d.attr = 0;
                    break;
            }
        }
    }

    const auto n = static_cast<uint64_t>(tokens.size());
    // An id outside the vocabulary is ignored with a warning: the slot stays empty rather than
    // taking a default (llama.cpp substitutes 11 for gpt2 vocabularies, an ordinary token).
    // `legacy` keys (prefix/suffix/middle) only fill a slot; a bad one never clears a good id.
    auto read_id = [&](const char* key, TokenId& id, bool legacy = false) {
        if (id >= 0 && static_cast<uint64_t>(id) >= n) id = kNoToken;
        if (!m.contains(key)) return;
        std::string value;
        try {
            const uint64_t v = m.get_uint(key);
            if (v < n) {
                id = static_cast<TokenId>(v);
                return;
            }
            value = std::to_string(v);
        } catch (const Error&) {  // negative, or not an integer
            value = "a negative or non-integer value";
        }
        if (!legacy) id = kNoToken;
        t->warnings.push_back(std::string(key) + " = " + value + " is outside the vocabulary (" +
                              std::to_string(n) + " tokens): ignored");
    };
    read_id("tokenizer.ggml.bos_token_id", s.bos);
    read_id("tokenizer.ggml.eos_token_id", s.eos);
    read_id("tokenizer.ggml.eot_token_id", s.eot);
    read_id("tokenizer.ggml.eom_token_id", s.eom);
    read_id("tokenizer.ggml.unknown_token_id", s.unk);
    read_id("tokenizer.ggml.seperator_token_id", s.sep);
    read_id("tokenizer.ggml.padding_token_id", s.pad);
    read_id("tokenizer.ggml.mask_token_id", s.mask);
    read_id("tokenizer.ggml.cls_token_id", s.cls);
    read_id("tokenizer.ggml.fim_pre_token_id", s.fim_pre);
    read_id("tokenizer.ggml.fim_suf_token_id", s.fim_suf);
    read_id("tokenizer.ggml.fim_mid_token_id", s.fim_mid);
    read_id("tokenizer.ggml.fim_pad_token_id", s.fim_pad);
    read_id("tokenizer.ggml.fim_rep_token_id", s.fim_rep);
    read_id("tokenizer.ggml.fim_sep_token_id", s.fim_sep);
    read_id("tokenizer.ggml.prefix_token_id", s.fim_pre, true);
    read_id("tokenizer.ggml.suffix_token_id", s.fim_suf, true);
    read_id("tokenizer.ggml.middle_token_id", s.fim_mid, true);

    t->add_bos = m.get_or<bool>("tokenizer.ggml.add_bos_token", t->add_bos);
    t->add_eos = m.get_or<bool>("tokenizer.ggml.add_eos_token", t->add_eos);
    t->add_sep = m.get_or<bool>("tokenizer.ggml.add_sep_token", t->add_sep);
    if (t->gemma4_newlines) t->add_bos = true;
    // BertNormalizer options: lowercase unless the file says otherwise; accents follow it.
    t->lowercase = m.get_or<bool>("tokenizer.ggml.normalizer.lowercase", true);
    t->strip_accents = m.get_or<bool>("tokenizer.ggml.normalizer.strip_accents", t->lowercase);

    t->finish(m.get_or<std::string>("general.name", ""));
    return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_gguf_file(const std::string& path) {
    return from_gguf(GgufFile::open(path).metadata());
}

PreTokenizerDef pre_tokenizer_kind(const std::string& kind) {
    struct Entry {
        const char* kind;
        bool byte_encode;
        std::vector<std::string> regexes;
    };
    static const std::vector<Entry> entries = {
#include "tokenizer/pre_tokenizer_regexes.inc"
    };
    for (const Entry& e : entries) {
        if (kind == e.kind) return {kind, e.regexes, e.byte_encode};
    }
    throw NotSupported("pre-tokenizer kind '" + kind + "'");
}

}  // namespace bitnet
