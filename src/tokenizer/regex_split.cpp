#include "tokenizer/regex_split.h"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include <array>
#include <string_view>

#include "bitnet/error.h"
#include "tokenizer/unicode.h"

namespace bitnet {

namespace {

using unicode::Category;

// The collapsed unit of each category, and the ASCII members each \p{..} must also match.
constexpr uint32_t kCollapsedOther = 0xd0;
constexpr uint32_t kCollapsedWhitespace = 0x0b;

struct CategoryClass {
    std::string_view name;
    Category category;
};

constexpr std::array kCategoryClasses = {
    CategoryClass{"\\p{N}", Category::Number},      CategoryClass{"\\p{L}", Category::Letter},
    CategoryClass{"\\p{P}", Category::Punctuation}, CategoryClass{"\\p{M}", Category::Mark},
    CategoryClass{"\\p{S}", Category::Symbol},      CategoryClass{"\\p{Lu}", Category::Letter},
    CategoryClass{"\\p{Ll}", Category::Letter},     CategoryClass{"\\p{Lt}", Category::Letter},
    CategoryClass{"\\p{Lm}", Category::Letter},     CategoryClass{"\\p{Lo}", Category::Letter},
};

uint32_t collapsed_unit(Category c) {
    switch (c) {
        case Category::Number:
            return 0xd1;
        case Category::Letter:
            return 0xd2;
        case Category::Punctuation:
            return 0xd3;
        case Category::Mark:
            return 0xd4;
        case Category::Symbol:
            return 0xd5;
        default:
            return kCollapsedOther;
    }
}

// ASCII members of each category, as class contents.
std::string_view ascii_members(Category c) {
    switch (c) {
        case Category::Number:
            return "0-9";
        case Category::Letter:
            return "A-Za-z";
        case Category::Punctuation:
            return "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}";
        case Category::Symbol:
            return "\\$\\+<->\\^`\\|\\~";
        default:
            return "";
    }
}

bool uses_categories(std::string_view regex) {
    for (const auto& c : kCategoryClasses) {
        if (regex.find(c.name) != std::string_view::npos) return true;
    }
    return false;
}

// Rewrites \p{..} into classes over collapsed units (the regex must be ASCII).
std::u32string collapse_regex(std::string_view regex) {
    std::u32string out;
    bool inside = false;
    for (size_t i = 0; i < regex.size(); ++i) {
        const char ch = regex[i];
        if (static_cast<unsigned char>(ch) >= 0x80) {
            throw Error("pre-tokenizer regex mixes Unicode categories with non-ASCII characters");
        }
        if (ch == '[' && (i == 0 || regex[i - 1] != '\\')) {
            out += U'[';
            inside = true;
            continue;
        }
        if (inside && ch == ']' && regex[i - 1] != '\\') {
            out += U']';
            inside = false;
            continue;
        }
        if (ch == '\\' && i + 3 < regex.size() && regex[i + 1] == 'p' && regex[i + 2] == '{') {
            const size_t close = regex.find('}', i + 3);
            if (close != std::string_view::npos && close <= i + 10) {
                const std::string_view name = regex.substr(i, close - i + 1);
                bool replaced = false;
                for (const auto& c : kCategoryClasses) {
                    if (c.name != name) continue;
                    if (!inside) out += U'[';
                    out += static_cast<char32_t>(collapsed_unit(c.category));
                    for (char a : ascii_members(c.category)) out += static_cast<char32_t>(a);
                    if (!inside) out += U']';
                    replaced = true;
                    break;
                }
                if (replaced) {
                    i = close;
                    continue;
                }
            }
        }
        out += static_cast<char32_t>(ch);
    }
    return out;
}

std::u32string codepoint_regex(std::string_view regex) {
    std::u32string out;
    for (uint32_t cp : unicode::decode(regex)) out += static_cast<char32_t>(cp);
    return out;
}

struct Compiled {
    pcre2_code* code = nullptr;
    bool collapsed = false;
};

}  // namespace

struct RegexSplitter::Impl {
    std::vector<Compiled> regexes;
    bool need_collapse = false;

    ~Impl() {
        for (auto& r : regexes) pcre2_code_free(r.code);
    }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& regexes)
    : impl_(std::make_unique<Impl>()) {
    for (const std::string& r : regexes) {
        Compiled c;
        c.collapsed = uses_categories(r);
        impl_->need_collapse = impl_->need_collapse || c.collapsed;
        const std::u32string pattern = c.collapsed ? collapse_regex(r) : codepoint_regex(r);
        int err = 0;
        PCRE2_SIZE err_offset = 0;
        c.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                               PCRE2_DOLLAR_ENDONLY, &err, &err_offset, nullptr);
        if (c.code == nullptr) {
            std::array<PCRE2_UCHAR, 256> msg{};
            pcre2_get_error_message(err, msg.data(), msg.size());
            std::string text;
            for (PCRE2_UCHAR u : msg) {
                if (u == 0) break;
                text += static_cast<char>(u < 128 ? u : '?');
            }
            std::string msg_text = "pre-tokenizer regex '";
            msg_text.append(r).append("' does not compile at offset ");
            msg_text.append(std::to_string(err_offset)).append(": ").append(text);
            throw Error(msg_text);
        }
        pcre2_jit_compile(
            c.code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
        impl_->regexes.push_back(c);
    }
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

std::vector<std::string> RegexSplitter::split(std::string_view text, bool byte_encode) const {
    const std::vector<uint32_t> cps = unicode::decode(text);
    std::u32string collapsed, plain;
    if (impl_->need_collapse) collapsed.resize(cps.size());
    plain.resize(cps.size());
    for (size_t i = 0; i < cps.size(); ++i) {
        const uint32_t cp = cps[i];
        if (cp < 128) {
            plain[i] = cp;
            if (impl_->need_collapse) collapsed[i] = cp;
            continue;
        }
        const unicode::CodepointInfo ci = unicode::info(cp);
        plain[i] = ci.whitespace ? kCollapsedWhitespace : cp;
        if (impl_->need_collapse)
            collapsed[i] = ci.whitespace ? kCollapsedWhitespace : collapsed_unit(ci.category);
    }

    std::vector<size_t> offsets = {cps.size()};
    pcre2_match_data* md = nullptr;
    for (const Compiled& r : impl_->regexes) {
        if (md != nullptr) pcre2_match_data_free(md);
        md = pcre2_match_data_create_from_pattern(r.code, nullptr);
        const std::u32string& subject_all = r.collapsed ? collapsed : plain;
        std::vector<size_t> next;
        next.reserve(offsets.size());
        size_t start = 0;
        for (size_t len : offsets) {
            // Each piece is matched on its own: lookarounds and $ see only the piece.
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(subject_all.data() + start);
            size_t pos = 0, prev = 0;
            while (pos < len) {
                const int rc = pcre2_match(r.code, subject, len, pos, 0, md, nullptr);
                if (rc < 0) break;
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
                const size_t m0 = ov[0], m1 = ov[1];
                if (m0 > prev) next.push_back(m0 - prev);
                if (m1 > m0) next.push_back(m1 - m0);
                prev = m1;
                pos = m1 > m0 ? m1 : m1 + 1;  // never loop on an empty match
            }
            if (prev < len) next.push_back(len - prev);
            start += len;
        }
        offsets = std::move(next);
    }
    if (md != nullptr) pcre2_match_data_free(md);

    std::vector<std::string> words;
    words.reserve(offsets.size());
    size_t start = 0;
    for (size_t len : offsets) {
        std::string w;
        if (byte_encode) {
            std::string raw = unicode::encode(cps, start, start + len);
            for (char c : raw) w += unicode::byte_to_utf8(static_cast<uint8_t>(c));
        } else {
            w = unicode::encode(cps, start, start + len);
        }
        words.push_back(std::move(w));
        start += len;
    }
    return words;
}

}  // namespace bitnet
