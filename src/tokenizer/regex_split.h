// Pre-tokenizer regex splitting with llama.cpp's semantics.
//
// A pre-tokenizer is a list of regexes applied in turn: each splits every current piece into
// its matches and the text between them. Regexes that use Unicode categories (\p{L}, \p{N},
// \p{P}, \p{S}, \p{M}) run over a "collapsed" text in which each code point above 127 is
// replaced by one unit naming its category (non-ASCII White_Space becomes \v), exactly as
// llama.cpp does it; the others run over the code points themselves (non-ASCII whitespace also
// becomes \v). Matching is PCRE2 (32-bit code units, JIT-compiled), with ECMAScript-compatible
// settings ($ matches only at the very end).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

class RegexSplitter {
  public:
    // Throws Error when a regex does not compile.
    explicit RegexSplitter(const std::vector<std::string>& regexes);
    ~RegexSplitter();
    RegexSplitter(RegexSplitter&&) noexcept;
    RegexSplitter& operator=(RegexSplitter&&) noexcept;

    // Splits text into pieces (UTF-8; invalid bytes become U+FFFD). With byte_encode each piece
    // is mapped through GPT-2's byte-to-printable table.
    std::vector<std::string> split(std::string_view text, bool byte_encode) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace bitnet
