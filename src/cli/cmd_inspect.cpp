// `bitnet inspect FILE [--json] [--full]`: what a GGUF file holds.
#include <unistd.h>

#include <algorithm>
#include <map>

#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bitnet/check.h"
#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/model.h"
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

struct Findings;
json findings_json(const Findings& found);

void print_json(const GgufFile& f, bool full, const Findings& found) {
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
    const json fj = findings_json(found);
    out["assumptions"] = fj["assumptions"];
    out["warnings"] = fj["warnings"];
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

// What the engine will guess and work around when it loads this file (see
// Model::assumptions()), found without loading the weights.
struct Findings {
    std::vector<std::string> assumptions, warnings;
};

Findings findings(const GgufFile& f) {
    Findings out;
    std::string layout;
    try {
        const I2sLayout l = i2s_layout_for(f, I2sLayout::Auto, &layout);
        if (l != I2sLayout::Auto)
            out.assumptions.push_back(std::string("I2_S layout recorded in the file: ") +
                                      (l == I2sLayout::Arm ? "arm" : "x86"));
    } catch (const Error& e) {
        out.warnings.emplace_back(e.what());
    }
    if (!layout.empty()) out.assumptions.push_back(layout);
    if (f.metadata().contains("tokenizer.ggml.model")) {
        try {
            const Tokenizer t = Tokenizer::from_gguf(f.metadata());
            out.assumptions.insert(out.assumptions.end(), t.notes().begin(), t.notes().end());
            out.warnings.insert(out.warnings.end(), t.warnings().begin(), t.warnings().end());
        } catch (const Error& e) {
            out.warnings.push_back(std::string("the tokenizer cannot be loaded: ") + e.what());
        }
    }
    return out;
}

std::string check_text(const TensorCheck& c) {
    std::vector<std::string> parts;
    if (c.nan > 0 || c.inf > 0) {
        parts.push_back(
            fmt::format("{} NaN, {} Inf (first at element {})", c.nan, c.inf, c.first_non_finite));
    }
    if (c.all_zero) parts.emplace_back("all values are zero");
    auto scale = [&](uint64_t n, const char* what) {
        if (n > 0) parts.push_back(fmt::format("{} of {} scales {}", n, c.scales, what));
    };
    scale(c.zero_scales, "zero");
    scale(c.negative_scales, "negative (the format's quantizer never writes one)");
    scale(c.subnormal_scales, "subnormal");
    scale(c.huge_scales, fmt::format("above {:g} in magnitude", kHugeScale).c_str());
    if (c.first_bad_scale >= 0 &&
        c.zero_scales + c.negative_scales + c.subnormal_scales + c.huge_scales > 0)
        parts.push_back(fmt::format("first bad scale in block {}", c.first_bad_scale));
    std::string s;
    for (const std::string& p : parts) s += (s.empty() ? "" : "; ") + p;
    return s;
}

json findings_json(const Findings& found) {
    return {{"assumptions", found.assumptions}, {"warnings", found.warnings}};
}

// Scans every tensor; throws Error (exit 1) when any has a problem.
void check_file(const GgufFile& f, bool as_json) {
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    const I2sLayout layout = i2s_layout_for(f, I2sLayout::Auto, nullptr);
    json tensors = json::array();
    size_t bad = 0, skipped = 0;
    const size_t total = f.tensors().size();
    for (size_t i = 0; i < total; ++i) {
        const GgufTensorInfo& t = f.tensors()[i];
        auto progress = [&](double frac) {
            if (tty)
                fmt::print(stderr, "\r\033[K[{}/{}] {} {:.0f}%", i + 1, total, t.name,
                           100.0 * frac);
        };
        const TensorCheck c =
            check_tensor(t.type, f.tensor_data(t), t.ne[0], t.n_elements(), layout, progress);
        if (tty) fmt::print(stderr, "\r\033[K");
        const std::string problems = c.checked ? check_text(c) : "";
        bad += c.checked && !c.ok() ? 1 : 0;
        skipped += c.checked ? 0 : 1;
        if (as_json) {
            tensors.push_back({{"name", t.name},
                               {"type", type_name(t.type)},
                               {"checked", c.checked},
                               {"ok", c.checked && c.ok()},
                               {"values", c.values},
                               {"nan", c.nan},
                               {"inf", c.inf},
                               {"all_zero", c.all_zero},
                               {"scales", c.scales},
                               {"zero_scales", c.zero_scales},
                               {"negative_scales", c.negative_scales},
                               {"subnormal_scales", c.subnormal_scales},
                               {"huge_scales", c.huge_scales},
                               {"problems", problems},
                               {"skipped", c.skipped}});
        } else if (!c.checked) {
            fmt::print("  {:<40} {:<7} not checked: {}\n", t.name, type_name(t.type), c.skipped);
        } else if (!c.ok()) {
            fmt::print("  {:<40} {:<7} {}\n", t.name, type_name(t.type), problems);
        }
    }
    if (as_json) {
        fmt::print(
            "{}\n",
            json{{"file", f.path()}, {"tensors", tensors}, {"bad", bad}, {"skipped", skipped}}
                .dump());
    } else {
        fmt::print("checked {} of {} tensors: {} with problems{}\n", total - skipped, total, bad,
                   skipped > 0 ? fmt::format(", {} not checked", skipped) : "");
    }
    if (bad > 0) {
        throw Error(
            fmt::format("{}: {} tensor{} with problems", f.path(), bad, bad == 1 ? "" : "s"));
    }
}

}  // namespace

void register_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Summarize a GGUF file: metadata, tensors, types");
    auto path = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    auto full = std::make_shared<bool>(false);
    auto check = std::make_shared<bool>(false);
    cmd->add_option("file", *path, "GGUF file")->required();
    cmd->add_flag("--json", *as_json, "Print one JSON object");
    cmd->add_flag("--full", *full, "With --json: include arrays of any length");
    cmd->add_flag("--check", *check,
                  "Decode every tensor and report NaN/Inf, all-zero tensors and zero, negative, "
                  "subnormal or huge (> 1e4) scales; exit status 1 if any");
    cmd->callback([=] {
        const GgufFile f = GgufFile::open(*path);
        if (*check) {
            check_file(f, *as_json);
            return;
        }
        const Findings found = findings(f);
        if (*as_json) {
            print_json(f, *full, found);
        } else {
            print_text(f);
            if (!found.assumptions.empty()) fmt::print("assumptions:\n");
            for (const std::string& a : found.assumptions) fmt::print("  {}\n", a);
            if (!found.warnings.empty()) fmt::print("warnings:\n");
            for (const std::string& w : found.warnings) fmt::print("  {}\n", w);
        }
    });
}

}  // namespace bitnet::cli
