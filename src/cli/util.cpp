#include <fstream>
#include <iterator>

#include "bitnet/error.h"
#include "cli/commands.h"

namespace bitnet::cli {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace bitnet::cli
