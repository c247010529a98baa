// GGUF container: a strict reader over mmap and a streaming, atomic writer.
//
// Layout (little endian): "GGUF", u32 version (2 or 3), u64 n_tensors, u64 n_kv, the key/value
// pairs, the tensor infos, zero padding to general.alignment, then the data section in which
// every tensor starts at an aligned offset.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/types.h"

namespace bitnet {

// GGUF value type ids, as stored in the file.
enum class GgufType : int32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

// "u8", "i32", "f32", "bool", "string", "array", ...
std::string_view gguf_type_name(GgufType type);

// Elements of an array value. Bool arrays are stored as uint8_t (0 or 1) with elem_type Bool.
using GgufArrayData =
    std::variant<std::vector<uint8_t>, std::vector<int8_t>, std::vector<uint16_t>,
                 std::vector<int16_t>, std::vector<uint32_t>, std::vector<int32_t>,
                 std::vector<float>, std::vector<uint64_t>, std::vector<int64_t>,
                 std::vector<double>, std::vector<std::string>>;

struct GgufArray {
    GgufType elem_type = GgufType::U8;
    GgufArrayData data;

    size_t size() const;
    // Element-wise; floats compare by bits so that NaNs round-trip as equal.
    bool operator==(const GgufArray& other) const;

    template <typename T>
    static GgufArray of(std::vector<T> values);
};

// The alternatives are in GgufType order, so index() == the type id.
using GgufValueData = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float,
                                   bool, std::string, GgufArray, uint64_t, int64_t, double>;

struct GgufValue {
    GgufValueData data;

    GgufType type() const { return static_cast<GgufType>(data.index()); }
    bool operator==(const GgufValue& other) const;
};

// Maps C++ types to the GgufType they are stored as.
template <typename T>
constexpr GgufType gguf_type_of() {
    if constexpr (std::is_same_v<T, uint8_t>)
        return GgufType::U8;
    else if constexpr (std::is_same_v<T, int8_t>)
        return GgufType::I8;
    else if constexpr (std::is_same_v<T, uint16_t>)
        return GgufType::U16;
    else if constexpr (std::is_same_v<T, int16_t>)
        return GgufType::I16;
    else if constexpr (std::is_same_v<T, uint32_t>)
        return GgufType::U32;
    else if constexpr (std::is_same_v<T, int32_t>)
        return GgufType::I32;
    else if constexpr (std::is_same_v<T, float>)
        return GgufType::F32;
    else if constexpr (std::is_same_v<T, bool>)
        return GgufType::Bool;
    else if constexpr (std::is_same_v<T, std::string>)
        return GgufType::String;
    else if constexpr (std::is_same_v<T, GgufArray>)
        return GgufType::Array;
    else if constexpr (std::is_same_v<T, uint64_t>)
        return GgufType::U64;
    else if constexpr (std::is_same_v<T, int64_t>)
        return GgufType::I64;
    else if constexpr (std::is_same_v<T, double>)
        return GgufType::F64;
    else
        static_assert(sizeof(T) == 0, "not a GGUF value type");
}

template <typename T>
GgufArray GgufArray::of(std::vector<T> values) {
    GgufArray a;
    a.elem_type = gguf_type_of<T>();
    a.data = std::move(values);
    return a;
}

// Ordered key/value metadata with lookup by key.
class GgufMetadata {
  public:
    // Adds or replaces a key (a replaced key keeps its position).
    void set(const std::string& key, GgufValue value);
    template <typename T>
    void set(const std::string& key, T value) {
        set(key, GgufValue{GgufValueData(std::in_place_type<T>, std::move(value))});
    }
    void set(const std::string& key, const char* value) { set(key, std::string(value)); }
    bool erase(const std::string& key);

    const GgufValue* find(std::string_view key) const;
    bool contains(std::string_view key) const { return find(key) != nullptr; }

    // Typed access: throws Error naming the key when it is missing or has another type.
    template <typename T>
    const T& get(std::string_view key) const {
        const GgufValue& v = require(key, gguf_type_of<T>());
        return std::get<T>(v.data);
    }
    template <typename T>
    T get_or(std::string_view key, T fallback) const {
        const GgufValue* v = find(key);
        if (v == nullptr) return fallback;
        return get<T>(key);
    }
    // Array access: throws when missing, not an array, or of another element type.
    template <typename T>
    const std::vector<T>& get_array(std::string_view key) const {
        const GgufArray& a = require_array(key, gguf_type_of<T>());
        return std::get<std::vector<T>>(a.data);
    }
    // Any unsigned or signed integer type, range-checked into uint64_t.
    uint64_t get_uint(std::string_view key) const;

    size_t size() const { return entries_.size(); }
    const std::vector<std::pair<std::string, GgufValue>>& entries() const { return entries_; }
    bool operator==(const GgufMetadata& other) const { return entries_ == other.entries_; }

    // Where the metadata came from, for error messages ("model.gguf").
    std::string source;

  private:
    const GgufValue& require(std::string_view key, GgufType type) const;
    const GgufArray& require_array(std::string_view key, GgufType elem) const;

    std::vector<std::pair<std::string, GgufValue>> entries_;
    std::unordered_map<std::string, size_t> index_;
};

struct GgufTensorInfo {
    std::string name;
    uint32_t n_dims = 0;
    std::array<int64_t, 4> ne = {1, 1, 1, 1};  // ne[0] is the contiguous row length
    GgmlType type = GgmlType::F32;
    uint32_t type_id = 0;  // the id as stored in the file
    uint64_t offset = 0;   // relative to the data section
    uint64_t bytes = 0;

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class MappedFile;

// A parsed, validated GGUF file. Tensor data is read in place from the mapping.
class GgufFile {
  public:
    // Maps and validates a file; throws Error naming the file, byte offset and field.
    static GgufFile open(const std::string& path);
    // Parses bytes that the caller keeps alive for the lifetime of the result.
    static GgufFile parse(std::span<const uint8_t> bytes, const std::string& name);

    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return bytes_.size(); }
    const std::string& path() const { return name_; }
    // general.architecture, or "" when absent.
    std::string architecture() const;

    const GgufMetadata& metadata() const { return metadata_; }
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(std::string_view name) const;
    // Throws Error naming the tensor when it is absent.
    const GgufTensorInfo& tensor(std::string_view name) const;
    std::span<const uint8_t> tensor_data(const GgufTensorInfo& info) const;

  private:
    std::shared_ptr<const MappedFile> mapping_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    uint32_t version_ = 3;
    uint32_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    GgufMetadata metadata_;
    std::vector<GgufTensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;

    friend class GgufParser;
};

// Receives a tensor's bytes while the writer streams the data section.
class ByteSink {
  public:
    virtual ~ByteSink() = default;
    virtual void write(const void* data, size_t n) = 0;
};

// Collects metadata and tensors, then streams them to a temporary file that is renamed to
// the destination only once complete. Tensor payloads are produced on demand, one at a time,
// so a converter never holds a whole model in memory.
class GgufWriter {
  public:
    explicit GgufWriter(uint32_t alignment = 32);

    GgufMetadata& metadata() { return metadata_; }

    using Producer = std::function<void(ByteSink&)>;
    // Adds a tensor whose bytes `produce` writes when asked (exactly the size the type and
    // shape imply; anything else fails the write). `ne` lists ne[0] first.
    void add_tensor(const std::string& name, GgmlType type, std::span<const int64_t> ne,
                    Producer produce);
    // Adds a tensor whose bytes are in memory and stay valid until write() returns.
    void add_tensor(const std::string& name, GgmlType type, std::span<const int64_t> ne,
                    std::span<const uint8_t> bytes);

    // Writes `path` atomically. Called once.
    void write(const std::string& path);
    // Progress callback: (tensors written, total tensors).
    std::function<void(size_t, size_t)> on_progress;

  private:
    struct Pending {
        GgufTensorInfo info;
        Producer produce;
    };
    uint32_t alignment_;
    GgufMetadata metadata_;
    std::vector<Pending> tensors_;
    std::unordered_map<std::string, size_t> names_;
};

}  // namespace bitnet
