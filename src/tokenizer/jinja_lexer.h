// Splits template source into tokens the way Jinja2's lexer does in the environment Hugging
// Face uses (trim_blocks, lstrip_blocks, keep_trailing_newline=False): newlines normalised to
// "\n", one trailing newline dropped, whitespace control with '-' and '+', {% raw %} blocks and
// {# comments #} resolved here, strings unescaped like Python string literals.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::jinja {

enum class TokenType : uint8_t {
    Data,        // literal template text
    VarBegin,    // {{
    VarEnd,      // }}
    BlockBegin,  // {%
    BlockEnd,    // %}
    Name,
    String,
    Int,
    Float,
    Op,  // operator or punctuation; text holds it
    Eof,
};

struct Token {
    TokenType type = TokenType::Eof;
    std::string text;  // Data, Name, String (unescaped), Op
    int64_t int_value = 0;
    double float_value = 0.0;
    int line = 1;
    int col = 1;
};

// Throws Error naming the problem and its line:column.
std::vector<Token> tokenize(std::string_view source);

// "line L:C" for messages.
std::string where(int line, int col);

}  // namespace bitnet::jinja
