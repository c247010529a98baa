// llama.cpp's own tokenizer golden tests (models/ggml-vocab-*.gguf with .inp/.out): every
// case of every suite must give exactly the expected ids (no BOS/EOS, special text as text).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bitnet/tokenizer.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

namespace fs = std::filesystem;

struct GoldenCase {
    std::string text;
    std::vector<TokenId> ids;
};

std::vector<GoldenCase> read_suite(const fs::path& vocab) {
    const std::string inp = read_file(vocab.string() + ".inp");
    std::ifstream out(vocab.string() + ".out");
    std::vector<std::string> lines;
    for (std::string line; std::getline(out, line);) lines.push_back(line);
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (size_t pos = 0; pos < inp.size();) {
        const size_t next = inp.find(sep, pos);
        if (next == std::string::npos) {
            texts.push_back(inp.substr(pos));
            break;
        }
        texts.push_back(inp.substr(pos, next - pos));
        pos = next + sep.size();
    }
    EXPECT_EQ(texts.size(), lines.size()) << vocab;
    std::vector<GoldenCase> cases;
    for (size_t i = 0; i < texts.size() && i < lines.size(); ++i) {
        GoldenCase c{texts[i], {}};
        std::istringstream ss(lines[i]);
        for (TokenId id; ss >> id;) c.ids.push_back(id);
        cases.push_back(std::move(c));
    }
    return cases;
}

std::vector<fs::path> suites() {
    std::vector<fs::path> out;
    for (const fs::path& v : vocab_files()) {
        if (fs::exists(v.string() + ".inp") && fs::exists(v.string() + ".out")) out.push_back(v);
    }
    return out;
}

TEST(TokenizerGoldens, EverySuiteEveryCase) {
    const auto all = suites();
    size_t n_cases = 0;
    for (const fs::path& v : all) {
        SCOPED_TRACE(v.filename().string());
        const Tokenizer tok = Tokenizer::from_gguf_file(v.string());
        const auto cases = read_suite(v);
        size_t failed = 0;
        for (const GoldenCase& c : cases) {
            const auto ids = tok.encode(c.text);
            if (ids != c.ids) {
                ++failed;
                ADD_FAILURE() << "text: '" << c.text << "'\nexpected:" << show_ids(c.ids)
                              << "\n     got:" << show_ids(ids);
            }
        }
        n_cases += cases.size();
        std::printf("[ goldens ] %-34s %3zu cases, %zu failed\n", v.filename().string().c_str(),
                    cases.size(), failed);
    }
    std::printf("[ goldens ] %zu suites, %zu cases\n", all.size(), n_cases);
    EXPECT_GE(all.size(), 13u);
}

}  // namespace
}  // namespace bitnet::test
