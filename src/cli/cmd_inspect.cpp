// `bitnet inspect FILE [--json] [--full]`: what a GGUF file holds.
#include <algorithm>
#include <map>

#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bitnet/gguf.h"
#include "cli/commands.h"

namespace bitnet::cli {

namespace {

using nlohmann::json;

constexpr size_t kJsonArrayLimit = 64;
constexpr size_t kTextArrayLimit = 8;
constexpr size_t kTextStringLimit = 72;

template <typename F>
void for_each_element(const GgufArray& a, size_t limit, F&& f) {
    std::visit(
        [&](const auto& v) {
            const size_t n = std::min(limit, v.size());
            using E = typename std::decay_t<decltype(v)>::value_type;
            for (size_t i = 0; i < n; ++i) {
                if constexpr (std::is_same_v<E, uint8_t>) {
                    if (a.elem_type == GgufType::Bool) {
                        f(GgufValue{v[i] != 0});
                        continue;
                    }
                }
                f(GgufValue{v[i]});
            }
        },
        a.data);
}

json scalar_json(const GgufValue& v) {
    return std::visit(
        [](const auto& x) -> json {
            using V = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<V, GgufArray>) {
                return nullptr;
            } else {
                return json(x);
            }
        },
        v.data);
}

json value_json(const GgufValue& v, bool full) {
    json out = {{"type", gguf_type_name(v.type())}};
    if (const auto* a = std::get_if<GgufArray>(&v.data)) {
        out["elem_type"] = gguf_type_name(a->elem_type);
        out["count"] = a->size();
        if (full || a->size() <= kJsonArrayLimit) {
            json items = json::array();
            for_each_element(*a, a->size(),
                             [&](const GgufValue& e) { items.push_back(scalar_json(e)); });
            out["value"] = std::move(items);
        }
    } else {
        out["value"] = scalar_json(v);
    }
    return out;
}

json shape_json(const GgufTensorInfo& t) {
    json s = json::array();
    for (uint32_t d = 0; d < t.n_dims; ++d) s.push_back(t.ne[d]);
    return s;
}

void print_json(const GgufFile& f, bool full) {
    json meta = json::object();
    for (const auto& [key, value] : f.metadata().entries()) meta[key] = value_json(value, full);
    json tensors = json::array();
    for (const GgufTensorInfo& t : f.tensors()) {
        tensors.push_back({{"name", t.name},
                           {"type", type_name(t.type)},
                           {"type_id", t.type_id},
                           {"shape", shape_json(t)},
                           {"offset", t.offset},
                           {"bytes", t.bytes}});
    }
    json out = {{"version", f.version()},
                {"alignment", f.alignment()},
                {"data_offset", f.data_offset()},
                {"metadata", std::move(meta)},
                {"tensors", std::move(tensors)}};
    // Strings in files need not be UTF-8: replace invalid bytes rather than fail.
    fmt::print("{}\n", out.dump(-1, ' ', false, json::error_handler_t::replace));
}

// A printable, bounded rendering of a string from the file.
std::string quote_text(const std::string& s) {
    std::string out = "\"";
    size_t shown = 0;
    for (unsigned char c : s) {
        if (shown++ >= kTextStringLimit) {
            out += "...";
            break;
        }
        if (c == '"' || c == '\\')
            out += fmt::format("\\{}", static_cast<char>(c));
        else if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
    }
    return out + "\"";
}

std::string scalar_text(const GgufValue& v) {
    return std::visit(
        [](const auto& x) -> std::string {
            using V = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<V, std::string>)
                return quote_text(x);
            else if constexpr (std::is_same_v<V, bool>)
                return x ? "true" : "false";
            else if constexpr (std::is_same_v<V, GgufArray>)
                return "[...]";
            else if constexpr (std::is_same_v<V, uint8_t> || std::is_same_v<V, int8_t>)
                return fmt::format("{}", static_cast<int>(x));
            else
                return fmt::format("{}", x);
        },
        v.data);
}

std::string value_text(const GgufValue& v) {
    const auto* a = std::get_if<GgufArray>(&v.data);
    if (a == nullptr) return scalar_text(v);
    std::string out = "[";
    size_t i = 0;
    for_each_element(*a, kTextArrayLimit,
                     [&](const GgufValue& e) { out += (i++ > 0 ? ", " : "") + scalar_text(e); });
    if (a->size() > kTextArrayLimit)
        out += fmt::format(", ... {} more", a->size() - kTextArrayLimit);
    return out + "]";
}

std::string type_text(const GgufValue& v) {
    if (const auto* a = std::get_if<GgufArray>(&v.data)) {
        return fmt::format("{}[{}]", gguf_type_name(a->elem_type), a->size());
    }
    return std::string(gguf_type_name(v.type()));
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = static_cast<double>(b);
    int u = 0;
    while (x >= 1024.0 && u < 4) {
        x /= 1024.0;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", x, units[u]);
}

std::string human_count(uint64_t n) {
    if (n >= 1000000000ull) return fmt::format("{:.2f} B", static_cast<double>(n) / 1e9);
    if (n >= 1000000ull) return fmt::format("{:.2f} M", static_cast<double>(n) / 1e6);
    if (n >= 1000ull) return fmt::format("{:.2f} K", static_cast<double>(n) / 1e3);
    return fmt::format("{}", n);
}

std::string shape_text(const GgufTensorInfo& t) {
    std::string s;
    for (uint32_t d = 0; d < t.n_dims; ++d) s += (d > 0 ? " x " : "") + std::to_string(t.ne[d]);
    return s;
}

double bits_per_weight(uint64_t bytes, uint64_t elements) {
    return elements == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(elements);
}

void print_text(const GgufFile& f) {
    struct Stat {
        uint64_t tensors = 0, elements = 0, bytes = 0;
    };
    std::map<std::string, Stat> by_type;
    Stat total;
    size_t name_width = 4;
    for (const GgufTensorInfo& t : f.tensors()) {
        Stat& s = by_type[std::string(type_name(t.type))];
        for (Stat* x : {&s, &total}) {
            x->tensors += 1;
            x->elements += static_cast<uint64_t>(t.n_elements());
            x->bytes += t.bytes;
        }
        name_width = std::max(name_width, t.name.size());
    }
    const std::string arch = f.architecture();
    fmt::print("file:          {} ({})\n", f.path(), human_bytes(f.file_size()));
    fmt::print("format:        GGUF v{}, alignment {}, data section at byte {}\n", f.version(),
               f.alignment(), f.data_offset());
    fmt::print("architecture:  {}\n", arch.empty() ? "(none)" : arch);
    if (const GgufValue* n = f.metadata().find("general.name");
        n && n->type() == GgufType::String) {
        fmt::print("name:          {}\n", std::get<std::string>(n->data));
    }
    fmt::print("parameters:    {} ({}) in {} tensors\n", human_count(total.elements),
               total.elements, total.tensors);
    fmt::print("tensor data:   {}, {:.4f} bits per weight\n", human_bytes(total.bytes),
               bits_per_weight(total.bytes, total.elements));
    if (!by_type.empty()) {
        fmt::print("types:\n");
        for (const auto& [name, s] : by_type) {
            fmt::print("  {:<8} {:>5} tensors {:>14} weights {:>12} {:>8.4f} bpw\n", name,
                       s.tensors, s.elements, human_bytes(s.bytes),
                       bits_per_weight(s.bytes, s.elements));
        }
    }
    size_t key_width = 4;
    for (const auto& [key, value] : f.metadata().entries())
        key_width = std::max(key_width, key.size());
    fmt::print("metadata ({} keys):\n", f.metadata().size());
    for (const auto& [key, value] : f.metadata().entries()) {
        fmt::print("  {:<{}}  {:<16} {}\n", key, key_width, type_text(value), value_text(value));
    }
    if (f.tensors().empty()) return;
    fmt::print("tensors ({}):\n", f.tensors().size());
    fmt::print("  {:>5}  {:<{}}  {:<7}  {:<22} {:>14} {:>12}\n", "#", "name", name_width, "type",
               "shape", "offset", "bytes");
    for (size_t i = 0; i < f.tensors().size(); ++i) {
        const GgufTensorInfo& t = f.tensors()[i];
        fmt::print("  {:>5}  {:<{}}  {:<7}  {:<22} {:>14} {:>12}\n", i, t.name, name_width,
                   type_name(t.type), shape_text(t), t.offset, t.bytes);
    }
}

}  // namespace

void register_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Summarize a GGUF file: metadata, tensors, types");
    auto path = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    auto full = std::make_shared<bool>(false);
    cmd->add_option("file", *path, "GGUF file")->required();
    cmd->add_flag("--json", *as_json, "Print one JSON object");
    cmd->add_flag("--full", *full, "With --json: include arrays of any length");
    cmd->callback([=] {
        const GgufFile f = GgufFile::open(*path);
        if (*as_json) {
            print_json(f, *full);
        } else {
            print_text(f);
        }
    });
}

}  // namespace bitnet::cli
