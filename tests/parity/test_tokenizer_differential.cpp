// Our tokenizers against llama.cpp's (node-llama-cpp, vocabulary-only) on 2000 generated
// strings per vocabulary, with special-token text both as text and parsed: zero mismatches
// in ids, and the same text back from the reference's ids.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bitnet/tokenizer.h"
#include "support/test_paths.h"
#include "support/text_gen.h"

namespace bitnet::test {
namespace {

using nlohmann::json;

constexpr size_t kStrings = 2000;

class TokenizerDifferential : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerDifferential, MatchesLlamaCpp) {
    const std::string vocab = vocab_path(GetParam());
    const Tokenizer tok = Tokenizer::from_gguf_file(vocab);
    const auto texts = generate_texts(
        20261128u + static_cast<uint32_t>(std::hash<std::string>{}(GetParam()) % 1000), kStrings);

    TempDir tmp;
    write_file(tmp / "in.json", json({{"texts", texts}}).dump());
    const RunResult r = run_program(
        "node", {(source_dir() / "tests/reference/tokenize.mjs").string(), reference_dir().string(),
                 vocab, (tmp / "in.json").string(), (tmp / "out.json").string()});
    ASSERT_EQ(r.exit_code, 0) << "reference tokenizer failed: " << r.err;
    const json out = json::parse(read_file(tmp / "out.json"));
    const json& results = out.at("results");
    ASSERT_EQ(results.size(), texts.size());

    size_t id_mismatches = 0, text_mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        for (const bool special : {false, true}) {
            EncodeOptions o;
            o.parse_special = special;
            const auto ours = tok.encode(texts[i], o);
            const auto theirs =
                results[i].at(special ? "special" : "plain").get<std::vector<TokenId>>();
            if (ours != theirs) {
                if (++id_mismatches <= 5) {
                    ADD_FAILURE() << GetParam() << (special ? " (parse special)" : "")
                                  << " text: " << json(texts[i]).dump()
                                  << "\n  ours:  " << show_ids(ours)
                                  << "\n  llama.cpp:" << show_ids(theirs);
                }
            }
            DecodeOptions d;
            d.render_special = special;
            const std::string back = tok.decode(theirs, d);
            const std::string expected =
                results[i].at(special ? "text_special" : "text_plain").get<std::string>();
            if (json(back).dump(-1, ' ', false, json::error_handler_t::replace) !=
                json(expected).dump()) {
                if (++text_mismatches <= 5) {
                    ADD_FAILURE() << GetParam() << " detokenize: " << json(texts[i]).dump()
                                  << "\n  ours:  "
                                  << json(back).dump(-1, ' ', false, json::error_handler_t::replace)
                                  << "\n  llama.cpp: " << json(expected).dump();
                }
            }
        }
    }
    std::printf(
        "[ differential ] %-16s %zu strings x 2 modes: %zu id mismatches, %zu text mismatches\n",
        GetParam().c_str(), texts.size(), id_mismatches, text_mismatches);
    EXPECT_EQ(id_mismatches, 0u);
    EXPECT_EQ(text_mismatches, 0u);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizerDifferential,
                         ::testing::Values("llama-bpe", "llama-spm", "gpt-2", "bert-bge", "qwen2",
                                           "qwen35", "deepseek-llm", "deepseek-coder", "falcon",
                                           "starcoder", "refact", "command-r", "mpt", "phi-3",
                                           "gemma-4", "aquila", "baichuan", "gpt-neox"),
                         [](const auto& param_info) {
                             std::string n = param_info.param;
                             for (char& c : n) {
                                 if (c == '-') c = '_';
                             }
                             return n;
                         });

}  // namespace
}  // namespace bitnet::test
