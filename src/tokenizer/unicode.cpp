#include "tokenizer/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>
#include <mutex>

namespace bitnet::unicode {

namespace {

Category category_of(uint32_t cp) {
    if (cp > 0x10ffff) return Category::Other;
    switch (u_charType(static_cast<UChar32>(cp))) {
        case U_UPPERCASE_LETTER:
        case U_LOWERCASE_LETTER:
        case U_TITLECASE_LETTER:
        case U_MODIFIER_LETTER:
        case U_OTHER_LETTER:
            return Category::Letter;
        case U_DECIMAL_DIGIT_NUMBER:
        case U_LETTER_NUMBER:
        case U_OTHER_NUMBER:
            return Category::Number;
        case U_NON_SPACING_MARK:
        case U_ENCLOSING_MARK:
        case U_COMBINING_SPACING_MARK:
            return Category::Mark;
        case U_CONNECTOR_PUNCTUATION:
        case U_DASH_PUNCTUATION:
        case U_START_PUNCTUATION:
        case U_END_PUNCTUATION:
        case U_INITIAL_PUNCTUATION:
        case U_FINAL_PUNCTUATION:
        case U_OTHER_PUNCTUATION:
            return Category::Punctuation;
        case U_MATH_SYMBOL:
        case U_CURRENCY_SYMBOL:
        case U_MODIFIER_SYMBOL:
        case U_OTHER_SYMBOL:
            return Category::Symbol;
        case U_SPACE_SEPARATOR:
        case U_LINE_SEPARATOR:
        case U_PARAGRAPH_SEPARATOR:
            return Category::Separator;
        case U_CONTROL_CHAR:
        case U_FORMAT_CHAR:
        case U_PRIVATE_USE_CHAR:
        case U_SURROGATE:
            return Category::Control;
        default:
            return Category::Other;  // unassigned
    }
}

// Code points below 0x30000 cover every assigned character outside the supplementary
// private-use planes; one table lookup keeps tokenization fast.
constexpr uint32_t kTableSize = 0x30000;

struct Tables {
    std::vector<CodepointInfo> info;
    std::array<std::string, 256> byte_utf8;
    std::array<int16_t, 324> utf8_byte{};  // printable code point (< 324) -> byte, or -1
};

const Tables& tables() {
    static const Tables t = [] {
        Tables x;
        x.info.resize(kTableSize);
        for (uint32_t cp = 0; cp < kTableSize; ++cp) {
            x.info[cp] = {category_of(cp),
                          u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE) != 0};
        }
        x.utf8_byte.fill(-1);
        // Printable bytes map to themselves; the rest to 256, 257, ... in byte order.
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable =
                (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
            const int cp = printable ? b : next++;
            append_utf8(x.byte_utf8[static_cast<size_t>(b)], static_cast<uint32_t>(cp));
            x.utf8_byte[static_cast<size_t>(cp)] = static_cast<int16_t>(b);
        }
        return x;
    }();
    return t;
}

}  // namespace

CodepointInfo info(uint32_t cp) {
    if (cp < kTableSize) return tables().info[cp];
    return {category_of(cp), cp <= 0x10ffff && u_hasBinaryProperty(static_cast<UChar32>(cp),
                                                                   UCHAR_WHITE_SPACE) != 0};
}

uint32_t to_lower(uint32_t cp) {
    if (cp > 0x10ffff) return cp;
    return static_cast<uint32_t>(u_tolower(static_cast<UChar32>(cp)));
}

uint32_t nfd_first(uint32_t cp) {
    if (cp > 0x10ffff) return cp;
    static const icu::Normalizer2* nfd = [] {
        UErrorCode status = U_ZERO_ERROR;
        return icu::Normalizer2::getNFDInstance(status);
    }();
    icu::UnicodeString out;
    if (nfd == nullptr || !nfd->getDecomposition(static_cast<UChar32>(cp), out) || out.isEmpty())
        return cp;
    return static_cast<uint32_t>(out.char32At(0));
}

size_t utf8_length(unsigned char lead) {
    static constexpr size_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLookup[lead >> 4];
}

bool decode_one(std::string_view s, size_t& offset, uint32_t& cp) {
    auto at = [&](size_t i) { return static_cast<unsigned char>(s[offset + i]); };
    auto cont = [&](size_t i) { return offset + i < s.size() && (at(i) & 0xc0) == 0x80; };
    const unsigned char c = at(0);
    if ((c & 0x80) == 0) {
        cp = c;
        offset += 1;
        return true;
    }
    if ((c & 0x40) == 0) return false;
    if ((c & 0x20) == 0) {
        if (!cont(1)) return false;
        cp = ((c & 0x1fu) << 6) | (at(1) & 0x3fu);
        offset += 2;
        return true;
    }
    if ((c & 0x10) == 0) {
        if (!cont(1) || !cont(2)) return false;
        cp = ((c & 0x0fu) << 12) | ((at(1) & 0x3fu) << 6) | (at(2) & 0x3fu);
        offset += 3;
        return true;
    }
    if ((c & 0x08) == 0) {
        if (!cont(1) || !cont(2) || !cont(3)) return false;
        cp = ((c & 0x07u) << 18) | ((at(1) & 0x3fu) << 12) | ((at(2) & 0x3fu) << 6) |
             (at(3) & 0x3fu);
        offset += 4;
        return true;
    }
    return false;
}

std::vector<uint32_t> decode(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    size_t offset = 0;
    while (offset < s.size()) {
        uint32_t cp = 0;
        if (decode_one(s, offset, cp)) {
            out.push_back(cp);
        } else {
            out.push_back(0xfffd);
            ++offset;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp <= 0x7f) {
        out.push_back(static_cast<char>(cp));
    } else if (cp <= 0x7ff) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp <= 0xffff) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp <= 0x10ffff) {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        append_utf8(out, 0xfffd);  // beyond Unicode (only from malformed 4-byte input)
    }
}

std::string encode(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
    std::string out;
    out.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) append_utf8(out, cps[i]);
    return out;
}

const std::string& byte_to_utf8(uint8_t byte) {
    return tables().byte_utf8[byte];
}

int utf8_to_byte(uint32_t cp) {
    if (cp >= tables().utf8_byte.size()) return -1;
    return tables().utf8_byte[cp];
}

size_t complete_utf8_prefix(std::string_view s) {
    // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
    const size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking for its lead
        if ((c & 0xc0) == 0xc0) {
            const size_t need = (c & 0xe0) == 0xc0   ? 2
                                : (c & 0xf0) == 0xe0 ? 3
                                : (c & 0xf8) == 0xf0 ? 4
                                                     : 1;
            if (need > back) return n - back;
        }
        break;
    }
    return n;
}

}  // namespace bitnet::unicode
