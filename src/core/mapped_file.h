// Read-only memory mapping of a whole file.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace bitnet {

class MappedFile {
  public:
    // Throws Error naming the path and the system error.
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace bitnet
