// A file written under a temporary name in the destination's folder and renamed over the
// destination only by commit(). Destroyed without commit, it removes the temporary file, so a
// failed or interrupted writer never leaves a half-written destination behind.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace bitnet {

class AtomicFile {
  public:
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t n);
    void write_zeros(size_t n);
    uint64_t position() const { return position_; }
    // Flushes, syncs and renames onto the destination. Throws Error on failure.
    void commit();

    const std::string& temp_path() const { return temp_path_; }

  private:
    std::string path_;
    std::string temp_path_;
    std::FILE* file_ = nullptr;
    uint64_t position_ = 0;
    bool committed_ = false;
};

// Removes temporary files of AtomicFile writers that are still open; called from signal
// handlers of front ends so that Ctrl-C leaves no debris. Async-signal-safe.
void remove_pending_temp_files() noexcept;

}  // namespace bitnet
