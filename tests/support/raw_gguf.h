// Builds GGUF bytes field by field, including invalid ones, for tests of the reader.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bitnet::test {

class RawGguf {
  public:
    template <typename T>
    RawGguf& put(T v) {
        const auto* p = reinterpret_cast<const char*>(&v);
        bytes.append(p, sizeof(T));
        return *this;
    }
    RawGguf& str(const std::string& s) {
        put<uint64_t>(s.size());
        bytes += s;
        return *this;
    }
    RawGguf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        bytes += "GGUF";
        put<uint32_t>(version);
        put<uint64_t>(n_tensors);
        return put<uint64_t>(n_kv);
    }
    RawGguf& kv_u32(const std::string& key, uint32_t v) {
        str(key);
        put<int32_t>(4);
        return put<uint32_t>(v);
    }
    RawGguf& kv_str(const std::string& key, const std::string& v) {
        str(key);
        put<int32_t>(8);
        return str(v);
    }
    RawGguf& tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type,
                    uint64_t offset) {
        str(name);
        put<uint32_t>(static_cast<uint32_t>(ne.size()));
        for (int64_t d : ne) put<int64_t>(d);
        put<uint32_t>(type);
        return put<uint64_t>(offset);
    }
    RawGguf& pad(size_t alignment = 32) {
        while (bytes.size() % alignment != 0) bytes.push_back('\0');
        return *this;
    }
    RawGguf& zeros(size_t n) {
        bytes.append(n, '\0');
        return *this;
    }

    std::string bytes;
};

}  // namespace bitnet::test
