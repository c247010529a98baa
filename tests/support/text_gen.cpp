#include "support/text_gen.h"

#include <random>

namespace bitnet::test {

namespace {

void append_cp(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xc0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xe0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        s += static_cast<char>(0xf0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        s += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

// Code point ranges of long-established scripts and symbols (assigned by Unicode 13), so that
// every Unicode library version agrees on their categories.
struct Range {
    uint32_t lo, hi;
};
const Range kScripts[] = {
    {0x41, 0x5a},       {0x61, 0x7a},       {0xc0, 0x24f},    {0x370, 0x3ff},   {0x400, 0x4ff},
    {0x531, 0x556},     {0x5d0, 0x5ea},     {0x620, 0x64a},   {0x660, 0x669},   {0x905, 0x939},
    {0x966, 0x96f},     {0xe01, 0xe30},     {0x10a0, 0x10ff}, {0x1100, 0x1112}, {0x3041, 0x3096},
    {0x30a1, 0x30fa},   {0x4e00, 0x9fa5},   {0xac00, 0xd7a3}, {0xff01, 0xff5e}, {0x2000, 0x206f},
    {0x2190, 0x21ff},   {0x2200, 0x22ff},   {0x2460, 0x24ff}, {0x2500, 0x257f}, {0x3000, 0x303f},
    {0x1d400, 0x1d4ff}, {0x20000, 0x2a6d6}, {0xa0, 0xbf},     {0x300, 0x36f},   {0x1f300, 0x1f5ff},
};

const char* const kFragments[] = {
    "Hello",
    " world",
    "The quick brown fox",
    " jumps",
    "It's",
    " they're",
    " I'LL",
    " we've",
    " 'd",
    " don't",
    "'S",
    "ſ",
    "İstanbul",
    "naïve",
    "café",
    "Äpfel",
    "über",
    "Straße",
    "ﬁnance",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "Привет мир",
    "Γειά σου",
    "مرحبا",
    "שלום",
    "नमस्ते",
    "สวัสดี",
    "你好，世界。",
    "こんにちは",
    "안녕하세요",
    "🦙",
    "👍🏽",
    "👩‍💻",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "❤️",
    "🇫🇷",
    "e\xcc\x81",
    "a\xcc\x8a\xcc\xa3",
    "\xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7",
    "1234567890",
    "3.14159",
    "1,000,000",
    "٣٤٥",
    "२०२४",
    "Ⅻ",
    "½",
    "²³",
    "    ",
    "\t\t",
    "\r\n",
    "\n\n\n",
    " \n ",
    "\t \r\n\t",
    "\u00a0",
    "\u3000",
    "\u2009",
    "\u2028",
    "\x0b",
    "\x0c",
    "int main() { return 0; }",
    "if (x != y) {\n    y++;\n}",
    "def f(x):\n\treturn x**2",
    "<div class=\"a\">",
    "a->b",
    "x += 1;",
    "$HOME/.config",
    "#include <stdio.h>",
    "// comment",
    "SELECT * FROM t;",
    "```python",
    "<|eot_id|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<s>",
    "</s>",
    "<unk>",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "<|im_start|>",
    "<|im_end|>",
    "<|eot",
    "eot_id|>",
    "<<|eot_id|>>",
    "<|start_header_id|>",
    "<0x0A>",
    "▁",
    "Ġ",
    "<pad>",
    "<|assistant|>",
    "<|user|>",
    "<|end|>",
    "<mask>",
    "...",
    "!?",
    "—",
    "–",
    "«»",
    "“quoted”",
    "‘single’",
    "@user",
    "#tag",
    "100%",
    "$5",
    "€10",
    "a.b.c",
    "\xef\xbf\xbd",
    "\xe2\x80\x8b",
    "\xe2\x80\x8d",
    "\xef\xb8\x8f",
    "A\xcc\x80\xcc\x81\xcc\x82",
};

}  // namespace

std::vector<std::string> generate_texts(uint32_t seed, size_t count) {
    std::mt19937 rng(seed);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    const size_t n_frag = sizeof(kFragments) / sizeof(kFragments[0]);
    const size_t n_ranges = sizeof(kScripts) / sizeof(kScripts[0]);
    std::vector<std::string> out;
    out.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        std::string s;
        const size_t parts = 1 + pick(12);
        for (size_t p = 0; p < parts; ++p) {
            switch (pick(6)) {
                case 0:
                case 1:
                    s += kFragments[pick(n_frag)];
                    break;
                case 2: {  // a run of random characters from one script
                    const Range r = kScripts[pick(n_ranges)];
                    const size_t len = 1 + pick(8);
                    for (size_t k = 0; k < len; ++k)
                        append_cp(s, r.lo + static_cast<uint32_t>(pick(r.hi - r.lo + 1)));
                    break;
                }
                case 3: {  // whitespace runs
                    static const char* ws[] = {" ", "\t", "\n", "\r\n", "\r", "  "};
                    const size_t len = 1 + pick(6);
                    for (size_t k = 0; k < len; ++k) s += ws[pick(6)];
                    break;
                }
                case 4: {  // digits, sometimes long
                    const size_t len = 1 + pick(pick(2) == 0 ? 4 : 20);
                    for (size_t k = 0; k < len; ++k) s += static_cast<char>('0' + pick(10));
                    break;
                }
                default: {  // ASCII printable noise
                    const size_t len = 1 + pick(6);
                    for (size_t k = 0; k < len; ++k) s += static_cast<char>(0x20 + pick(95));
                    break;
                }
            }
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace bitnet::test
