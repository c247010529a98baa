// libFuzzer target: arbitrary bytes (valid UTF-8 or not) through the BPE (Llama-3), SPM
// (Llama-2) and WordPiece (BERT) tokenizers, with special text parsed and not, then back
// through the decoder. Nothing may crash, and every id must be inside the vocabulary.
// The vocabularies come from BITNET_FUZZ_VOCAB_DIR (llama.cpp's models/ folder).
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/tokenizer.h"

namespace {

std::vector<std::unique_ptr<bitnet::Tokenizer>>& tokenizers() {
    static std::vector<std::unique_ptr<bitnet::Tokenizer>> t;
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* dir = std::getenv("BITNET_FUZZ_VOCAB_DIR");
    if (dir == nullptr) std::abort();  // the runner always sets it
    for (const char* name : {"llama-bpe", "llama-spm", "bert-bge"}) {
        const std::string path = std::string(dir) + "/ggml-vocab-" + name + ".gguf";
        tokenizers().push_back(
            std::make_unique<bitnet::Tokenizer>(bitnet::Tokenizer::from_gguf_file(path)));
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const auto& tok : tokenizers()) {
        for (const bool special : {false, true}) {
            bitnet::EncodeOptions o;
            o.parse_special = special;
            o.add_special = special;
            const auto ids = tok->encode(text, o);
            for (bitnet::TokenId id : ids) {
                if (id < 0 || static_cast<size_t>(id) >= tok->size()) std::abort();
            }
            bitnet::DecodeOptions d;
            d.render_special = special;
            (void)tok->decode(ids, d);
            bitnet::StreamDecoder s(*tok);
            for (bitnet::TokenId id : ids) (void)s.push(id);
            (void)s.flush();
        }
    }
    return 0;
}
