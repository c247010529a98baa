// Tokenizers built from a GGUF file's tokenizer.ggml.* metadata or from a Hugging Face
// tokenizer.json: SentencePiece-style (llama), byte-level BPE (gpt2) with the pre-tokenizer
// named by tokenizer.ggml.pre, and WordPiece (bert). Results match llama.cpp's tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/gguf.h"

namespace bitnet {

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

// Token attributes, as llama.cpp derives them from tokenizer.ggml.token_type.
namespace token_attr {
constexpr uint32_t kUnknown = 1u << 0;
constexpr uint32_t kUnused = 1u << 1;
constexpr uint32_t kNormal = 1u << 2;
constexpr uint32_t kControl = 1u << 3;
constexpr uint32_t kUserDefined = 1u << 4;
constexpr uint32_t kByte = 1u << 5;
constexpr uint32_t kLStrip = 1u << 7;
constexpr uint32_t kRStrip = 1u << 8;
}  // namespace token_attr

enum class VocabType { Spm, Bpe, Wpm };

struct EncodeOptions {
    // BOS/EOS (and SEP for WordPiece) as the vocabulary asks. A BOS is not added when the
    // text already begins with one (BOS text parsed as special): unlike llama.cpp, which keeps
    // both and warns, we never feed the model two.
    bool add_special = false;
    bool parse_special = false;  // control-token text becomes its id; otherwise plain text
};

struct DecodeOptions {
    bool remove_special = false;  // drop a leading BOS / trailing EOS the encoder would add
    bool render_special = false;  // print control tokens' text (otherwise they print nothing)
};

struct SpecialTokens {
    TokenId bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken, unk = kNoToken,
            sep = kNoToken, pad = kNoToken, mask = kNoToken, cls = kNoToken;
    TokenId fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken, fim_pad = kNoToken,
            fim_rep = kNoToken, fim_sep = kNoToken;
};

class TokenizerImpl;

class Tokenizer {
  public:
    // From GGUF metadata (tokenizer.ggml.*). Throws Error / NotSupported naming the key.
    static Tokenizer from_gguf(const GgufMetadata& metadata);
    static Tokenizer from_gguf_file(const std::string& path);
    // From a Hugging Face tokenizer.json (BPE with ByteLevel / Split pre-tokenizers); reads
    // tokenizer_config.json beside it when present (add_bos_token, ...).
    static Tokenizer from_json_file(const std::string& path);

    ~Tokenizer();
    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;

    std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const;
    std::string decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;
    // The bytes one token stands for (control tokens: their text only when render_special).
    std::string piece(TokenId id, bool render_special = false) const;

    size_t size() const;
    VocabType type() const;
    const std::string& token_text(TokenId id) const;  // the vocabulary entry, as stored
    uint32_t attributes(TokenId id) const;
    const SpecialTokens& special() const;
    bool add_bos() const;
    bool add_eos() const;
    bool is_end_of_generation(TokenId id) const;
    // The pre-tokenizer in use ("llama3", "gpt-2", "default", ...; "" for SPM/WPM).
    const std::string& pre_tokenizer() const;
    // Assumptions taken while loading that a user may want to know about (for --verbose):
    // a pre-tokenizer recognised without tokenizer.ggml.pre, end-of-turn tokens found by text.
    const std::vector<std::string>& notes() const;
    // Problems in the file that were worked around, one line each, meant to be shown always:
    // special-token ids outside the vocabulary ("tokenizer.ggml.eos_token_id = 32000 is
    // outside the vocabulary (32000 tokens): ignored"); such a slot is left empty.
    const std::vector<std::string>& warnings() const;

    // Writes this vocabulary as llama.cpp's tokenizer.ggml.* keys (model, pre, tokens,
    // token_type, merges, special ids, add_bos/add_eos), so that a model converted from a
    // tokenizer.json tokenizes the same from its GGUF file, here and in llama.cpp. BPE only;
    // NotSupported otherwise.
    void write_gguf_metadata(GgufMetadata& metadata) const;

  private:
    explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
    std::unique_ptr<TokenizerImpl> impl_;
};

// Turns a stream of ids into text that only ever contains complete UTF-8: bytes of a
// character split across tokens are held until the character is whole.
class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);
    // Text that became complete with this token (possibly empty).
    std::string push(TokenId id);
    // Whatever is still held (an incomplete sequence at the end of the stream).
    std::string flush();

  private:
    const Tokenizer& tokenizer_;
    bool render_special_;
    std::string pending_;
};

}  // namespace bitnet
