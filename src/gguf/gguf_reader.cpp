// Strict GGUF parser. Nothing read from the file is trusted before it is checked against what
// the file can hold: counts and lengths are bounded by the bytes that remain, so a lying header
// can neither make us allocate without bound nor read outside the mapping.
#include <algorithm>
#include <cstring>
#include <limits>

#include "bitnet/gguf.h"
#include "core/mapped_file.h"

namespace bitnet {

namespace {

constexpr size_t kMaxNameBytes = 63;  // ggml's GGML_MAX_NAME (64) including the terminator
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name, n_dims, 1 dim, type, offset

std::string quoted(const std::string& s) {
    return "'" + s + "'";
}

// Bounds-checked little-endian reads; every failure names the file, offset and field.
class Cursor {
  public:
    Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

    size_t pos() const { return pos_; }
    uint64_t remaining() const { return bytes_.size() - pos_; }

    [[noreturn]] void fail(size_t at, const std::string& field, const std::string& msg) const {
        throw Error(name_ + ": byte " + std::to_string(at) + ": " + field + ": " + msg);
    }

    template <typename T>
    T read(const std::string& field) {
        if (remaining() < sizeof(T)) {
            fail(pos_, field,
                 "file truncated (need " + std::to_string(sizeof(T)) + " bytes, " +
                     std::to_string(remaining()) + " remain)");
        }
        T v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string read_string(const std::string& field) {
        const size_t at = pos_;
        const auto len = read<uint64_t>(field + " length");
        if (len > remaining()) {
            fail(at, field,
                 "string length " + std::to_string(len) + " exceeds the " +
                     std::to_string(remaining()) + " bytes that remain");
        }
        std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
        pos_ += len;
        return s;
    }

    // Checks that `count` elements of at least `min_size` bytes each can fit.
    void require_room(size_t at, uint64_t count, uint64_t min_size,
                      const std::string& field) const {
        if (count > remaining() / min_size) {
            fail(at, field,
                 "count " + std::to_string(count) + " needs at least " +
                     (count > std::numeric_limits<uint64_t>::max() / min_size
                          ? std::string("more")
                          : std::to_string(count * min_size)) +
                     " bytes, " + std::to_string(remaining()) + " remain");
        }
    }

  private:
    std::span<const uint8_t> bytes_;
    const std::string& name_;
    size_t pos_ = 0;
};

uint64_t min_value_size(GgufType t) {
    switch (t) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::Bool:
            return 1;
        case GgufType::U16:
        case GgufType::I16:
            return 2;
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::F32:
            return 4;
        case GgufType::U64:
        case GgufType::I64:
        case GgufType::F64:
        case GgufType::String:
            return 8;
        case GgufType::Array:
            return 4 + 8;
    }
    return 1;
}

bool valid_type(int32_t t) {
    return t >= 0 && t <= static_cast<int32_t>(GgufType::F64);
}

template <typename T>
std::vector<T> read_numbers(Cursor& c, uint64_t n, const std::string& field) {
    std::vector<T> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = c.read<T>(field);
    return v;
}

bool read_bool(Cursor& c, const std::string& field) {
    const size_t at = c.pos();
    const auto b = c.read<uint8_t>(field);
    if (b > 1) c.fail(at, field, "bool value is " + std::to_string(b) + ", expected 0 or 1");
    return b == 1;
}

GgufArray read_array(Cursor& c, const std::string& field) {
    const size_t at = c.pos();
    const auto elem = c.read<int32_t>(field + " element type");
    if (!valid_type(elem)) c.fail(at, field, "invalid array element type " + std::to_string(elem));
    const auto et = static_cast<GgufType>(elem);
    if (et == GgufType::Array) c.fail(at, field, "arrays of arrays are not allowed");
    const size_t count_at = c.pos();
    const auto n = c.read<uint64_t>(field + " count");
    c.require_room(count_at, n, min_value_size(et), field + " count");
    GgufArray a;
    a.elem_type = et;
    switch (et) {
        case GgufType::U8:
            a.data = read_numbers<uint8_t>(c, n, field);
            break;
        case GgufType::I8:
            a.data = read_numbers<int8_t>(c, n, field);
            break;
        case GgufType::U16:
            a.data = read_numbers<uint16_t>(c, n, field);
            break;
        case GgufType::I16:
            a.data = read_numbers<int16_t>(c, n, field);
            break;
        case GgufType::U32:
            a.data = read_numbers<uint32_t>(c, n, field);
            break;
        case GgufType::I32:
            a.data = read_numbers<int32_t>(c, n, field);
            break;
        case GgufType::F32:
            a.data = read_numbers<float>(c, n, field);
            break;
        case GgufType::U64:
            a.data = read_numbers<uint64_t>(c, n, field);
            break;
        case GgufType::I64:
            a.data = read_numbers<int64_t>(c, n, field);
            break;
        case GgufType::F64:
            a.data = read_numbers<double>(c, n, field);
            break;
        case GgufType::Bool: {
            std::vector<uint8_t> v(n);
            for (uint64_t i = 0; i < n; ++i) v[i] = read_bool(c, field) ? 1 : 0;
            a.data = std::move(v);
            break;
        }
        case GgufType::String: {
            std::vector<std::string> v;
            v.reserve(n);
            for (uint64_t i = 0; i < n; ++i) {
                v.push_back(c.read_string(field + "[" + std::to_string(i) + "]"));
            }
            a.data = std::move(v);
            break;
        }
        case GgufType::Array:
            break;
    }
    return a;
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& field) {
    switch (t) {
        case GgufType::U8:
            return {c.read<uint8_t>(field)};
        case GgufType::I8:
            return {c.read<int8_t>(field)};
        case GgufType::U16:
            return {c.read<uint16_t>(field)};
        case GgufType::I16:
            return {c.read<int16_t>(field)};
        case GgufType::U32:
            return {c.read<uint32_t>(field)};
        case GgufType::I32:
            return {c.read<int32_t>(field)};
        case GgufType::F32:
            return {c.read<float>(field)};
        case GgufType::Bool:
            return {read_bool(c, field)};
        case GgufType::String:
            return {c.read_string(field)};
        case GgufType::Array:
            return {read_array(c, field)};
        case GgufType::U64:
            return {c.read<uint64_t>(field)};
        case GgufType::I64:
            return {c.read<int64_t>(field)};
        case GgufType::F64:
            return {c.read<double>(field)};
    }
    return {};
}

}  // namespace

class GgufParser {
  public:
    GgufParser(GgufFile& f, std::span<const uint8_t> bytes) : f_(f), c_(bytes, f.name_) {}

    void run() {
        header();
        metadata();
        tensor_infos();
        data_section();
    }

  private:
    void header() {
        if (c_.remaining() < 4)
            c_.fail(
                0, "magic",
                "file truncated (" + std::to_string(c_.remaining()) + " bytes; not a GGUF file)");
        const auto magic = c_.read<uint32_t>("magic");
        if (magic != 0x46554747u) {  // "GGUF" little endian
            c_.fail(0, "magic", "not a GGUF file (expected the bytes 'GGUF')");
        }
        const auto version = c_.read<uint32_t>("version");
        if (version == 1) c_.fail(4, "version", "GGUF version 1 is obsolete and not supported");
        if (version == 0 || version > 3) {
            c_.fail(4, "version",
                    "unknown GGUF version " + std::to_string(version) +
                        (version > 0xffff ? " (a big-endian file?)" : "") +
                        "; versions 2 and 3 are read");
        }
        f_.version_ = version;
        n_tensors_ = c_.read<uint64_t>("tensor count");
        n_kv_ = c_.read<uint64_t>("metadata count");
        // Both sections follow the header; each entry has a minimum encoded size.
        const uint64_t rest = c_.remaining();
        if (n_kv_ > rest / kMinKvBytes) {
            c_.fail(16, "metadata count",
                    std::to_string(n_kv_) + " key/value pairs cannot fit in the " +
                        std::to_string(rest) + " bytes that remain");
        }
        if (n_tensors_ > rest / kMinTensorInfoBytes) {
            c_.fail(8, "tensor count",
                    std::to_string(n_tensors_) + " tensor infos cannot fit in the " +
                        std::to_string(rest) + " bytes that remain");
        }
    }

    void metadata() {
        f_.metadata_.source = f_.name_;
        for (uint64_t i = 0; i < n_kv_; ++i) {
            const size_t at = c_.pos();
            const std::string field = "metadata key #" + std::to_string(i);
            std::string key = c_.read_string(field);
            if (key.empty()) c_.fail(at, field, "empty key");
            if (f_.metadata_.contains(key)) c_.fail(at, field, "duplicate key " + quoted(key));
            const std::string vfield = "value of " + quoted(key);
            const size_t type_at = c_.pos();
            const auto type = c_.read<int32_t>(vfield + " type");
            if (!valid_type(type)) {
                c_.fail(type_at, vfield, "invalid value type " + std::to_string(type));
            }
            f_.metadata_.set(key, read_value(c_, static_cast<GgufType>(type), vfield));
            if (key == "general.alignment") check_alignment(type_at);
        }
        if (const GgufValue* a = f_.metadata_.find("general.architecture");
            a != nullptr && a->type() == GgufType::String) {
            architecture_ = std::get<std::string>(a->data);
        }
    }

    void check_alignment(size_t at) {
        const GgufValue& v = *f_.metadata_.find("general.alignment");
        if (v.type() != GgufType::U32) {
            c_.fail(at, "general.alignment",
                    "has type " + std::string(gguf_type_name(v.type())) + ", expected u32");
        }
        const uint32_t a = std::get<uint32_t>(v.data);
        if (a == 0 || (a & (a - 1)) != 0) {
            c_.fail(at, "general.alignment", std::to_string(a) + " is not a power of two");
        }
        f_.alignment_ = a;
    }

    void tensor_infos() {
        f_.tensors_.reserve(n_tensors_);
        for (uint64_t i = 0; i < n_tensors_; ++i) {
            const size_t at = c_.pos();
            const std::string field = "tensor info #" + std::to_string(i);
            GgufTensorInfo t;
            t.name = c_.read_string(field + " name");
            if (t.name.empty()) c_.fail(at, field, "empty tensor name");
            if (t.name.size() > kMaxNameBytes) {
                c_.fail(at, field,
                        "tensor name " + quoted(t.name.substr(0, 80)) + " is " +
                            std::to_string(t.name.size()) + " bytes (at most 63)");
            }
            if (f_.tensor_index_.count(t.name) != 0) {
                c_.fail(at, field, "duplicate tensor name " + quoted(t.name));
            }
            const std::string tf = "tensor " + quoted(t.name);
            read_shape(t, tf);
            const size_t type_at = c_.pos();
            t.type_id = c_.read<uint32_t>(tf + " type");
            try {
                t.type = resolve_type_id(t.type_id, architecture_, tf);
            } catch (const NotSupported& e) {
                throw NotSupported(
                    f_.name_ + ": byte " + std::to_string(type_at) + ": " +
                    std::string(e.what()).substr(std::string_view("not supported: ").size()));
            } catch (const Error& e) {
                throw Error(f_.name_ + ": byte " + std::to_string(type_at) + ": " + e.what());
            }
            const TypeInfo& ti = type_info(t.type);
            const auto bytes = tensor_bytes(t.type, t.ne[0], t.n_elements());
            if (!bytes) {
                std::string why = "byte size overflows 64 bits";
                if (t.type == GgmlType::I2_S && t.n_elements() % 4 != 0) {
                    why = "I2_S needs a multiple of 4 elements, has " +
                          std::to_string(t.n_elements());
                } else if (t.type != GgmlType::I2_S && t.ne[0] % ti.block_size != 0) {
                    why = "row length " + std::to_string(t.ne[0]) + " is not a multiple of " +
                          std::string(ti.name) + "'s block size " + std::to_string(ti.block_size);
                }
                c_.fail(type_at, tf + " shape", why);
            }
            t.bytes = *bytes;
            const size_t off_at = c_.pos();
            t.offset = c_.read<uint64_t>(tf + " offset");
            if (t.offset % f_.alignment_ != 0) {
                c_.fail(off_at, tf + " offset",
                        std::to_string(t.offset) + " is not a multiple of the alignment " +
                            std::to_string(f_.alignment_));
            }
            f_.tensor_index_.emplace(t.name, f_.tensors_.size());
            f_.tensors_.push_back(std::move(t));
        }
    }

    void read_shape(GgufTensorInfo& t, const std::string& tf) {
        const size_t at = c_.pos();
        t.n_dims = c_.read<uint32_t>(tf + " n_dims");
        if (t.n_dims < 1 || t.n_dims > kMaxDims) {
            c_.fail(at, tf + " n_dims", std::to_string(t.n_dims) + " is outside 1..4");
        }
        int64_t total = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            const size_t dim_at = c_.pos();
            const std::string df = tf + " ne[" + std::to_string(d) + "]";
            t.ne[d] = c_.read<int64_t>(df);
            if (t.ne[d] < 0) c_.fail(dim_at, df, std::to_string(t.ne[d]) + " is negative");
            if (__builtin_mul_overflow(total, t.ne[d], &total)) {
                c_.fail(dim_at, df, "element count overflows 64 bits");
            }
        }
    }

    void data_section() {
        const uint64_t end_of_infos = c_.pos();
        const uint64_t a = f_.alignment_;
        uint64_t data = end_of_infos;
        if (n_tensors_ > 0) data = (end_of_infos + a - 1) / a * a;
        f_.data_offset_ = data;
        const uint64_t size = c_.pos() + c_.remaining();
        if (n_tensors_ > 0 && data > size) {
            c_.fail(end_of_infos, "data section",
                    "file truncated: data section would start at byte " + std::to_string(data) +
                        " but the file has " + std::to_string(size) + " bytes");
        }
        const uint64_t avail = size - std::min(size, data);
        std::vector<const GgufTensorInfo*> order;
        order.reserve(f_.tensors_.size());
        for (const GgufTensorInfo& t : f_.tensors_) {
            if (t.offset > avail || t.bytes > avail - t.offset) {
                c_.fail(end_of_infos, "tensor " + quoted(t.name) + " data",
                        "bytes " + std::to_string(t.offset) + ".." + std::to_string(t.offset) +
                            "+" + std::to_string(t.bytes) +
                            " of the data section lie outside the file (" + std::to_string(avail) +
                            " data bytes; file truncated?)");
            }
            order.push_back(&t);
        }
        std::sort(order.begin(), order.end(),
                  [](const auto* x, const auto* y) { return x->offset < y->offset; });
        for (size_t i = 1; i < order.size(); ++i) {
            const GgufTensorInfo& prev = *order[i - 1];
            const GgufTensorInfo& cur = *order[i];
            if (prev.bytes > 0 && cur.offset < prev.offset + prev.bytes) {
                c_.fail(end_of_infos, "tensor " + quoted(cur.name) + " data",
                        "overlaps tensor " + quoted(prev.name) + " (offsets " +
                            std::to_string(prev.offset) + "+" + std::to_string(prev.bytes) +
                            " and " + std::to_string(cur.offset) + ")");
            }
        }
    }

    GgufFile& f_;
    Cursor c_;
    uint64_t n_tensors_ = 0;
    uint64_t n_kv_ = 0;
    std::string architecture_;
};

GgufFile GgufFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    GgufFile f;
    f.bytes_ = bytes;
    f.name_ = name;
    GgufParser(f, bytes).run();
    return f;
}

GgufFile GgufFile::open(const std::string& path) {
    auto mapping = std::make_shared<const MappedFile>(path);
    GgufFile f = parse(mapping->bytes(), path);
    f.mapping_ = std::move(mapping);
    return f;
}

std::string GgufFile::architecture() const {
    const GgufValue* v = metadata_.find("general.architecture");
    if (v == nullptr || v->type() != GgufType::String) return "";
    return std::get<std::string>(v->data);
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
    const GgufTensorInfo* t = find_tensor(name);
    if (t == nullptr) throw Error(name_ + ": tensor '" + std::string(name) + "' is missing");
    return *t;
}

std::span<const uint8_t> GgufFile::tensor_data(const GgufTensorInfo& info) const {
    return bytes_.subspan(data_offset_ + info.offset, info.bytes);
}

}  // namespace bitnet
