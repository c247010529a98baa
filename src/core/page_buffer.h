// Anonymous memory for data streamed once per token (weights held at load, the KV cache):
// aligned to 2 MiB and advised for transparent huge pages (madvise MADV_HUGEPAGE).
//
// Why: a decode step reads every weight once, 1.2 GB for BitNet 2B-4T shapes. With 4 KiB pages
// that is ~300,000 TLB misses per token, and on the Zen 3 EPYC this was measured on, a streaming
// read of 1 GiB runs at about 20.5 GB/s with 4 KiB pages and 24.5 GB/s with 2 MiB pages (two
// threads, same run). Debian and Ubuntu ship THP in "madvise" mode, where plain malloc'd memory
// (std::vector) never gets huge pages; the advice is what asks for them. Where THP is off the
// buffer is ordinary memory and nothing else changes.
//
// The memory starts zero-filled and is committed as it is first written: page by page, or 2 MiB
// at a time where huge pages back it. Under AddressSanitizer it comes from the allocator instead
// (same alignment, zero-filled), so that accesses past the end still meet a redzone; the users
// then also give each matrix and each cache region a buffer of its own (kSeparateBuffers).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitnet {

// True under AddressSanitizer: weights and KV caches then take one buffer per matrix or region
// instead of one shared arena, so that overruns between them are reported.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSeparateBuffers = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSeparateBuffers = true;
#else
inline constexpr bool kSeparateBuffers = false;
#endif
#else
inline constexpr bool kSeparateBuffers = false;
#endif

class PageBuffer {
  public:
    PageBuffer() = default;
    // Throws Error when the address space cannot be reserved (names the size).
    explicit PageBuffer(size_t bytes);
    ~PageBuffer();
    PageBuffer(PageBuffer&& other) noexcept;
    PageBuffer& operator=(PageBuffer&& other) noexcept;
    PageBuffer(const PageBuffer&) = delete;
    PageBuffer& operator=(const PageBuffer&) = delete;

    uint8_t* data() { return data_; }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    void release();

    uint8_t* data_ = nullptr;
    size_t size_ = 0;
    void* map_ = nullptr;  // the mapping (data_ rounded up to 2 MiB inside it)
    size_t map_size_ = 0;
};

// Bytes of this process's anonymous memory backed by huge pages now (AnonHugePages of
// /proc/self/smaps_rollup: all of the process, not only weights), or -1 when the kernel does
// not report it. For `bitnet bench`.
int64_t anon_huge_page_bytes();

// Whether transparent huge pages can back a PageBuffer here (the kernel's THP mode is not
// "never"; read once).
bool huge_pages_enabled();

}  // namespace bitnet
