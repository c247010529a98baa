#include "bitnet/safetensors.h"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "bitnet/error.h"
#include "core/fp16.h"
#include "core/mapped_file.h"

namespace bitnet {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeader = 100000000;  // the format's own limit on the JSON header (100 MB)

StDtype parse_dtype(const std::string& s, const std::string& where) {
    if (s == "F32") return StDtype::F32;
    if (s == "F16") return StDtype::F16;
    if (s == "BF16") return StDtype::BF16;
    if (s == "U8") return StDtype::U8;
    if (s == "I8") return StDtype::I8;
    static const std::set<std::string> known = {"F64",     "I16", "U16",     "I32",     "U32",
                                                "I64",     "U64", "BOOL",    "F8_E4M3", "F8_E5M2",
                                                "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
    if (known.count(s) != 0) throw NotSupported(where + "dtype " + s);
    throw Error(where + "unknown dtype '" + s + "'");
}

uint64_t to_u64(const json& v, const std::string& where, const char* field) {
    if (!v.is_number_unsigned()) {
        throw Error(where + field + " must hold non-negative integers, not " +
                    (v.is_number() ? v.dump() : std::string("a ") + v.type_name()));
    }
    return v.get<uint64_t>();
}

}  // namespace

const char* st_dtype_name(StDtype t) {
    switch (t) {
        case StDtype::F32:
            return "F32";
        case StDtype::F16:
            return "F16";
        case StDtype::BF16:
            return "BF16";
        case StDtype::U8:
            return "U8";
        case StDtype::I8:
            return "I8";
    }
    return "?";
}

size_t st_dtype_size(StDtype t) {
    switch (t) {
        case StDtype::F32:
            return 4;
        case StDtype::F16:
        case StDtype::BF16:
            return 2;
        case StDtype::U8:
        case StDtype::I8:
            return 1;
    }
    return 1;
}

int64_t StTensor::elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    auto mapped = std::make_shared<MappedFile>(path);
    SafetensorsFile f = parse(mapped->bytes(), path);
    f.mapping_ = std::move(mapped);
    return f;
}

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    SafetensorsFile f;
    f.path_ = name;
    const std::string at = name + ": ";
    if (bytes.size() < 8) {
        throw Error(at + "not a safetensors file: " + std::to_string(bytes.size()) +
                    " bytes, less than the 8-byte header length");
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
    if (n > kMaxHeader) {
        throw Error(at + "header length " + std::to_string(n) +
                    " is over the format's 100 MB limit");
    }
    if (n > bytes.size() - 8) {
        throw Error(at + "header length " + std::to_string(n) + " runs past the end of the file (" +
                    std::to_string(bytes.size()) + " bytes)");
    }
    if (n < 2 || bytes[8] != '{') throw Error(at + "the header does not start with '{'");
    const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
    json header;
    try {
        // The format nests three deep at most (header, entry, shape or offsets) and forbids
        // duplicate keys; both are checked while parsing, so that a hostile header can neither
        // nest without bound nor hide an entry behind a later one.
        std::vector<std::set<std::string>> keys;
        const json::parser_callback_t check = [&](int depth, json::parse_event_t event,
                                                  json& parsed) {
            if (event == json::parse_event_t::object_start ||
                event == json::parse_event_t::array_start) {
                if (depth >= 3) {
                    throw Error(at + "header nests deeper than the format's three levels");
                }
                if (event == json::parse_event_t::object_start) {
                    keys.resize(static_cast<size_t>(depth) + 1);
                    keys[static_cast<size_t>(depth)].clear();
                }
            } else if (event == json::parse_event_t::key) {
                const auto d = static_cast<size_t>(depth) - 1;
                if (d < keys.size() && !keys[d].insert(parsed.get<std::string>()).second) {
                    throw Error(at + "header: the key '" + parsed.get<std::string>() +
                                "' appears twice");
                }
            }
            return true;
        };
        header = json::parse(text, text + n, check);
    } catch (const json::parse_error& e) {
        // e.byte is 1-based within the header text.
        throw Error(at + "header JSON: " + e.what() + " (file offset " +
                    std::to_string(8 + (e.byte > 0 ? e.byte - 1 : 0)) + ")");
    } catch (const json::exception& e) {  // a number out of range (e.g. 2e888) and the like
        throw Error(at + "header JSON: " + e.what());
    }
    if (!header.is_object()) throw Error(at + "the header is not a JSON object");

    const std::span<const uint8_t> data = bytes.subspan(8 + n);
    struct Range {
        uint64_t begin, end;
        size_t tensor;
    };
    std::vector<Range> ranges;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
            if (!value.is_object()) throw Error(at + "__metadata__ is not an object");
            for (const auto& [mk, mv] : value.items()) {
                if (!mv.is_string()) {
                    throw Error(
                        fmt::format("{}__metadata__.{} is not a string (the format "
                                    "allows only strings there)",
                                    at, mk));
                }
                f.metadata_[mk] = mv.get<std::string>();
            }
            continue;
        }
        const std::string where = fmt::format("{}tensor '{}': ", at, key);
        if (!value.is_object()) throw Error(where + "its entry is not an object");
        for (const auto& [field, unused] : value.items()) {
            if (field != "dtype" && field != "shape" && field != "data_offsets")
                throw Error(fmt::format("{}unexpected field '{}'", where, field));
        }
        for (const char* field : {"dtype", "shape", "data_offsets"}) {
            if (!value.contains(field)) throw Error(where + "missing field '" + field + "'");
        }
        if (!value["dtype"].is_string()) throw Error(where + "dtype is not a string");
        StTensor t;
        t.name = key;
        t.dtype = parse_dtype(value["dtype"].get<std::string>(), where);
        const json& shape = value["shape"];
        if (!shape.is_array()) throw Error(where + "shape is not an array");
        if (shape.size() > 8) {
            throw Error(where + "shape has " + std::to_string(shape.size()) +
                        " dimensions; at most 8 are supported");
        }
        // Elements and bytes the shape implies: every partial product of the dimensions stays
        // within int64 (StTensor::elements), whatever comes after it.
        uint64_t elements = 1;
        for (const json& d : shape) {
            const uint64_t v = to_u64(d, where, "shape");
            const auto max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
            if (v > max || (v != 0 && elements > max / v)) {
                throw Error(where + "shape " + shape.dump() + " is too large");
            }
            elements *= v;
            t.shape.push_back(static_cast<int64_t>(v));
        }
        const uint64_t size = st_dtype_size(t.dtype);
        if (elements > std::numeric_limits<uint64_t>::max() / size) {
            throw Error(where + "shape " + shape.dump() + " is too large");
        }
        const uint64_t expect = elements * size;
        const json& offsets = value["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2)
            throw Error(where + "data_offsets must be [begin, end]");
        const uint64_t b = to_u64(offsets[0], where, "data_offsets");
        const uint64_t e = to_u64(offsets[1], where, "data_offsets");
        if (e < b)
            throw Error(where + "data_offsets end " + std::to_string(e) + " is before begin " +
                        std::to_string(b));
        if (e > data.size()) {
            throw Error(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                        "] run past the data area (" + std::to_string(data.size()) + " bytes)");
        }
        if (e - b != expect) {
            throw Error(where + "shape " + shape.dump() + " of " + st_dtype_name(t.dtype) + " is " +
                        std::to_string(expect) + " bytes but data_offsets span " +
                        std::to_string(e - b));
        }
        t.bytes = data.subspan(b, e - b);
        ranges.push_back({b, e, f.tensors_.size()});
        f.tensors_.push_back(std::move(t));
    }
    // The ranges, in order, must tile the data area exactly.
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t pos = 0;
    for (const Range& r : ranges) {
        const std::string& tname = f.tensors_[r.tensor].name;
        if (r.begin < pos) {
            throw Error(
                fmt::format("{}tensor '{}': data_offsets begin {} overlaps the tensor "
                            "before it (which ends at {})",
                            at, tname, r.begin, pos));
        }
        if (r.begin > pos) {
            throw Error(fmt::format("{}tensor '{}': a gap of {} bytes before its data (offset {})",
                                    at, tname, r.begin - pos, pos));
        }
        pos = r.end;
    }
    if (pos != data.size()) {
        throw Error(at + "the tensors cover " + std::to_string(pos) + " of the data area's " +
                    std::to_string(data.size()) + " bytes");
    }
    // Data order for the caller.
    std::vector<StTensor> ordered;
    ordered.reserve(ranges.size());
    for (const Range& r : ranges) ordered.push_back(std::move(f.tensors_[r.tensor]));
    f.tensors_ = std::move(ordered);
    for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
    return f;
}

const StTensor* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<float> st_to_float(const StTensor& t) {
    const auto n = static_cast<size_t>(t.elements());
    std::vector<float> out(n);
    const uint8_t* p = t.bytes.data();
    for (size_t i = 0; i < n; ++i) {
        switch (t.dtype) {
            case StDtype::F32:
                std::memcpy(&out[i], p + 4 * i, 4);
                break;
            case StDtype::F16: {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = fp16_to_fp32(h);
                break;
            }
            case StDtype::BF16: {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = bf16_to_fp32(h);
                break;
            }
            case StDtype::U8:
                out[i] = static_cast<float>(p[i]);
                break;
            case StDtype::I8:
                out[i] = static_cast<float>(static_cast<int8_t>(p[i]));
                break;
        }
    }
    return out;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    SafetensorsCheckpoint c;
    const fs::path single = fs::path(dir) / "model.safetensors";
    const fs::path index = fs::path(dir) / "model.safetensors.index.json";
    std::error_code ec;
    if (fs::exists(index, ec)) {
        json j;
        try {
            const MappedFile m(index.string());
            const auto* text = reinterpret_cast<const char*>(m.bytes().data());
            j = json::parse(text, text + m.bytes().size());
        } catch (const json::exception& e) {
            throw Error(index.string() + ": " + e.what());
        }
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw Error(index.string() + ": no \"weight_map\" object");
        std::map<std::string, std::vector<std::string>> by_shard;
        for (const auto& [name, shard] : j["weight_map"].items()) {
            if (!shard.is_string())
                throw Error(index.string() + ": weight_map." + name + " is not a file name");
            const std::string s = shard.get<std::string>();
            if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..")
                throw Error(fmt::format("{}: weight_map.{}: '{}' is not a file in the folder",
                                        index.string(), name, s));
            by_shard[s].push_back(name);
        }
        for (const auto& [shard, names] : by_shard) {
            c.files_.push_back(SafetensorsFile::open((fs::path(dir) / shard).string()));
            for (const std::string& name : names) {
                if (c.files_.back().find(name) == nullptr)
                    throw Error(fmt::format("{}: '{}' is not in {}", index.string(), name, shard));
            }
        }
    } else if (fs::exists(single, ec)) {
        c.files_.push_back(SafetensorsFile::open(single.string()));
    } else {
        throw Error(dir + ": neither model.safetensors nor model.safetensors.index.json");
    }
    for (const SafetensorsFile& f : c.files_) {
        for (const StTensor& t : f.tensors()) {
            if (!c.index_.emplace(t.name, &t).second)
                throw Error(f.path() + ": tensor '" + t.name + "' is also in another shard");
        }
    }
    return c;
}

const StTensor* SafetensorsCheckpoint::find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : it->second;
}

std::vector<const StTensor*> SafetensorsCheckpoint::tensors() const {
    std::vector<const StTensor*> out;
    for (const SafetensorsFile& f : files_) {
        for (const StTensor& t : f.tensors()) out.push_back(&t);
    }
    return out;
}

}  // namespace bitnet
