#include "tokenizer/jinja_string.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "bitnet/error.h"

namespace bitnet::jinja {

namespace {

constexpr uint32_t kReplacement = 0xFFFD;

bool is_cont(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

// One code point starting at `pos`; advances pos. Invalid bytes decode to U+FFFD one at a time.
uint32_t decode_at(std::string_view s, size_t& pos) {
    const auto c0 = static_cast<unsigned char>(s[pos]);
    if (c0 < 0x80) {
        ++pos;
        return c0;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c0 & 0xE0) == 0xC0) {
        n = 2;
        cp = c0 & 0x1F;
    } else if ((c0 & 0xF0) == 0xE0) {
        n = 3;
        cp = c0 & 0x0F;
    } else if ((c0 & 0xF8) == 0xF0) {
        n = 4;
        cp = c0 & 0x07;
    } else {
        ++pos;
        return kReplacement;
    }
    if (pos + n > s.size()) {
        ++pos;
        return kReplacement;
    }
    for (size_t k = 1; k < n; ++k) {
        const auto c = static_cast<unsigned char>(s[pos + k]);
        if (!is_cont(c)) {
            ++pos;
            return kReplacement;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    pos += n;
    return cp > 0x10FFFF ? kReplacement : cp;
}

icu::UnicodeString to_icu(std::string_view s) {
    return icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
}

std::string from_icu(const icu::UnicodeString& u) {
    std::string out;
    u.toUTF8String(out);
    return out;
}

bool is_cased(uint32_t cp) {
    return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_CASED);
}

std::string upper_cp(uint32_t cp) {
    std::string one;
    append_cp(one, cp);
    return py_upper(one);
}

std::string lower_cp(uint32_t cp) {
    std::string one;
    append_cp(one, cp);
    return py_lower(one);
}

std::vector<uint32_t> strip_set(const std::optional<std::string>& chars) {
    return chars ? to_cps(*chars) : std::vector<uint32_t>{};
}

bool printable(uint32_t cp) {
    if (cp == ' ') return true;
    switch (u_charType(static_cast<UChar32>(cp))) {
        case U_CONTROL_CHAR:
        case U_FORMAT_CHAR:
        case U_SURROGATE:
        case U_PRIVATE_USE_CHAR:
        case U_UNASSIGNED:
        case U_LINE_SEPARATOR:
        case U_PARAGRAPH_SEPARATOR:
        case U_SPACE_SEPARATOR:
            return false;
        default:
            return true;
    }
}

template <typename Pred>
bool all_of_nonempty(std::string_view s, Pred pred) {
    const auto cps = to_cps(s);
    return !cps.empty() && std::all_of(cps.begin(), cps.end(), pred);
}

std::string strip_py_ws(std::string_view s) {
    return py_strip(s, std::nullopt, StripMode::Both);
}

}  // namespace

std::vector<uint32_t> to_cps(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) out.push_back(decode_at(s, pos));
    return out;
}

void append_cp(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string from_cps(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
    std::string out;
    for (size_t k = begin; k < end && k < cps.size(); ++k) append_cp(out, cps[k]);
    return out;
}

int64_t cp_length(std::string_view s) {
    int64_t n = 0;
    size_t pos = 0;
    while (pos < s.size()) {
        decode_at(s, pos);
        ++n;
    }
    return n;
}

bool py_isspace(uint32_t cp) {
    return (cp >= 0x1C && cp <= 0x1F) || u_isUWhiteSpace(static_cast<UChar32>(cp));
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, StripMode mode) {
    const auto cps = to_cps(s);
    const auto set = strip_set(chars);
    auto strip_it = [&](uint32_t cp) {
        return chars ? std::find(set.begin(), set.end(), cp) != set.end() : py_isspace(cp);
    };
    size_t b = 0;
    size_t e = cps.size();
    if (mode != StripMode::Right) {
        while (b < e && strip_it(cps[b])) ++b;
    }
    if (mode != StripMode::Left) {
        while (e > b && strip_it(cps[e - 1])) --e;
    }
    return from_cps(cps, b, e);
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right) {
    std::vector<std::string> out;
    if (maxsplit < 0) maxsplit = INT64_MAX;
    if (sep) {
        if (sep->empty()) throw Error("str.split: empty separator");
        if (!from_right) {
            size_t start = 0;
            while (maxsplit-- > 0) {
                const size_t at = s.find(*sep, start);
                if (at == std::string_view::npos) break;
                out.emplace_back(s.substr(start, at - start));
                start = at + sep->size();
            }
            out.emplace_back(s.substr(start));
            return out;
        }
        size_t end = s.size();
        while (maxsplit-- > 0 && end >= sep->size()) {
            const size_t at = s.rfind(*sep, end - sep->size());
            if (at == std::string_view::npos) break;
            out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
            end = at;
        }
        out.emplace_back(s.substr(0, end));
        std::reverse(out.begin(), out.end());
        return out;
    }
    auto cps = to_cps(s);
    if (from_right) std::reverse(cps.begin(), cps.end());
    size_t k = 0;
    const size_t n = cps.size();
    while (true) {
        while (k < n && py_isspace(cps[k])) ++k;
        if (k == n) break;
        if (maxsplit-- <= 0) {
            size_t e = n;
            while (e > k && py_isspace(cps[e - 1])) --e;
            out.push_back(from_cps(cps, k, e));
            break;
        }
        const size_t b = k;
        while (k < n && !py_isspace(cps[k])) ++k;
        out.push_back(from_cps(cps, b, k));
    }
    if (from_right) {
        for (auto& piece : out) {
            auto pc = to_cps(piece);
            std::reverse(pc.begin(), pc.end());
            piece = from_cps(pc);
        }
        std::reverse(out.begin(), out.end());
    }
    return out;
}

std::vector<std::string> py_splitlines(std::string_view s) {
    const auto cps = to_cps(s);
    std::vector<std::string> out;
    size_t b = 0;
    size_t k = 0;
    while (k < cps.size()) {
        const uint32_t c = cps[k];
        const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C ||
                         c == 0x1D || c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!brk) {
            ++k;
            continue;
        }
        out.push_back(from_cps(cps, b, k));
        k += (c == '\r' && k + 1 < cps.size() && cps[k + 1] == '\n') ? 2 : 1;
        b = k;
    }
    if (b < cps.size()) out.push_back(from_cps(cps, b, cps.size()));
    return out;
}

std::string py_replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                       int64_t count) {
    if (count < 0) count = INT64_MAX;
    std::string out;
    if (old_text.empty()) {
        const auto cps = to_cps(s);
        for (size_t k = 0; k <= cps.size(); ++k) {
            if (count > 0) {
                out += new_text;
                --count;
            }
            if (k < cps.size()) append_cp(out, cps[k]);
        }
        return out;
    }
    size_t start = 0;
    while (count > 0) {
        const size_t at = s.find(old_text, start);
        if (at == std::string_view::npos) break;
        out.append(s.substr(start, at - start));
        out.append(new_text);
        start = at + old_text.size();
        --count;
    }
    out.append(s.substr(start));
    return out;
}

int64_t py_find(std::string_view s, std::string_view sub, bool from_right) {
    const size_t at = from_right ? s.rfind(sub) : s.find(sub);
    if (at == std::string_view::npos) return -1;
    return cp_length(s.substr(0, at));
}

int64_t py_count(std::string_view s, std::string_view sub) {
    if (sub.empty()) return cp_length(s) + 1;
    int64_t n = 0;
    size_t start = 0;
    while (true) {
        const size_t at = s.find(sub, start);
        if (at == std::string_view::npos) return n;
        ++n;
        start = at + sub.size();
    }
}

std::string py_upper(std::string_view s) {
    if (std::all_of(s.begin(), s.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
        std::string out(s);
        for (char& c : out) {
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
        }
        return out;
    }
    return from_icu(to_icu(s).toUpper(icu::Locale::getRoot()));
}

std::string py_lower(std::string_view s) {
    if (std::all_of(s.begin(), s.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
        std::string out(s);
        for (char& c : out) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        }
        return out;
    }
    return from_icu(to_icu(s).toLower(icu::Locale::getRoot()));
}

std::string py_capitalize(std::string_view s) {
    const auto cps = to_cps(s);
    if (cps.empty()) return {};
    std::string out;
    append_cp(out, static_cast<uint32_t>(u_totitle(static_cast<UChar32>(cps[0]))));
    return out + py_lower(from_cps(cps, 1, cps.size()));
}

std::string py_title(std::string_view s) {
    std::string out;
    bool prev_cased = false;
    for (const uint32_t cp : to_cps(s)) {
        if (prev_cased) {
            out += lower_cp(cp);
        } else {
            append_cp(out, static_cast<uint32_t>(u_totitle(static_cast<UChar32>(cp))));
        }
        prev_cased = is_cased(cp);
    }
    return out;
}

// Jinja2's do_title: split on runs of [-\s({[<], then item[0].upper() + item[1:].lower().
std::string jinja_title(std::string_view s) {
    const auto cps = to_cps(s);
    auto is_sep = [](uint32_t c) {
        return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
    };
    std::string out;
    size_t k = 0;
    while (k < cps.size()) {
        const size_t b = k;
        const bool sep = is_sep(cps[k]);
        while (k < cps.size() && is_sep(cps[k]) == sep) ++k;
        out += upper_cp(cps[b]);
        out += py_lower(from_cps(cps, b + 1, k));
    }
    return out;
}

bool py_isupper(std::string_view s) {
    bool any = false;
    for (const uint32_t cp : to_cps(s)) {
        if (u_islower(static_cast<UChar32>(cp)) || u_istitle(static_cast<UChar32>(cp)))
            return false;
        if (u_isupper(static_cast<UChar32>(cp))) any = true;
    }
    return any;
}

bool py_islower(std::string_view s) {
    bool any = false;
    for (const uint32_t cp : to_cps(s)) {
        if (u_isupper(static_cast<UChar32>(cp)) || u_istitle(static_cast<UChar32>(cp)))
            return false;
        if (u_islower(static_cast<UChar32>(cp))) any = true;
    }
    return any;
}

bool py_isalpha(std::string_view s) {
    return all_of_nonempty(s, [](uint32_t c) { return u_isalpha(static_cast<UChar32>(c)) != 0; });
}

bool py_isdigit(std::string_view s) {
    return all_of_nonempty(s, [](uint32_t c) {
        const int t = u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_NUMERIC_TYPE);
        return t == U_NT_DECIMAL || t == U_NT_DIGIT;
    });
}

bool py_isalnum(std::string_view s) {
    return all_of_nonempty(s, [](uint32_t c) {
        return u_isalpha(static_cast<UChar32>(c)) != 0 ||
               u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_NUMERIC_TYPE) != U_NT_NONE;
    });
}

bool py_isspace_str(std::string_view s) {
    return all_of_nonempty(s, py_isspace);
}

std::string py_repr_str(std::string_view s) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const bool has_double = s.find('"') != std::string_view::npos;
    const char quote = (has_single && !has_double) ? '"' : '\'';
    std::string out(1, quote);
    char buf[16];
    for (const uint32_t cp : to_cps(s)) {
        if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(cp));
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && !printable(cp))) {
            if (cp < 0x100) {
                std::snprintf(buf, sizeof buf, "\\x%02x", cp);
            } else if (cp < 0x10000) {
                std::snprintf(buf, sizeof buf, "\\u%04x", cp);
            } else {
                std::snprintf(buf, sizeof buf, "\\U%08x", cp);
            }
            out += buf;
        } else {
            append_cp(out, cp);
        }
    }
    out.push_back(quote);
    return out;
}

std::string py_float_repr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
    if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    const std::string sci(buf, res.ptr);
    std::string out;
    size_t k = 0;
    if (sci[0] == '-') {
        out.push_back('-');
        k = 1;
    }
    const size_t e_at = sci.find('e');
    std::string digits;
    for (size_t j = k; j < e_at; ++j) {
        if (sci[j] != '.') digits.push_back(sci[j]);
    }
    const int exp10 = std::stoi(sci.substr(e_at + 1));
    const int decpt = exp10 + 1;
    const int nd = static_cast<int>(digits.size());
    if (decpt <= -4 || decpt > 16) {
        out += digits.substr(0, 1);
        if (nd > 1) out += "." + digits.substr(1);
        std::snprintf(buf, sizeof buf, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
        return out + buf;
    }
    if (decpt <= 0) return out + "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    if (decpt >= nd) return out + digits + std::string(static_cast<size_t>(decpt - nd), '0') + ".0";
    return out + digits.substr(0, static_cast<size_t>(decpt)) + "." +
           digits.substr(static_cast<size_t>(decpt));
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&#34;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

namespace {

// Drops '_' between digits as Python's numeric literals allow; nullopt if misplaced.
std::optional<std::string> clean_number(std::string_view s) {
    std::string t = strip_py_ws(s);
    std::string out;
    for (size_t k = 0; k < t.size(); ++k) {
        if (t[k] == '_') {
            const bool ok = k > 0 && k + 1 < t.size() &&
                            std::isdigit(static_cast<unsigned char>(t[k - 1])) &&
                            std::isdigit(static_cast<unsigned char>(t[k + 1]));
            if (!ok) return std::nullopt;
            continue;
        }
        out.push_back(t[k]);
    }
    return out;
}

}  // namespace

std::optional<int64_t> py_parse_int(std::string_view s) {
    const auto cleaned = clean_number(s);
    if (!cleaned || cleaned->empty()) return std::nullopt;
    const std::string& t = *cleaned;
    const size_t k = t[0] == '+' || t[0] == '-' ? 1 : 0;
    if (k == t.size()) return std::nullopt;
    for (size_t j = k; j < t.size(); ++j) {
        if (!std::isdigit(static_cast<unsigned char>(t[j]))) return std::nullopt;
    }
    int64_t v = 0;
    const size_t skip = t[0] == '+' ? 1 : 0;
    const auto res = std::from_chars(t.data() + skip, t.data() + t.size(), v);
    if (res.ec != std::errc()) throw NotSupported("integer out of 64-bit range: " + t);
    return v;
}

std::optional<double> py_parse_float(std::string_view s) {
    auto t = clean_number(s);
    if (!t || t->empty()) return std::nullopt;
    std::string low = py_lower(*t);
    const bool neg = low[0] == '-';
    if (low[0] == '+' || low[0] == '-') low.erase(0, 1);
    if (low == "inf" || low == "infinity") return neg ? -HUGE_VAL : HUGE_VAL;
    if (low == "nan") return std::nan("");
    for (const char c : low) {
        if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != '+' &&
            c != '-') {
            return std::nullopt;
        }
    }
    double v = 0;
    const auto res = std::from_chars(low.data(), low.data() + low.size(), v);
    if (res.ec != std::errc() || res.ptr != low.data() + low.size()) return std::nullopt;
    return neg ? -v : v;
}

}  // namespace bitnet::jinja
