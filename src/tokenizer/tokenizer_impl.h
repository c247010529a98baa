// The tokenizer's data and algorithms (behind bitnet::Tokenizer). One vocabulary model per
// type: SentencePiece-style merges by score (SPM), byte-level BPE by merge rank (BPE), greedy
// longest-match WordPiece (WPM); special tokens are cut out of the text first.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bitnet/tokenizer.h"
#include "tokenizer/merge_table.h"
#include "tokenizer/regex_split.h"

namespace bitnet {

struct TokenData {
    std::string text;
    float score = 0.0f;
    uint32_t attr = token_attr::kNormal;
};

struct PreTokenizerDef {
    std::string name;  // what tokenizer.ggml.pre said (or what we chose)
    std::vector<std::string> regexes;
    bool byte_encode = true;
};

class TokenizerImpl {
  public:
    VocabType type = VocabType::Spm;
    std::vector<TokenData> tokens;
    // Insertion in id order into an unordered_map reproduces llama.cpp's iteration order for
    // the text-based special-token detection.
    std::unordered_map<std::string, TokenId> token_to_id;
    MergeTable merge_ranks;
    SpecialTokens special;
    std::vector<TokenId> eog;
    std::vector<TokenId> special_cache;  // CONTROL/USER_DEFINED/UNKNOWN ids, longest text first
    size_t max_token_len = 0;

    // Behaviour switches (llama.cpp's names).
    bool add_bos = false, add_eos = false, add_sep = false;
    bool add_space_prefix = false, escape_whitespaces = true, clean_spaces = false;
    bool ignore_merges = false, remove_extra_whitespaces = false;
    bool lowercase = false, strip_accents = false;
    bool gemma4_newlines = false;
    PreTokenizerDef pre;
    std::unique_ptr<RegexSplitter> splitter;
    std::vector<std::string> notes;     // assumptions taken while loading
    std::vector<std::string> warnings;  // problems with the file that were worked around

    TokenId find(const std::string& text) const {
        auto it = token_to_id.find(text);
        return it == token_to_id.end() ? kNoToken : it->second;
    }
    int merge_rank(std::string_view a, std::string_view b) const { return merge_ranks.find(a, b); }

    // Called once the vocabulary and switches are set: special-token detection, caches.
    void finish(const std::string& model_name);

    std::vector<TokenId> encode(std::string_view text, const EncodeOptions& o) const;
    std::string piece(TokenId id, bool render_special) const;
    std::string decode(std::span<const TokenId> ids, const DecodeOptions& o) const;

    TokenId byte_token(uint8_t byte) const;

  private:
    void encode_spm(const std::string& text, std::vector<TokenId>& out) const;
    void encode_bpe(const std::string& text, std::vector<TokenId>& out) const;
    void encode_wpm(const std::string& text, std::vector<TokenId>& out) const;
    void detect_special_tokens();
};

// Pre-tokenizer regexes of a llama.cpp kind ("LLAMA3", "GPT2", ...); throws if unknown.
PreTokenizerDef pre_tokenizer_kind(const std::string& kind);

}  // namespace bitnet
