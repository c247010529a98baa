// Streaming SHA-256 and SHA-1 (OpenSSL's EVP interface) for verifying downloads.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace bitnet::hub {

class Digest {
  public:
    enum class Kind { Sha256, Sha1 };
    explicit Digest(Kind kind);
    ~Digest();
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;
    void update(const void* data, size_t size);
    void update(std::string_view s) { update(s.data(), s.size()); }
    std::string hex();  // finishes the digest; lower-case hex

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The file's sha256, lower-case hex; throws Error naming the path when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);
// git's blob id: SHA-1 of "blob <size>\0" followed by the bytes (what the hub's ETag is for
// files stored in git rather than LFS).
std::string git_blob_sha1_file(const std::filesystem::path& path);

}  // namespace bitnet::hub
