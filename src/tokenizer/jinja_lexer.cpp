#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <tuple>

#include "bitnet/error.h"
#include "tokenizer/jinja_string.h"

namespace bitnet::jinja {

namespace {

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || is_digit(c);
}

std::string normalize(std::string_view src) {
    std::string out;
    out.reserve(src.size());
    for (size_t k = 0; k < src.size(); ++k) {
        if (src[k] == '\r') {
            out.push_back('\n');
            if (k + 1 < src.size() && src[k + 1] == '\n') ++k;
        } else {
            out.push_back(src[k]);
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// Python's str.rstrip() on the text before a '-' tag.
std::string rstrip_py(const std::string& s) {
    return py_strip(s, std::nullopt, StripMode::Right);
}

class Lexer {
  public:
    explicit Lexer(std::string src) : src_(std::move(src)) {
        line_starts_.push_back(0);
        for (size_t k = 0; k < src_.size(); ++k) {
            if (src_[k] == '\n') line_starts_.push_back(k + 1);
        }
    }
    std::vector<Token> run();

  private:
    std::string src_;
    size_t pos_ = 0;
    bool line_starting_ = true;
    std::vector<Token> out_;
    std::vector<char> balance_;
    std::vector<size_t> line_starts_;

    [[noreturn]] void fail(size_t at, const std::string& msg) const {
        const auto [line, col] = line_col(at);
        throw Error("chat template syntax error: " + msg + " at " + where(line, col));
    }
    std::pair<int, int> line_col(size_t at) const {
        const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
        const auto line = static_cast<int>(it - line_starts_.begin());
        return {line, static_cast<int>(at - *(it - 1)) + 1};
    }
    bool at(size_t p, std::string_view s) const { return src_.compare(p, s.size(), s) == 0; }
    size_t skip_ws(size_t p) const {
        while (p < src_.size() && is_ws(src_[p])) ++p;
        return p;
    }
    size_t skip_py_ws(size_t p) const;
    void push(TokenType type, size_t at_pos, std::string text = {}) {
        Token t;
        t.type = type;
        t.text = std::move(text);
        std::tie(t.line, t.col) = line_col(at_pos);
        out_.push_back(std::move(t));
    }
    void emit_data(std::string text, char sign, bool is_variable, size_t at_pos);
    size_t match_raw_begin(size_t p) const;
    void lex_raw(size_t p);
    void lex_comment(size_t p);
    void lex_tag(size_t p, bool block);
    // Returns the end of the closing marker at p, or npos.
    size_t match_end(size_t p, bool block) const;
    size_t lex_number(size_t p);
    size_t lex_string(size_t p);
};

size_t Lexer::skip_py_ws(size_t p) const {
    while (p < src_.size()) {
        size_t q = p;
        const auto cps =
            to_cps(std::string_view(src_).substr(p, std::min<size_t>(4, src_.size() - p)));
        if (cps.empty() || !py_isspace(cps[0])) break;
        std::string one;
        append_cp(one, cps[0]);
        q += one.size();
        p = q;
    }
    return p;
}

void Lexer::emit_data(std::string text, char sign, bool is_variable, size_t at_pos) {
    if (sign == '-') {
        text = rstrip_py(text);
    } else if (sign != '+' && !is_variable) {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting_) {
            bool only_blank = true;
            for (size_t k = l_pos; k < text.size(); ++k) {
                if (text[k] != ' ' && text[k] != '\t') only_blank = false;
            }
            if (only_blank) text.resize(l_pos);
        }
    }
    if (!text.empty()) push(TokenType::Data, at_pos, std::move(text));
}

// {%(-|+|)\s*raw\s*(-%}\s*|%}) at p: the position after it, or npos.
size_t Lexer::match_raw_begin(size_t p) const {
    size_t q = p + 2;
    if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
    q = skip_py_ws(q);
    if (!at(q, "raw")) return std::string::npos;
    q = skip_py_ws(q + 3);
    if (at(q, "-%}")) return skip_py_ws(q + 3);
    if (at(q, "%}")) return q + 2;
    return std::string::npos;
}

void Lexer::lex_raw(size_t p) {
    // Find {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)
    size_t search = p;
    while (true) {
        const size_t open = src_.find("{%", search);
        if (open == std::string::npos) fail(p, "missing end of raw directive");
        size_t q = open + 2;
        char sign = 0;
        if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
        q = skip_py_ws(q);
        if (!at(q, "endraw")) {
            search = open + 2;
            continue;
        }
        q = skip_py_ws(q + 6);
        size_t end = std::string::npos;
        if (at(q, "+%}")) {
            end = q + 3;
        } else if (at(q, "-%}")) {
            end = skip_py_ws(q + 3);
        } else if (at(q, "%}")) {
            end = q + 2;
            if (end < src_.size() && src_[end] == '\n') ++end;
        }
        if (end == std::string::npos) {
            search = open + 2;
            continue;
        }
        emit_data(src_.substr(p, open - p), sign, false, p);
        line_starting_ = src_[end - 1] == '\n';
        pos_ = end;
        return;
    }
}

void Lexer::lex_comment(size_t p) {
    const size_t close = src_.find("#}", p);
    if (close == std::string::npos) fail(p, "missing end of comment tag");
    size_t end = close + 2;
    // (.*?) is lazy: a '+' or '-' right before the earliest "#}" belongs to the marker.
    if (close > p && src_[close - 1] == '-') {
        end = skip_py_ws(end);
    } else if (close > p && src_[close - 1] == '+') {
        // kept as is
    } else if (end < src_.size() && src_[end] == '\n') {
        ++end;
    }
    line_starting_ = src_[end - 1] == '\n';
    pos_ = end;
}

size_t Lexer::match_end(size_t p, bool block) const {
    if (!balance_.empty()) return std::string::npos;
    if (block) {
        if (at(p, "+%}")) return p + 3;
        if (at(p, "-%}")) return skip_py_ws(p + 3);
        if (at(p, "%}")) return (p + 2 < src_.size() && src_[p + 2] == '\n') ? p + 3 : p + 2;
        return std::string::npos;
    }
    if (at(p, "-}}")) return skip_py_ws(p + 3);
    if (at(p, "}}")) return p + 2;
    return std::string::npos;
}

size_t Lexer::lex_number(size_t p) {
    size_t q = p;
    auto digits = [&](size_t r) {
        const size_t b = r;
        while (r < src_.size() &&
               (is_digit(src_[r]) ||
                (src_[r] == '_' && r > b && r + 1 < src_.size() && is_digit(src_[r + 1])))) {
            ++r;
        }
        return r;
    };
    q = digits(q);
    bool is_float = false;
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot && q + 1 < src_.size() && src_[q] == '.' && is_digit(src_[q + 1])) {
        q = digits(q + 1);
        is_float = true;
    }
    if (!after_dot && q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (r < src_.size() && is_digit(src_[r])) {
            q = digits(r);
            is_float = true;
        }
    }
    std::string text;
    for (size_t k = p; k < q; ++k) {
        if (src_[k] != '_') text.push_back(src_[k]);
    }
    if (!is_float && q < src_.size() && (src_[q] == 'x' || src_[q] == 'o' || src_[q] == 'b') &&
        text == "0") {
        fail(p, "binary, octal and hexadecimal literals are not supported");
    }
    push(is_float ? TokenType::Float : TokenType::Int, p, text);
    Token& t = out_.back();
    if (is_float) {
        const auto r = std::from_chars(text.data(), text.data() + text.size(), t.float_value);
        if (r.ec != std::errc()) fail(p, "bad float literal");
    } else {
        const auto r = std::from_chars(text.data(), text.data() + text.size(), t.int_value);
        if (r.ec != std::errc()) fail(p, "integer literal out of 64-bit range");
    }
    return q;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t Lexer::lex_string(size_t p) {
    const char quote = src_[p];
    std::string value;
    size_t q = p + 1;
    while (true) {
        if (q >= src_.size()) fail(p, "unterminated string");
        const char c = src_[q];
        if (c == quote) break;
        if (c != '\\') {
            value.push_back(c);
            ++q;
            continue;
        }
        if (q + 1 >= src_.size()) fail(p, "unterminated string");
        const char e = src_[q + 1];
        q += 2;
        static constexpr std::array<std::pair<char, char>, 10> kSimple = {{{'n', '\n'},
                                                                           {'t', '\t'},
                                                                           {'r', '\r'},
                                                                           {'\\', '\\'},
                                                                           {'\'', '\''},
                                                                           {'"', '"'},
                                                                           {'a', '\a'},
                                                                           {'b', '\b'},
                                                                           {'f', '\f'},
                                                                           {'v', '\v'}}};
        bool done = false;
        for (const auto& [k, v] : kSimple) {
            if (e == k) {
                value.push_back(v);
                done = true;
            }
        }
        if (done) continue;
        if (e == '\n') continue;
        if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k) {
                v = v * 8 + static_cast<uint32_t>(src_[q++] - '0');
            }
            append_cp(value, v);
            continue;
        }
        const int n = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (n == 0) {
            if (e == 'N') fail(q - 2, "\\N{...} escapes are not supported");
            value.push_back('\\');
            value.push_back(e);
            continue;
        }
        uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
            const int h = q < src_.size() ? hex_value(src_[q]) : -1;
            if (h < 0) fail(q, "truncated \\" + std::string(1, e) + " escape");
            v = v * 16 + static_cast<uint32_t>(h);
            ++q;
        }
        if (v > 0x10FFFF) fail(q, "illegal Unicode character in escape");
        append_cp(value, v);
    }
    push(TokenType::String, p, std::move(value));
    return q + 1;
}

void Lexer::lex_tag(size_t p, bool block) {
    static constexpr std::array<std::string_view, 6> kTwo = {"//", "**", "==", "!=", ">=", "<="};
    static constexpr std::string_view kOne = "+-/*%~[](){}><=.:|,;";
    while (true) {
        if (p >= src_.size())
            fail(p, block ? "unexpected end of template, expected '%}'"
                          : "unexpected end of template, expected '}}'");
        const size_t end = match_end(p, block);
        if (end != std::string::npos) {
            push(block ? TokenType::BlockEnd : TokenType::VarEnd, p);
            line_starting_ = src_[end - 1] == '\n';
            pos_ = end;
            return;
        }
        const char c = src_[p];
        if (is_ws(c)) {
            ++p;
            continue;
        }
        if (is_digit(c)) {
            p = lex_number(p);
            continue;
        }
        if (is_name_start(c)) {
            const size_t b = p;
            while (p < src_.size() && is_name_char(src_[p])) ++p;
            push(TokenType::Name, b, src_.substr(b, p - b));
            continue;
        }
        if (c == '\'' || c == '"') {
            p = lex_string(p);
            continue;
        }
        std::string_view op;
        for (const auto two : kTwo) {
            if (at(p, two)) op = two;
        }
        if (op.empty() && kOne.find(c) != std::string_view::npos)
            op = std::string_view(&src_[p], 1);
        if (op.empty()) fail(p, std::string("unexpected character '") + c + "'");
        if (op == "(" || op == "[" || op == "{") {
            if (balance_.size() > 1000) fail(p, "brackets nested too deeply");
            balance_.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
            if (balance_.empty()) fail(p, "unexpected '" + std::string(op) + "'");
            if (balance_.back() != op[0]) {
                fail(p, "unexpected '" + std::string(op) + "', expected '" +
                            std::string(1, balance_.back()) + "'");
            }
            balance_.pop_back();
        }
        push(TokenType::Op, p, std::string(op));
        p += op.size();
    }
}

std::vector<Token> Lexer::run() {
    while (pos_ < src_.size()) {
        size_t open = std::string::npos;
        for (size_t k = src_.find('{', pos_); k != std::string::npos; k = src_.find('{', k + 1)) {
            if (k + 1 < src_.size() &&
                (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) {
                open = k;
                break;
            }
        }
        if (open == std::string::npos) {
            push(TokenType::Data, pos_, src_.substr(pos_));
            break;
        }
        const char kind = src_[open + 1];
        const char sign = open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+')
                              ? src_[open + 2]
                              : 0;
        const size_t body = open + 2 + (sign != 0 ? 1 : 0);
        std::string text = src_.substr(pos_, open - pos_);
        const size_t text_pos = pos_;
        if (kind == '%') {
            const size_t raw_end = match_raw_begin(open);
            if (raw_end != std::string::npos) {
                emit_data(std::move(text), sign, false, text_pos);
                line_starting_ = src_[raw_end - 1] == '\n';
                lex_raw(raw_end);
                continue;
            }
        }
        emit_data(std::move(text), sign, kind == '{', text_pos);
        line_starting_ = false;
        if (kind == '#') {
            lex_comment(body);
            continue;
        }
        push(kind == '%' ? TokenType::BlockBegin : TokenType::VarBegin, open);
        balance_.clear();
        lex_tag(body, kind == '%');
    }
    push(TokenType::Eof, src_.size());
    return std::move(out_);
}

}  // namespace

std::string where(int line, int col) {
    return "line " + std::to_string(line) + ":" + std::to_string(col);
}

std::vector<Token> tokenize(std::string_view source) {
    return Lexer(normalize(source)).run();
}

}  // namespace bitnet::jinja
