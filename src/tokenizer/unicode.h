// Unicode facts the tokenizers need, from ICU (categories, White_Space, lowercase, NFD), and
// UTF-8 handling with llama.cpp's exact conventions (invalid bytes become U+FFFD one byte at a
// time; lead bytes are trusted the way llama.cpp trusts them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::unicode {

// General category groups, as the pre-tokenizer regexes use them (\p{L}, \p{N}, ...).
enum class Category : uint8_t {
    Other,
    Letter,
    Number,
    Punctuation,
    Symbol,
    Mark,
    Separator,
    Control
};

struct CodepointInfo {
    Category category = Category::Other;
    bool whitespace = false;  // Unicode White_Space
};

CodepointInfo info(uint32_t cp);
uint32_t to_lower(uint32_t cp);   // simple case mapping
uint32_t nfd_first(uint32_t cp);  // first code point of the NFD decomposition

// Byte length a UTF-8 lead byte announces (1 for continuation and ASCII bytes).
size_t utf8_length(unsigned char lead);
// Decodes one code point at `offset`; returns false (and leaves offset) on an invalid sequence.
bool decode_one(std::string_view s, size_t& offset, uint32_t& cp);
// All code points; invalid sequences become U+FFFD, one byte at a time.
std::vector<uint32_t> decode(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);
std::string encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);

// GPT-2's reversible byte <-> printable code point mapping.
const std::string& byte_to_utf8(uint8_t byte);
// -1 when the code point is not one of the 256 mapped ones.
int utf8_to_byte(uint32_t cp);

// Length of the longest prefix of `s` that is complete UTF-8 (a trailing incomplete sequence
// is left out; invalid bytes count as complete so that they are never held forever).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace bitnet::unicode
