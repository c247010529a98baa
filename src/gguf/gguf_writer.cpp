// Streams a GGUF file in ggml's own layout: header, metadata, tensor infos, zero padding to
// the alignment, then each tensor's bytes in info order, each padded to the alignment.
#include <cstring>

#include "bitnet/gguf.h"
#include "core/atomic_file.h"

namespace bitnet {

namespace {

uint64_t pad_to(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

class FileSink : public ByteSink {
  public:
    explicit FileSink(AtomicFile& f) : f_(f) {}
    void write(const void* data, size_t n) override {
        f_.write(data, n);
        written_ += n;
    }
    uint64_t written() const { return written_; }

  private:
    AtomicFile& f_;
    uint64_t written_ = 0;
};

template <typename T>
void put(AtomicFile& f, T v) {
    f.write(&v, sizeof(T));
}

void put_string(AtomicFile& f, const std::string& s) {
    put<uint64_t>(f, s.size());
    f.write(s.data(), s.size());
}

void put_array(AtomicFile& f, const GgufArray& a) {
    put<int32_t>(f, static_cast<int32_t>(a.elem_type));
    put<uint64_t>(f, a.size());
    std::visit(
        [&](const auto& v) {
            using E = typename std::decay_t<decltype(v)>::value_type;
            if constexpr (std::is_same_v<E, std::string>) {
                for (const std::string& s : v) put_string(f, s);
            } else {
                f.write(v.data(), v.size() * sizeof(E));
            }
        },
        a.data);
}

void put_value(AtomicFile& f, const GgufValue& v) {
    std::visit(
        [&](const auto& x) {
            using V = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<V, std::string>) {
                put_string(f, x);
            } else if constexpr (std::is_same_v<V, GgufArray>) {
                put_array(f, x);
            } else if constexpr (std::is_same_v<V, bool>) {
                put<uint8_t>(f, x ? 1 : 0);
            } else {
                put<V>(f, x);
            }
        },
        v.data);
}

void check_array(const std::string& key, const GgufArray& a) {
    const bool ok = std::visit(
        [&](const auto& v) {
            using E = typename std::decay_t<decltype(v)>::value_type;
            if (a.elem_type == GgufType::Bool) return std::is_same_v<E, uint8_t>;
            if (a.elem_type == GgufType::Array) return false;
            return gguf_type_of<E>() == a.elem_type;
        },
        a.data);
    if (!ok)
        throw Error("metadata key '" + key + "': array storage does not match its element type");
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        throw Error("GGUF alignment " + std::to_string(alignment) + " is not a power of two");
    }
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::span<const int64_t> ne,
                            Producer produce) {
    const std::string what = "tensor '" + name + "'";
    if (name.empty() || name.size() > 63) throw Error(what + ": name must be 1..63 bytes");
    if (names_.count(name) != 0) throw Error(what + ": duplicate tensor name");
    if (ne.empty() || ne.size() > 4) throw Error(what + ": needs 1..4 dimensions");
    GgufTensorInfo info;
    info.name = name;
    info.type = type;
    info.type_id = static_cast<uint32_t>(type);
    info.n_dims = static_cast<uint32_t>(ne.size());
    int64_t total = 1;
    for (size_t d = 0; d < ne.size(); ++d) {
        if (ne[d] < 0 || __builtin_mul_overflow(total, ne[d], &total)) {
            throw Error(what + ": invalid dimension ne[" + std::to_string(d) + "]");
        }
        info.ne[d] = ne[d];
    }
    const auto bytes = tensor_bytes(type, info.ne[0], total);
    if (!bytes) {
        throw Error(what + ": row length " + std::to_string(info.ne[0]) + " does not fit " +
                    std::string(type_name(type)) + " blocks of " +
                    std::to_string(type_info(type).block_size));
    }
    info.bytes = *bytes;
    names_.emplace(name, tensors_.size());
    tensors_.push_back({std::move(info), std::move(produce)});
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::span<const int64_t> ne,
                            std::span<const uint8_t> bytes) {
    add_tensor(name, type, ne, [bytes](ByteSink& sink) { sink.write(bytes.data(), bytes.size()); });
}

void GgufWriter::write(const std::string& path) {
    uint32_t alignment = alignment_;
    if (const GgufValue* a = metadata_.find("general.alignment")) {
        if (a->type() != GgufType::U32) throw Error("general.alignment must be a u32");
        alignment = std::get<uint32_t>(a->data);
        if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
            throw Error("general.alignment " + std::to_string(alignment) +
                        " is not a power of two");
        }
    } else if (alignment != 32) {
        metadata_.set<uint32_t>("general.alignment", alignment);
    }
    for (const auto& [key, value] : metadata_.entries()) {
        if (key.empty()) throw Error("metadata key is empty");
        if (const auto* a = std::get_if<GgufArray>(&value.data)) check_array(key, *a);
    }
    if (metadata_.contains("general.architecture") &&
        metadata_.find("general.architecture")->type() != GgufType::String) {
        throw Error("general.architecture must be a string");
    }
    const std::string arch = metadata_.get_or<std::string>("general.architecture", "");
    uint64_t offset = 0;
    for (Pending& p : tensors_) {
        if (p.info.type == GgmlType::I2_S && !is_microsoft_bitnet_arch(arch)) {
            throw Error("tensor '" + p.info.name +
                        "': I2_S needs general.architecture bitnet-b1.58 or bitnet-25");
        }
        p.info.offset = offset;
        offset += pad_to(p.info.bytes, alignment);
    }

    AtomicFile f(path);
    put<uint32_t>(f, 0x46554747u);
    put<uint32_t>(f, 3);
    put<uint64_t>(f, tensors_.size());
    put<uint64_t>(f, metadata_.size());
    for (const auto& [key, value] : metadata_.entries()) {
        put_string(f, key);
        put<int32_t>(f, static_cast<int32_t>(value.type()));
        put_value(f, value);
    }
    for (const Pending& p : tensors_) {
        put_string(f, p.info.name);
        put<uint32_t>(f, p.info.n_dims);
        for (uint32_t d = 0; d < p.info.n_dims; ++d) put<int64_t>(f, p.info.ne[d]);
        put<uint32_t>(f, p.info.type_id);
        put<uint64_t>(f, p.info.offset);
    }
    if (!tensors_.empty()) f.write_zeros(pad_to(f.position(), alignment) - f.position());
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Pending& p = tensors_[i];
        FileSink sink(f);
        p.produce(sink);
        if (sink.written() != p.info.bytes) {
            throw Error("tensor '" + p.info.name + "': producer wrote " +
                        std::to_string(sink.written()) + " bytes, expected " +
                        std::to_string(p.info.bytes));
        }
        f.write_zeros(pad_to(p.info.bytes, alignment) - p.info.bytes);
        if (on_progress) on_progress(i + 1, tensors_.size());
    }
    f.commit();
}

}  // namespace bitnet
