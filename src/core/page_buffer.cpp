#include "core/page_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "bitnet/error.h"

namespace bitnet {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

PageBuffer::PageBuffer(size_t bytes) {
    if (bytes == 0) return;
    if (bytes > SIZE_MAX / 2)
        throw Error("cannot reserve " + std::to_string(bytes) + " bytes of memory");
    // A buffer of a huge page or more is placed on a 2 MiB boundary and advised; the slack
    // before it is never touched, so it costs address space only. A smaller one stays in small
    // pages: a huge page would commit up to 2 MiB for it.
    const bool huge = bytes >= kHugePage;
    if constexpr (kSeparateBuffers) {
        void* p = nullptr;
        if (::posix_memalign(&p, huge ? kHugePage : 4096, bytes) != 0)
            throw Error("cannot reserve " + std::to_string(bytes) + " bytes of memory");
        std::memset(p, 0, bytes);
        data_ = static_cast<uint8_t*>(p);
        size_ = bytes;
        return;
    }
    const size_t span = huge ? (bytes + kHugePage - 1) / kHugePage * kHugePage : bytes;
    map_size_ = huge ? span + kHugePage : span;
    void* p =
        ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        map_size_ = 0;
        throw Error("cannot reserve " + std::to_string(bytes) +
                    " bytes of memory: " + std::strerror(errno));
    }
    map_ = p;
    const auto base = reinterpret_cast<uintptr_t>(p);
    data_ = static_cast<uint8_t*>(p) + (huge ? (kHugePage - base % kHugePage) % kHugePage : 0);
    size_ = bytes;
#ifdef MADV_HUGEPAGE
    // Advice only: a kernel without THP refuses it and the buffer stays in small pages.
    if (huge) (void)::madvise(data_, span, MADV_HUGEPAGE);
#endif
}

PageBuffer::~PageBuffer() {
    release();
}

PageBuffer::PageBuffer(PageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        map_ = std::exchange(other.map_, nullptr);
        map_size_ = std::exchange(other.map_size_, 0);
    }
    return *this;
}

void PageBuffer::release() {
    if constexpr (kSeparateBuffers) std::free(data_);
    if (map_ != nullptr) ::munmap(map_, map_size_);
    map_ = nullptr;
    data_ = nullptr;
    size_ = map_size_ = 0;
}

int64_t anon_huge_page_bytes() {
    std::ifstream in("/proc/self/smaps_rollup");
    std::string key;
    while (in >> key) {
        if (key == "AnonHugePages:") {
            int64_t kib = 0;
            if (in >> kib) return kib * 1024;
            return -1;
        }
        in.ignore(1 << 12, '\n');
    }
    return -1;
}

bool huge_pages_enabled() {
    static const bool enabled = [] {
        std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
        std::string line;
        if (!std::getline(in, line)) return false;
        return line.find("[never]") == std::string::npos;
    }();
    return enabled;
}

}  // namespace bitnet
