// Text -> ids: special tokens are cut out of the text first (longest first), then each raw
// fragment goes through the vocabulary's algorithm.
#include <algorithm>
#include <cctype>
#include <queue>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bitnet {

namespace {

struct Fragment {
    TokenId token = kNoToken;  // kNoToken: raw text [offset, offset + length)
    size_t offset = 0;
    size_t length = 0;
};

bool c_isspace(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

void replace_spaces(std::string& s) {
    std::string out;
    out.reserve(s.size() + s.size() / 2);
    for (char c : s) {
        if (c == ' ') {
            out += "\xe2\x96\x81";
        } else {
            out += c;
        }
    }
    s = std::move(out);
}

// A doubly linked symbol list over one word, merged pairwise.
struct Symbol {
    int prev;
    int next;
    size_t offset;
    size_t n;
};

// Merges the symbol after `left` into it and unlinks the merged one.
void merge_right_into(std::vector<Symbol>& sym, int left) {
    Symbol& l = sym[static_cast<size_t>(left)];
    Symbol& r = sym[static_cast<size_t>(l.next)];
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = left;
}

std::vector<Symbol> utf8_symbols(const std::string& text) {
    std::vector<Symbol> symbols;
    size_t offset = 0;
    int index = 0;
    while (offset < text.size()) {
        const size_t n = std::min(unicode::utf8_length(static_cast<unsigned char>(text[offset])),
                                  text.size() - offset);
        symbols.push_back({index - 1, offset + n == text.size() ? -1 : index + 1, offset, n});
        offset += n;
        ++index;
    }
    return symbols;
}

}  // namespace

TokenId TokenizerImpl::byte_token(uint8_t byte) const {
    static const char* hex = "0123456789ABCDEF";
    if (type == VocabType::Spm) {
        const char buf[7] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>', 0};
        TokenId id = find(buf);
        if (id == kNoToken) id = find(std::string(1, static_cast<char>(byte)));
        return id != kNoToken ? id : special.unk;
    }
    return find(unicode::byte_to_utf8(byte));
}

// SentencePiece-style: merge the adjacent pair whose merged text is the highest-scoring token
// (ties: leftmost), until no pair forms a token; leftovers become byte tokens.
void TokenizerImpl::encode_spm(const std::string& text, std::vector<TokenId>& out) const {
    std::vector<Symbol> sym = utf8_symbols(text);
    struct Bigram {
        int left, right;
        float score;
        size_t size;
    };
    auto cmp = [](const Bigram& l, const Bigram& r) {
        return l.score < r.score || (l.score == r.score && l.left > r.left);
    };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
    auto try_add = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        const TokenId id =
            find(text.substr(sym[static_cast<size_t>(left)].offset,
                             sym[static_cast<size_t>(left)].n + sym[static_cast<size_t>(right)].n));
        if (id == kNoToken) return;
        queue.push({left, right, tokens[static_cast<size_t>(id)].score,
                    sym[static_cast<size_t>(left)].n + sym[static_cast<size_t>(right)].n});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = sym[static_cast<size_t>(b.left)];
        Symbol& r = sym[static_cast<size_t>(b.right)];
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        merge_right_into(sym, b.left);
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }
    for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
        const Symbol& s = sym[static_cast<size_t>(i)];
        const TokenId id = find(text.substr(s.offset, s.n));
        if (id != kNoToken) {
            out.push_back(id);
            continue;
        }
        for (size_t j = 0; j < s.n; ++j) {
            const TokenId b = byte_token(static_cast<uint8_t>(text[s.offset + j]));
            if (b != kNoToken) out.push_back(b);
        }
    }
}

// Byte-level BPE: pre-tokenize, then in each word merge the adjacent pair of lowest merge rank
// (ties: leftmost) until none is left.
void TokenizerImpl::encode_bpe(const std::string& text, std::vector<TokenId>& out) const {
    struct Bigram {
        int left, right;
        std::string text;
        int rank;
    };
    auto cmp = [](const Bigram& l, const Bigram& r) {
        return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    };
    for (const std::string& word : splitter->split(text, pre.byte_encode)) {
        if (word.empty()) continue;
        std::vector<Symbol> sym;
        const bool whole = (ignore_merges && find(word) != kNoToken) ||
                           (gemma4_newlines && word.find_first_not_of('\n') == std::string::npos &&
                            find(word) != kNoToken);
        if (whole) {
            sym.push_back({-1, -1, 0, word.size()});
        } else {
            sym = utf8_symbols(word);
        }
        std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
        auto piece = [&](int i) {
            return word.substr(sym[static_cast<size_t>(i)].offset, sym[static_cast<size_t>(i)].n);
        };
        auto try_add = [&](int left, int right) {
            if (left == -1 || right == -1) return;
            std::string a = piece(left), b = piece(right);
            const int rank = merge_rank(a, b);
            if (rank < 0) return;
            queue.push({left, right, a + b, rank});
        };
        for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
        while (!queue.empty()) {
            const Bigram b = queue.top();
            queue.pop();
            Symbol& l = sym[static_cast<size_t>(b.left)];
            Symbol& r = sym[static_cast<size_t>(b.right)];
            if (l.n == 0 || r.n == 0) continue;
            if (l.n + r.n != b.text.size() || word.compare(l.offset, l.n + r.n, b.text) != 0 ||
                r.offset != l.offset + l.n) {
                continue;  // stale: one side changed since this pair was queued
            }
            merge_right_into(sym, b.left);
            try_add(l.prev, b.left);
            try_add(b.left, l.next);
        }
        for (const Symbol& s : sym) {
            if (s.n == 0) continue;
            const std::string str = word.substr(s.offset, s.n);
            const TokenId id = find(str);
            if (id != kNoToken) {
                out.push_back(id);
                continue;
            }
            // No token for the merged text: fall back to single bytes where tokens exist.
            for (char c : str) {
                TokenId b = kNoToken;
                if (pre.byte_encode) {
                    b = find(std::string(1, c));
                } else {
                    static const char* hex = "0123456789ABCDEF";
                    const auto u = static_cast<uint8_t>(c);
                    const char buf[7] = {'<', '0', 'x', hex[u >> 4], hex[u & 15], '>', 0};
                    b = find(buf);
                }
                if (b != kNoToken) out.push_back(b);
            }
        }
    }
}

// WordPiece: normalize, split on whitespace and punctuation, then greedy longest match with a
// leading "▁" per word; a word with no full match becomes [UNK].
void TokenizerImpl::encode_wpm(const std::string& text, std::vector<TokenId>& out) const {
    std::vector<std::string> words(1);
    for (uint32_t cp : unicode::decode(text)) {
        if (strip_accents) cp = unicode::nfd_first(cp);
        const unicode::CodepointInfo ci = unicode::info(cp);
        if (ci.whitespace) {
            if (!words.back().empty()) words.emplace_back();
            continue;
        }
        if (cp == 0 || cp == 0xfffd || ci.category == unicode::Category::Control) continue;
        if (strip_accents && ci.category == unicode::Category::Mark) continue;
        std::string s;
        unicode::append_utf8(s, lowercase ? unicode::to_lower(cp) : cp);
        const bool chinese = (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
                             (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
                             (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf) ||
                             (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
        if (ci.category == unicode::Category::Punctuation ||
            (cp < 0x7f && ci.category == unicode::Category::Symbol) || chinese) {
            if (!words.back().empty()) words.emplace_back();
            words.back() = s;
            words.emplace_back();
        } else {
            words.back() += s;
        }
    }
    for (const std::string& word : words) {
        if (word.empty()) continue;
        const std::string w = "\xe2\x96\x81" + word;
        const size_t n = w.size();
        const size_t start = out.size();
        for (size_t i = 0; i < n; ++i) {
            bool match = false;
            for (size_t j = std::min(n, i + max_token_len + 1); j > i; --j) {
                const TokenId id = find(w.substr(i, j - i));
                if (id != kNoToken) {
                    out.push_back(id);
                    match = true;
                    i = j - 1;
                    break;
                }
            }
            if (!match) {
                out.resize(start);
                break;
            }
        }
        if (out.size() == start) out.push_back(special.unk);
    }
}

std::vector<TokenId> TokenizerImpl::encode(std::string_view text_view,
                                           const EncodeOptions& o) const {
    const std::string text(text_view);
    std::vector<Fragment> frags;
    if (!text.empty()) frags.push_back({kNoToken, 0, text.size()});
    for (TokenId sid : special_cache) {
        const TokenData& d = tokens[static_cast<size_t>(sid)];
        if (!o.parse_special && (d.attr & (token_attr::kControl | token_attr::kUnknown)) != 0)
            continue;
        std::vector<Fragment> next;
        next.reserve(frags.size());
        for (const Fragment& f : frags) {
            if (f.token != kNoToken) {
                next.push_back(f);
                continue;
            }
            size_t base = f.offset, len = f.length;
            while (true) {
                const size_t match = std::string_view(text.data(), base + len).find(d.text, base);
                if (match == std::string_view::npos) {
                    if (len > 0) next.push_back({kNoToken, base, len});
                    break;
                }
                if (match > base) {
                    size_t left = match - base;
                    if ((d.attr & token_attr::kLStrip) != 0) {
                        while (left > 0 && c_isspace(text[base + left - 1])) --left;
                    }
                    if (left > 0) next.push_back({kNoToken, base, left});
                }
                next.push_back({sid, 0, 0});
                size_t right_off = match + d.text.size();
                size_t right_len = base + len - right_off;
                if ((d.attr & token_attr::kRStrip) != 0) {
                    while (right_len > 0 && c_isspace(text[right_off])) {
                        ++right_off;
                        --right_len;
                    }
                }
                base = right_off;
                len = right_len;
                if (len == 0) break;
            }
        }
        frags = std::move(next);
    }

    std::vector<TokenId> out;
    switch (type) {
        case VocabType::Spm: {
            bool prev_special = true;
            if (o.add_special && add_bos && special.bos != kNoToken) out.push_back(special.bos);
            for (const Fragment& f : frags) {
                if (f.token != kNoToken) {
                    out.push_back(f.token);
                    prev_special = true;
                    continue;
                }
                std::string t = add_space_prefix && prev_special ? " " : "";
                t += text.substr(f.offset, f.length);
                replace_spaces(t);
                encode_spm(t, out);
                prev_special = false;
            }
            if (o.add_special && add_eos && special.eos != kNoToken) out.push_back(special.eos);
            break;
        }
        case VocabType::Bpe: {
            if (o.add_special && add_bos && special.bos != kNoToken) out.push_back(special.bos);
            for (const Fragment& f : frags) {
                if (f.token != kNoToken) {
                    out.push_back(f.token);
                    continue;
                }
                std::string t = text.substr(f.offset, f.length);
                if (escape_whitespaces) replace_spaces(t);
                encode_bpe(t, out);
            }
            if (o.add_special && add_eos && special.eos != kNoToken) out.push_back(special.eos);
            break;
        }
        case VocabType::Wpm: {
            if (o.add_special && special.bos != kNoToken) out.push_back(special.bos);
            for (const Fragment& f : frags) {
                if (f.token != kNoToken) {
                    out.push_back(f.token);
                } else {
                    encode_wpm(text.substr(f.offset, f.length), out);
                }
            }
            if (o.add_special && special.sep != kNoToken) out.push_back(special.sep);
            break;
        }
    }
    // A text that already begins with BOS (pasted from a model card) gets no second one.
    if (o.add_special && out.size() >= 2 && special.bos != kNoToken && out[0] == special.bos &&
        out[1] == special.bos) {
        out.erase(out.begin());
    }
    return out;
}

}  // namespace bitnet
