#include "hub/digest.h"

#include <cerrno>
#include <cstdio>
#include <vector>

#include <openssl/evp.h>

#include "bitnet/error.h"
#include "core/sys_error.h"

namespace bitnet::hub {

struct Digest::Impl {
    EVP_MD_CTX* ctx = nullptr;
};

Digest::Digest(Kind kind) : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    if (impl_->ctx == nullptr ||
        EVP_DigestInit_ex(impl_->ctx, kind == Kind::Sha256 ? EVP_sha256() : EVP_sha1(), nullptr) !=
            1)
        throw Error("cannot initialise a message digest (OpenSSL)");
}

Digest::~Digest() {
    EVP_MD_CTX_free(impl_->ctx);
}

void Digest::update(const void* data, size_t size) {
    if (EVP_DigestUpdate(impl_->ctx, data, size) != 1) throw Error("message digest failed");
}

std::string Digest::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &n) != 1) throw Error("message digest failed");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

namespace {

void hash_file(Digest& d, const std::filesystem::path& path) {
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"),
                                                            &std::fclose);
    if (!f) throw Error(sys_error(path.string(), "cannot open"));
    std::vector<char> buf(1 << 20);
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) d.update(buf.data(), n);
    if (std::ferror(f.get()) != 0) throw Error(path.string() + ": read error");
}

}  // namespace

std::string sha256_file(const std::filesystem::path& path) {
    Digest d(Digest::Kind::Sha256);
    hash_file(d, path);
    return d.hex();
}

std::string git_blob_sha1_file(const std::filesystem::path& path) {
    Digest d(Digest::Kind::Sha1);
    const std::string prefix = "blob " + std::to_string(std::filesystem::file_size(path));
    d.update(prefix.data(), prefix.size() + 1);  // with its NUL
    hash_file(d, path);
    return d.hex();
}

}  // namespace bitnet::hub
