// A tokenizer written back as GGUF metadata (tokenizer.ggml.*), for `bitnet convert`: the keys
// llama.cpp's converter writes for a byte-level BPE vocabulary (gguf-py's SpecialVocab and
// _set_vocab_gpt2) or a SentencePiece one (_set_vocab_sentencepiece: model "llama", scores,
// token types), read back by our loader and llama.cpp's alike.
#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "tokenizer/tokenizer_impl.h"

namespace bitnet {

namespace {

// llama.cpp's tokenizer.ggml.pre name for a pre-tokenizer we recognised in a tokenizer.json.
std::string gguf_pre_name(const std::string& ours) {
    if (ours == "llama3") return "llama-bpe";
    return ours;  // "gpt-2", "qwen2", ... are already llama.cpp's names
}

// llama.cpp's token types (llama_token_type): 1 normal, 2 unknown, 3 control, 4 user-defined,
// 5 unused, 6 byte.
int32_t token_type_of(uint32_t attr) {
    if ((attr & token_attr::kUnknown) != 0) return 2;
    if ((attr & token_attr::kControl) != 0) return 3;
    if ((attr & token_attr::kUserDefined) != 0) return 4;
    if ((attr & token_attr::kUnused) != 0) return 5;
    if ((attr & token_attr::kByte) != 0) return 6;
    return 1;
}

}  // namespace

void Tokenizer::write_gguf_metadata(GgufMetadata& m) const {
    const TokenizerImpl& t = *impl_;
    if (t.type == VocabType::Wpm) throw NotSupported("writing a WordPiece vocabulary to GGUF");
    const bool spm = t.type == VocabType::Spm;
    if (spm && (!t.add_space_prefix || !t.escape_whitespaces || t.remove_extra_whitespaces))
        throw NotSupported("writing a SentencePiece vocabulary without llama's defaults to GGUF");
    if (!spm && t.pre.name == "custom") {
        // A Split regex we could follow but llama.cpp has no name for: a file it (and our
        // loader, which reads the name) could not tokenize.
        throw NotSupported(
            "writing a tokenizer.json pre-tokenizer that llama.cpp has no "
            "tokenizer.ggml.pre name for");
    }
    m.set("tokenizer.ggml.model", std::string(spm ? "llama" : "gpt2"));
    m.set("tokenizer.ggml.pre", spm ? std::string("default") : gguf_pre_name(t.pre.name));
    std::vector<std::string> texts;
    std::vector<int32_t> types;
    texts.reserve(t.tokens.size());
    types.reserve(t.tokens.size());
    for (const TokenData& d : t.tokens) {
        texts.push_back(d.text);
        types.push_back(token_type_of(d.attr));
    }
    m.set("tokenizer.ggml.tokens", GgufArray::of(texts));
    m.set("tokenizer.ggml.token_type", GgufArray::of(types));
    if (spm) {
        std::vector<float> scores;
        scores.reserve(t.tokens.size());
        for (const TokenData& d : t.tokens) scores.push_back(d.score);
        m.set("tokenizer.ggml.scores", GgufArray::of(scores));
        m.set<bool>("tokenizer.ggml.add_space_prefix", true);
    } else {
        m.set("tokenizer.ggml.merges", GgufArray::of(t.merge_ranks.joined()));
    }
    auto set_id = [&m](const char* key, TokenId id) {
        if (id != kNoToken) m.set<uint32_t>(key, static_cast<uint32_t>(id));
    };
    set_id("tokenizer.ggml.bos_token_id", t.special.bos);
    set_id("tokenizer.ggml.eos_token_id", t.special.eos);
    set_id("tokenizer.ggml.unknown_token_id", t.special.unk);
    set_id("tokenizer.ggml.padding_token_id", t.special.pad);
    set_id("tokenizer.ggml.eot_token_id", t.special.eot);
    set_id("tokenizer.ggml.eom_token_id", t.special.eom);
    m.set<bool>("tokenizer.ggml.add_bos_token", t.add_bos);
    m.set<bool>("tokenizer.ggml.add_eos_token", t.add_eos);
}

}  // namespace bitnet
