#include <fstream>
#include <iterator>

#include <fmt/core.h>

#include "bitnet/error.h"
#include "cli/commands.h"

namespace bitnet::cli {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string process_escapes(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '\\' || i + 1 == in.size()) {
            out += in[i];
            continue;
        }
        const char c = in[++i];
        switch (c) {
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case '\'':
            case '"':
            case '\\':
                out += c;
                break;
            case 'x':
                // Exactly two hex digits, as llama.cpp; anything else stays as written.
                if (i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
                    out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
                    i += 2;
                } else {
                    out += "\\x";
                }
                break;
            default:
                out += '\\';
                out += c;
                break;
        }
    }
    return out;
}

void print_load_messages(const Model& model, bool verbose) {
    for (const std::string& w : model.warnings()) fmt::print(stderr, "warning: {}\n", w);
    if (!verbose) return;
    fmt::print(stderr, "model: {}\n", model.describe());
    for (const std::string& a : model.assumptions()) fmt::print(stderr, "assumption: {}\n", a);
}

}  // namespace bitnet::cli
