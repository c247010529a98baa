// Special-token bookkeeping after loading, as llama.cpp does it: tokens recognised by their
// text become EOT/EOM/FIM ids (and control tokens), end-of-generation ids are collected, and
// the cache of tokens to cut out of raw text is built (longest first).
#include <algorithm>
#include <cstring>
#include <set>

#include "tokenizer/tokenizer_impl.h"

namespace bitnet {

namespace {

bool one_of(const std::string& s, std::initializer_list<const char*> list) {
    for (const char* x : list) {
        if (s == x) return true;
    }
    return false;
}

std::string lower_ascii(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

void TokenizerImpl::detect_special_tokens() {
    SpecialTokens& s = special;
    const SpecialTokens keyed = special;  // what the metadata named
    auto mark = [&](TokenId& slot, const std::pair<const std::string, TokenId>& t,
                    std::initializer_list<const char*> texts) {
        if (slot != kNoToken || !one_of(t.first, texts)) return;
        slot = t.second;
        tokens[static_cast<size_t>(t.second)].attr |= token_attr::kControl;
    };
    // Every text the lists below name is short and has a '<' or a '[': the rest of a large
    // vocabulary is set aside once, keeping token_to_id's order for the candidates.
    std::vector<const std::pair<const std::string, TokenId>*> candidates;
    for (const auto& t : token_to_id) {
        if (t.first.size() <= 32 && t.first.find_first_of("<[") != std::string::npos) {
            candidates.push_back(&t);
        }
    }
    for (const auto* c : candidates) {
        const auto& t = *c;
        mark(s.eot, t,
             {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
              "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
              "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_utterance>"});
        mark(s.eom, t, {"<|eom_id|>"});
        mark(s.fim_pre, t,
             {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uff5cfim\u2581begin\uff5c>",
              "<PRE>", "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"});
        mark(s.fim_suf, t,
             {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uff5cfim\u2581hole\uff5c>",
              "<SUF>", "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"});
        mark(s.fim_mid, t,
             {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uff5cfim\u2581end\uff5c>",
              "<MID>", "\u2581<MID>", "<|code_middle|>", "<|middle|>"});
        mark(s.fim_pad, t, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
        mark(s.fim_rep, t, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
        mark(s.fim_sep, t, {"<|file_sep|>"});
    }
    for (const auto& t : token_to_id) {
        uint32_t& attr = tokens[static_cast<size_t>(t.second)].attr;
        if ((attr & token_attr::kControl) != 0 && (attr & token_attr::kUnused) == 0 &&
            t.first.find("unused") != std::string::npos) {
            attr |= token_attr::kUnused;
        }
    }

    std::set<TokenId> eog_set;
    for (TokenId id : {s.fim_pad, s.fim_rep, s.fim_sep}) {
        if (id != kNoToken) eog_set.insert(id);
    }
    for (const auto* c : candidates) {
        const auto& t = *c;
        if (one_of(t.first, {"<|eot_id|>",
                             "<|im_end|>",
                             "<|end|>",
                             "<|return|>",
                             "<|call|>",
                             "<|flush|>",
                             "<|calls|>",
                             "<end_of_turn>",
                             "<|endoftext|>",
                             "</s>",
                             "<|eom_id|>",
                             "<EOT>",
                             "_<EOT>",
                             "[EOT]",
                             "[EOS]",
                             "<|end_of_text|>",
                             "<end_of_utterance>",
                             "<eos>",
                             "<turn|>",
                             "<|tool_response>",
                             "<\uff5cend\u2581of\u2581sentence\uff5c>",
                             "[e~["})) {
            eog_set.insert(t.second);
            tokens[static_cast<size_t>(t.second)].attr |= token_attr::kControl;
        }
    }
    for (const auto* c : candidates) {
        const auto& t = *c;
        if (one_of(t.first, {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})) {
            tokens[static_cast<size_t>(t.second)].attr = token_attr::kUserDefined;
        }
    }
    for (TokenId id : {s.eos, s.eot, s.eom}) {
        if (id != kNoToken) eog_set.insert(id);
    }
    // "<|end|>" is not an end of generation when "<|return|>"/"<|call|>" (or "<|calls|>"/
    // "<|flush|>") exist; "</s>" is not one beside "<|tool_response>".
    bool has_return = false, has_call = false, has_end = false, has_flush = false, has_tool = false,
         has_s = false;
    TokenId end_id = kNoToken, s_id = kNoToken;
    for (TokenId id : eog_set) {
        if (id < 0 || static_cast<size_t>(id) >= tokens.size()) continue;
        const std::string& text = tokens[static_cast<size_t>(id)].text;
        has_return |= text == "<|return|>";
        has_call |= text == "<|call|>" || text == "<|calls|>";
        has_flush |= text == "<|flush|>";
        has_tool |= text == "<|tool_response>";
        if (text == "<|end|>") {
            has_end = true;
            end_id = id;
        }
        if (text == "</s>") {
            has_s = true;
            s_id = id;
        }
    }
    if ((has_return && has_call && has_end) || (has_call && has_flush && has_end)) {
        eog_set.erase(end_id);
        tokens[static_cast<size_t>(end_id)].attr = token_attr::kUserDefined;
    }
    if (has_tool && has_s) {
        eog_set.erase(s_id);
        tokens[static_cast<size_t>(s_id)].attr = token_attr::kNormal;
    }
    eog.assign(eog_set.begin(), eog_set.end());
    // Say which end-of-generation tokens no key named (found by their text, as llama.cpp does).
    std::string by_text;
    for (TokenId id : eog) {
        if (id == keyed.eos || id == keyed.eot || id == keyed.eom || id == keyed.fim_pad ||
            id == keyed.fim_rep || id == keyed.fim_sep)
            continue;
        by_text += (by_text.empty() ? "" : ", ") + tokens[static_cast<size_t>(id)].text + " (" +
                   std::to_string(id) + ")";
    }
    if (!by_text.empty())
        notes.push_back("end-of-generation tokens recognised by their text: " + by_text);
}

void TokenizerImpl::finish(const std::string& model_name) {
    detect_special_tokens();
    for (TokenId id = 0; id < static_cast<TokenId>(tokens.size()); ++id) {
        if ((tokens[static_cast<size_t>(id)].attr &
             (token_attr::kControl | token_attr::kUserDefined | token_attr::kUnknown)) != 0) {
            special_cache.push_back(id);
        }
    }
    // Same algorithm and input order as llama.cpp, so equal-length tokens keep its order.
    std::sort(special_cache.begin(), special_cache.end(), [&](TokenId a, TokenId b) {
        return tokens[static_cast<size_t>(a)].text.size() >
               tokens[static_cast<size_t>(b)].text.size();
    });
    // Per-model strip attributes llama.cpp applies by name.
    const std::string name = lower_ascii(model_name);
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (TokenId id : special_cache)
            tokens[static_cast<size_t>(id)].attr |= token_attr::kRStrip;
        auto set = [&](const char* text, bool on) {
            const TokenId id = find(text);
            if (id == kNoToken) return;
            uint32_t& a = tokens[static_cast<size_t>(id)].attr;
            a = on ? (a | token_attr::kRStrip) : (a & ~token_attr::kRStrip);
        };
        set("</s>", true);
        set("<unk>", false);
        set("<s>", false);
        set("<|endoftext|>", false);
    }
}

}  // namespace bitnet
