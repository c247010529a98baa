#include <bit>
#include <cstring>
#include <limits>

#include "bitnet/gguf.h"

namespace bitnet {

std::string_view gguf_type_name(GgufType type) {
    switch (type) {
        case GgufType::U8:
            return "u8";
        case GgufType::I8:
            return "i8";
        case GgufType::U16:
            return "u16";
        case GgufType::I16:
            return "i16";
        case GgufType::U32:
            return "u32";
        case GgufType::I32:
            return "i32";
        case GgufType::F32:
            return "f32";
        case GgufType::Bool:
            return "bool";
        case GgufType::String:
            return "string";
        case GgufType::Array:
            return "array";
        case GgufType::U64:
            return "u64";
        case GgufType::I64:
            return "i64";
        case GgufType::F64:
            return "f64";
    }
    return "invalid";
}

size_t GgufArray::size() const {
    return std::visit([](const auto& v) { return v.size(); }, data);
}

bool GgufArray::operator==(const GgufArray& other) const {
    if (elem_type != other.elem_type || data.index() != other.data.index()) return false;
    return std::visit(
        [&](const auto& a) {
            using V = std::decay_t<decltype(a)>;
            const auto& b = std::get<V>(other.data);
            if constexpr (std::is_same_v<V, std::vector<std::string>>) {
                return a == b;
            } else {
                return a.size() == b.size() &&
                       std::memcmp(a.data(), b.data(), a.size() * sizeof(typename V::value_type)) ==
                           0;
            }
        },
        data);
}

bool GgufValue::operator==(const GgufValue& other) const {
    if (data.index() != other.data.index()) return false;
    // Floats compare by bits so that NaN payloads round-trip as equal.
    if (const auto* f = std::get_if<float>(&data)) {
        return std::bit_cast<uint32_t>(*f) == std::bit_cast<uint32_t>(std::get<float>(other.data));
    }
    if (const auto* d = std::get_if<double>(&data)) {
        return std::bit_cast<uint64_t>(*d) == std::bit_cast<uint64_t>(std::get<double>(other.data));
    }
    return data == other.data;
}

void GgufMetadata::set(const std::string& key, GgufValue value) {
    if (auto it = index_.find(key); it != index_.end()) {
        entries_[it->second].second = std::move(value);
        return;
    }
    index_.emplace(key, entries_.size());
    entries_.emplace_back(key, std::move(value));
}

bool GgufMetadata::erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
    index_.clear();
    for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
    return true;
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const GgufValue& GgufMetadata::require(std::string_view key, GgufType type) const {
    const GgufValue* v = find(key);
    const std::string where = source.empty() ? "" : source + ": ";
    if (v == nullptr) throw Error(where + "metadata key '" + std::string(key) + "' is missing");
    if (v->type() != type) {
        throw Error(where + "metadata key '" + std::string(key) + "' has type " +
                    std::string(gguf_type_name(v->type())) + ", expected " +
                    std::string(gguf_type_name(type)));
    }
    return *v;
}

const GgufArray& GgufMetadata::require_array(std::string_view key, GgufType elem) const {
    const GgufArray& a = std::get<GgufArray>(require(key, GgufType::Array).data);
    if (a.elem_type != elem) {
        const std::string where = source.empty() ? "" : source + ": ";
        throw Error(where + "metadata key '" + std::string(key) + "' is an array of " +
                    std::string(gguf_type_name(a.elem_type)) + ", expected an array of " +
                    std::string(gguf_type_name(elem)));
    }
    return a;
}

uint64_t GgufMetadata::get_uint(std::string_view key) const {
    const GgufValue* v = find(key);
    const std::string where = source.empty() ? "" : source + ": ";
    if (v == nullptr) throw Error(where + "metadata key '" + std::string(key) + "' is missing");
    auto bad = [&](const std::string& why) {
        return Error(where + "metadata key '" + std::string(key) + "' " + why);
    };
    return std::visit(
        [&](const auto& x) -> uint64_t {
            using V = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {
                if constexpr (std::is_signed_v<V>) {
                    if (x < 0) throw bad("is negative (" + std::to_string(x) + ")");
                }
                return static_cast<uint64_t>(x);
            } else {
                throw bad("has type " + std::string(gguf_type_name(v->type())) +
                          ", expected an integer");
            }
        },
        v->data);
}

}  // namespace bitnet
