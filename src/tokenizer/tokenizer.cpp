#include "bitnet/tokenizer.h"

#include "bitnet/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bitnet {

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& o) const {
    return impl_->encode(text, o);
}
std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions& o) const {
    return impl_->decode(ids, o);
}
std::string Tokenizer::piece(TokenId id, bool render_special) const {
    return impl_->piece(id, render_special);
}
size_t Tokenizer::size() const {
    return impl_->tokens.size();
}
VocabType Tokenizer::type() const {
    return impl_->type;
}

const std::string& Tokenizer::token_text(TokenId id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size()) {
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
    }
    return impl_->tokens[static_cast<size_t>(id)].text;
}

uint32_t Tokenizer::attributes(TokenId id) const {
    token_text(id);  // range check
    return impl_->tokens[static_cast<size_t>(id)].attr;
}

const SpecialTokens& Tokenizer::special() const {
    return impl_->special;
}
bool Tokenizer::add_bos() const {
    return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
    return impl_->add_eos;
}
bool Tokenizer::is_end_of_generation(TokenId id) const {
    return std::find(impl_->eog.begin(), impl_->eog.end(), id) != impl_->eog.end();
}
const std::string& Tokenizer::pre_tokenizer() const {
    return impl_->pre.name;
}
const std::vector<std::string>& Tokenizer::notes() const {
    return impl_->notes;
}
const std::vector<std::string>& Tokenizer::warnings() const {
    return impl_->warnings;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(tokenizer), render_special_(render_special) {}

std::string StreamDecoder::push(TokenId id) {
    pending_ += tokenizer_.piece(id, render_special_);
    const size_t n = unicode::complete_utf8_prefix(pending_);
    std::string out = pending_.substr(0, n);
    pending_.erase(0, n);
    return out;
}

std::string StreamDecoder::flush() {
    return std::exchange(pending_, {});
}

}  // namespace bitnet
