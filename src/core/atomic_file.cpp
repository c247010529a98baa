#include "core/atomic_file.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "bitnet/error.h"
#include "core/sys_error.h"

namespace bitnet {

namespace {

// Fixed-size registry of open temporary names, readable from a signal handler.
constexpr size_t kMaxPending = 16;
constexpr size_t kMaxPath = 4096;
std::array<std::array<char, kMaxPath>, kMaxPending> g_pending{};
std::array<std::atomic<bool>, kMaxPending> g_pending_used{};

int register_pending(const std::string& path) {
    if (path.size() >= kMaxPath) return -1;
    for (size_t i = 0; i < kMaxPending; ++i) {
        bool expected = false;
        if (g_pending_used[i].compare_exchange_strong(expected, true)) {
            std::memcpy(g_pending[i].data(), path.c_str(), path.size() + 1);
            return static_cast<int>(i);
        }
    }
    return -1;
}

void unregister_pending(const std::string& path) {
    for (size_t i = 0; i < kMaxPending; ++i) {
        if (g_pending_used[i].load() && path == g_pending[i].data()) {
            g_pending_used[i].store(false);
            return;
        }
    }
}

}  // namespace

void remove_pending_temp_files() noexcept {
    for (size_t i = 0; i < kMaxPending; ++i) {
        if (g_pending_used[i].load()) ::unlink(g_pending[i].data());
    }
}

AtomicFile::AtomicFile(const std::string& path)
    : path_(path), temp_path_(path + ".tmp." + std::to_string(::getpid())) {
    file_ = std::fopen(temp_path_.c_str(), "wbx");
    if (file_ == nullptr && errno == EEXIST) {
        ::unlink(temp_path_.c_str());  // debris of an earlier process with our pid
        file_ = std::fopen(temp_path_.c_str(), "wbx");
    }
    if (file_ == nullptr) throw Error(sys_error(temp_path_, "cannot create"));
    register_pending(temp_path_);
}

AtomicFile::~AtomicFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) {
        ::unlink(temp_path_.c_str());
        unregister_pending(temp_path_);
    }
}

void AtomicFile::write(const void* data, size_t n) {
    if (n == 0) return;
    if (std::fwrite(data, 1, n, file_) != n) throw Error(sys_error(temp_path_, "write failed"));
    position_ += n;
}

void AtomicFile::write_zeros(size_t n) {
    static constexpr std::array<uint8_t, 256> kZeros{};
    while (n > 0) {
        const size_t k = n < kZeros.size() ? n : kZeros.size();
        write(kZeros.data(), k);
        n -= k;
    }
}

void AtomicFile::commit() {
    if (std::fflush(file_) != 0) throw Error(sys_error(temp_path_, "flush failed"));
    if (::fsync(::fileno(file_)) != 0) throw Error(sys_error(temp_path_, "sync failed"));
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) throw Error(sys_error(temp_path_, "close failed"));
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        throw Error(sys_error(path_, "cannot rename temporary file onto"));
    }
    committed_ = true;
    unregister_pending(temp_path_);
}

}  // namespace bitnet
