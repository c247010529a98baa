// Ids -> text, with llama.cpp's conventions (leading-space removal for SentencePiece, the
// clean-up of spaces before punctuation where the vocabulary asks for it).
#include "bitnet/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bitnet {

namespace {

std::string unescape_spaces(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s.compare(i, 3, "\xe2\x96\x81") == 0) {
            out += ' ';
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

uint8_t byte_of_token(const std::string& text) {
    // "<0xAB>"
    if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>') {
        return static_cast<uint8_t>(std::stoi(text.substr(3, 2), nullptr, 16));
    }
    return text.empty() ? 0 : static_cast<uint8_t>(text[0]);
}

// GPT-2 byte-level text back to bytes; code points outside the table are kept visible.
std::string byte_decode(const std::string& text) {
    std::string out;
    for (uint32_t cp : unicode::decode(text)) {
        const int b = unicode::utf8_to_byte(cp);
        if (b >= 0) {
            out += static_cast<char>(b);
        } else {
            std::string utf8;
            unicode::append_utf8(utf8, cp);
            out += "[UNK_BYTE_0x";
            for (char c : utf8) {
                static const char* hex = "0123456789abcdef";
                out += hex[(static_cast<uint8_t>(c) >> 4) & 15];
                out += hex[static_cast<uint8_t>(c) & 15];
            }
            out += text + "]";
        }
    }
    return out;
}

// Hugging Face's clean_up_tokenization_spaces as llama.cpp implements it: three in-place
// passes over the buffer. The passes read characters that earlier writes may have replaced
// (" ' " between contractions), and that behaviour is reproduced exactly.
void clean_up_spaces(std::string& text) {
    char* t = text.data();
    int32_t total = static_cast<int32_t>(text.size());
    if (total == 0) return;
    // " ?", " !", " .", " ," lose their space.
    int32_t n = total;
    total = 1;
    for (int32_t i = 1; i < n; ++i) {
        const char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
        t[total++] = x;
    }
    // " ' " loses both spaces.
    n = total;
    total = 1;
    for (int32_t i = 1; i < n; ++i) {
        const char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            --total;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    // " 's", " 'm", " 're", " 've" lose their space.
    n = total;
    total = 1;
    for (int32_t i = 1; i < n; ++i) {
        const char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            const char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm') {
                --total;
            } else if (i + 2 < n) {
                const char x2 = t[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
            }
        }
        t[total++] = x;
    }
    text.resize(static_cast<size_t>(total));
}

}  // namespace

std::string TokenizerImpl::piece(TokenId id, bool render_special) const {
    if (id < 0 || static_cast<size_t>(id) >= tokens.size()) {
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                    std::to_string(tokens.size() - 1) + ")");
    }
    const TokenData& d = tokens[static_cast<size_t>(id)];
    constexpr uint32_t kSpecial = token_attr::kUnknown | token_attr::kControl;
    if (!render_special && (d.attr & kSpecial) != 0) return {};
    if ((d.attr & (kSpecial | token_attr::kUserDefined)) != 0) return d.text;
    if ((d.attr & token_attr::kByte) != 0)
        return std::string(1, static_cast<char>(byte_of_token(d.text)));
    if ((d.attr & token_attr::kNormal) == 0) return {};
    if (type == VocabType::Bpe && !escape_whitespaces) return byte_decode(d.text);
    return unescape_spaces(d.text);
}

std::string TokenizerImpl::decode(std::span<const TokenId> ids, const DecodeOptions& o) const {
    bool remove_space = add_space_prefix;
    if (o.remove_special && add_bos && !ids.empty() && ids.front() == special.bos) {
        remove_space = false;
        ids = ids.subspan(1);
    }
    if (o.remove_special && add_eos && !ids.empty() && ids.back() == special.eos)
        ids = ids.first(ids.size() - 1);
    std::string text;
    for (TokenId id : ids) {
        std::string p = piece(id, o.render_special);
        if (remove_space && !p.empty() && p[0] == ' ') p.erase(0, 1);
        remove_space = false;
        text += p;
    }
    if (clean_spaces) clean_up_spaces(text);
    return text;
}

}  // namespace bitnet
