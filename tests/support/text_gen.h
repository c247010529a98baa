// Seeded generator of adversarial tokenizer inputs: mixed scripts, emoji with skin-tone
// modifiers and ZWJ sequences, combining marks, digit runs, whitespace runs with tabs and CRLF,
// code, apostrophe contractions and special-token look-alikes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::test {

std::vector<std::string> generate_texts(uint32_t seed, size_t count);

}  // namespace bitnet::test
