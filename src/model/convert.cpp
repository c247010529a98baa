#include "bitnet/convert.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/model.h"

namespace bitnet {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The type a tensor should have after conversion, before checking that it fits.
GgmlType wanted_type(const GgufTensorInfo& t, const ConvertOptions& o) {
    if (t.name == "token_embd.weight") return o.embd_type.value_or(t.type);
    if (t.name == "output.weight") return o.output_type.value_or(t.type);
    if (t.n_dims == 2 && ends_with(t.name, ".weight")) return o.type;
    return t.type;
}

// The one I2_S layout a converted file is written in (its kI2sLayoutKey says which): the one
// asked for, else the input's when it has I2_S tensors, else x86 where every tensor fits it.
I2sLayout write_layout(const GgufFile& src, const std::vector<GgmlType>& targets,
                       I2sLayout requested, I2sLayout read) {
    if (requested != I2sLayout::Auto) return requested;
    bool input_i2s = false, fit_x86 = true, fit_arm = true;
    for (size_t i = 0; i < targets.size(); ++i) {
        const GgufTensorInfo& t = src.tensors()[i];
        input_i2s = input_i2s || t.type == GgmlType::I2_S;
        if (targets[i] != GgmlType::I2_S) continue;
        fit_x86 = fit_x86 && t.n_elements() % 128 == 0;
        fit_arm = fit_arm && t.n_elements() % 64 == 0;
    }
    if (input_i2s && read != I2sLayout::Auto) return read;
    return fit_x86 || !fit_arm ? I2sLayout::X86 : I2sLayout::Arm;
}

bool fits(GgmlType type, const GgufTensorInfo& t, I2sLayout layout) {
    if (type != GgmlType::I2_S) return t.ne[0] % type_info(type).block_size == 0;
    try {
        resolve_i2s_layout(layout, t.n_elements());
        return true;
    } catch (const Error&) {
        return false;
    }
}

// "320x320": the shape as quantize reports rows that do not fit.
std::string dims_text(const GgufTensorInfo& t) {
    std::string s;
    for (uint32_t d = 0; d < t.n_dims; ++d) s += (d > 0 ? "x" : "") + std::to_string(t.ne[d]);
    return s;
}

}  // namespace

uint32_t file_type_for(GgmlType type) {
    switch (type) {
        case GgmlType::F32:
            return 0;
        case GgmlType::F16:
            return 1;
        case GgmlType::Q4_0:
            return 2;
        case GgmlType::Q8_0:
            return 7;
        case GgmlType::Q4_K:  // llama.cpp's MOSTLY_Q4_K_S (every matrix Q4_K here)
            return 14;
        case GgmlType::Q6_K:
            return 18;
        case GgmlType::IQ2_S:
            return 28;
        case GgmlType::BF16:
            return 32;
        case GgmlType::TQ1_0:
            return 36;
        case GgmlType::TQ2_0:
            return 37;
        case GgmlType::I2_S:
            return 40;
        default:
            throw NotSupported("a file type for " + std::string(type_name(type)));
    }
}

ConvertReport convert_model(
    const std::string& in, const std::string& out, const ConvertOptions& o,
    const std::function<void(size_t, size_t, const std::string&)>& progress) {
    const auto start = std::chrono::steady_clock::now();
    const GgufFile src = GgufFile::open(in);
    const std::string arch = src.architecture();
    const uint32_t file_type = file_type_for(o.type);
    const I2sLayout read_layout = i2s_layout_for(src, o.i2s_read_layout, nullptr);

    // Decide every tensor's type and check all of them before writing anything.
    std::vector<GgmlType> targets;
    std::vector<std::string> problems;
    if (o.output_type && src.find_tensor("output.weight") == nullptr) {
        throw Error(in +
                    ": --output-type: the file has no output.weight (its output head is "
                    "tied to token_embd.weight); use --embd-type, which sets both");
    }
    for (const GgufTensorInfo& t : src.tensors()) {
        GgmlType to = wanted_type(t, o);
        if (to != t.type && !fits(to, t, o.i2s_layout)) {
            if (o.fallback && fits(*o.fallback, t, o.i2s_layout)) {
                to = *o.fallback;
            } else {
                problems.push_back(t.name + " (" + dims_text(t) + ": rows of " +
                                   std::to_string(t.ne[0]) + " do not fit " +
                                   std::string(type_name(to)) + " blocks of " +
                                   std::to_string(type_info(to).block_size) + ")");
            }
        }
        if (to != t.type) {
            if (!can_dequantize(t.type)) {
                problems.push_back(t.name + " (reading " + std::string(type_name(t.type)) +
                                   " is not supported)");
            } else if (!can_quantize(to)) {
                problems.push_back(t.name + " (writing " + std::string(type_name(to)) +
                                   " is not supported)");
            } else if (to == GgmlType::I2_S && !is_microsoft_bitnet_arch(arch)) {
                problems.push_back(
                    t.name +
                    " (I2_S is Microsoft's format for bitnet-b1.58 files; this file's "
                    "architecture is '" +
                    arch + "')");
            }
        }
        targets.push_back(to);
    }
    // I2_S to I2_S in another layout is a conversion too (the codes move).
    const I2sLayout out_layout = write_layout(src, targets, o.i2s_layout, read_layout);
    std::vector<bool> change(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
        const GgufTensorInfo& t = src.tensors()[i];
        change[i] = targets[i] != t.type;
        if (!change[i] && t.type == GgmlType::I2_S) {
            try {
                change[i] = resolve_i2s_layout(read_layout, t.n_elements()) !=
                            resolve_i2s_layout(out_layout, t.n_elements());
            } catch (const Error& e) {
                problems.push_back(t.name + " (" + e.what() + ")");
            }
        }
    }
    if (!problems.empty()) {
        std::string msg = in + ": cannot convert " + std::to_string(problems.size()) + " tensor" +
                          (problems.size() == 1 ? "" : "s") + ":";
        for (const std::string& p : problems) msg += "\n  " + p;
        if (!o.fallback)
            msg += "\n(--fallback TYPE chooses a type for tensors whose rows do not fit)";
        throw Error(msg);
    }

    GgufWriter w(src.alignment());
    for (const auto& [key, value] : src.metadata().entries()) {
        if (key != kI2sLayoutKey) w.metadata().set(key, value);
    }
    w.metadata().set<uint32_t>("general.file_type", file_type);
    if (std::find(targets.begin(), targets.end(), GgmlType::I2_S) != targets.end())
        w.metadata().set(kI2sLayoutKey, std::string(out_layout == I2sLayout::Arm ? "arm" : "x86"));

    ConvertReport report;
    report.file_bytes_before = src.file_size();
    QuantOptions read_q, write_q;
    read_q.threads = write_q.threads = o.threads;
    read_q.i2s_layout = read_layout;
    write_q.i2s_layout = out_layout;
    for (size_t i = 0; i < src.tensors().size(); ++i) {
        const GgufTensorInfo& t = src.tensors()[i];
        const GgmlType to = targets[i];
        const std::span<const int64_t> ne(t.ne.data(), t.n_dims);
        const uint64_t after = *tensor_bytes(to, t.ne[0], t.n_elements());
        report.tensors.push_back(
            {t.name, t.type, to, static_cast<uint64_t>(t.n_elements()), t.bytes, after, change[i]});
        auto done = [&, i] {
            if (progress) progress(i + 1, src.tensors().size(), t.name);
        };
        if (!change[i]) {
            const auto bytes = src.tensor_data(t);
            w.add_tensor(t.name, to, ne, [bytes, done](ByteSink& sink) {
                sink.write(bytes.data(), bytes.size());
                done();
            });
            continue;
        }
        ++report.converted;
        w.add_tensor(t.name, to, ne, [&src, &t, to, after, read_q, write_q, done](ByteSink& sink) {
            const int64_t rows = t.n_elements() / std::max<int64_t>(1, t.ne[0]);
            std::vector<float> floats(static_cast<size_t>(t.n_elements()));
            try {
                dequantize_tensor(t.type, src.tensor_data(t), rows, t.ne[0], floats.data(), read_q);
                std::vector<uint8_t> bytes(after);
                quantize_tensor(to, floats.data(), rows, t.ne[0], bytes, write_q);
                sink.write(bytes.data(), bytes.size());
            } catch (const Error& e) {
                throw Error("tensor '" + t.name + "': " + e.what());
            }
            done();
        });
    }
    w.write(out);
    report.file_bytes_after = std::filesystem::file_size(out);
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace bitnet
