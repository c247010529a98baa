// The type table: block geometry per ggml type id, as upstream ggml defines it, plus
// Microsoft's I2_S. Checked against libggml-base's ggml_blck_size/ggml_type_size in the
// parity suite.
#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include "bitnet/error.h"
#include "bitnet/types.h"

namespace bitnet {

namespace {

using T = GgmlType;

constexpr std::array kTypes = {
    TypeInfo{T::F32, "F32", 1, 4},
    TypeInfo{T::F16, "F16", 1, 2},
    TypeInfo{T::Q4_0, "Q4_0", 32, 18},
    TypeInfo{T::Q4_1, "Q4_1", 32, 20},
    TypeInfo{T::Q5_0, "Q5_0", 32, 22},
    TypeInfo{T::Q5_1, "Q5_1", 32, 24},
    TypeInfo{T::Q8_0, "Q8_0", 32, 34},
    TypeInfo{T::Q8_1, "Q8_1", 32, 36},
    TypeInfo{T::Q2_K, "Q2_K", 256, 84},
    TypeInfo{T::Q3_K, "Q3_K", 256, 110},
    TypeInfo{T::Q4_K, "Q4_K", 256, 144},
    TypeInfo{T::Q5_K, "Q5_K", 256, 176},
    TypeInfo{T::Q6_K, "Q6_K", 256, 210},
    TypeInfo{T::Q8_K, "Q8_K", 256, 292},
    TypeInfo{T::IQ2_XXS, "IQ2_XXS", 256, 66},
    TypeInfo{T::IQ2_XS, "IQ2_XS", 256, 74},
    TypeInfo{T::IQ3_XXS, "IQ3_XXS", 256, 98},
    TypeInfo{T::IQ1_S, "IQ1_S", 256, 50},
    TypeInfo{T::IQ4_NL, "IQ4_NL", 32, 18},
    TypeInfo{T::IQ3_S, "IQ3_S", 256, 110},
    TypeInfo{T::IQ2_S, "IQ2_S", 256, 82},
    TypeInfo{T::IQ4_XS, "IQ4_XS", 256, 136},
    TypeInfo{T::I8, "I8", 1, 1},
    TypeInfo{T::I16, "I16", 1, 2},
    TypeInfo{T::I32, "I32", 1, 4},
    TypeInfo{T::I64, "I64", 1, 8},
    TypeInfo{T::F64, "F64", 1, 8},
    TypeInfo{T::IQ1_M, "IQ1_M", 256, 56},
    TypeInfo{T::BF16, "BF16", 1, 2},
    TypeInfo{T::TQ1_0, "TQ1_0", 256, 54},
    TypeInfo{T::TQ2_0, "TQ2_0", 256, 66},
    TypeInfo{T::I2_S, "I2_S", 4, 1},
    TypeInfo{T::MXFP4, "MXFP4", 32, 17},
    TypeInfo{T::NVFP4, "NVFP4", 64, 36},
    TypeInfo{T::Q1_0, "Q1_0", 128, 18},
    TypeInfo{T::Q2_0, "Q2_0", 64, 18},
};

const TypeInfo* find_info(uint32_t id) {
    for (const TypeInfo& t : kTypes) {
        if (static_cast<uint32_t>(t.type) == id) return &t;
    }
    return nullptr;
}

// What upstream ggml says about ids it no longer (or never) assigned.
std::string retired_meaning(uint32_t id) {
    switch (id) {
        case 4:
            return "Q4_2, removed from ggml";
        case 5:
            return "Q4_3, removed from ggml";
        case 31:
            return "Q4_0_4_4, removed from ggml (use Q4_0)";
        case 32:
            return "Q4_0_4_8, removed from ggml (use Q4_0)";
        case 33:
            return "Q4_0_8_8, removed from ggml (use Q4_0)";
        case 36:
            return "IQ4_NL_4_4 (removed from ggml) or Microsoft's I2_S";
        case 37:
            return "IQ4_NL_4_8 (removed from ggml) or a Microsoft bitnet.cpp type";
        case 38:
            return "IQ4_NL_8_8 (removed from ggml) or Microsoft's TL1";
        default:
            return "";
    }
}

}  // namespace

bool is_microsoft_bitnet_arch(std::string_view architecture) {
    return architecture == "bitnet-b1.58" || architecture == "bitnet-25";
}

const TypeInfo& type_info(GgmlType type) {
    const TypeInfo* t = find_info(static_cast<uint32_t>(type));
    if (t == nullptr) {
        throw Error("ggml type id " + std::to_string(static_cast<uint32_t>(type)) + " is unknown");
    }
    return *t;
}

std::span<const TypeInfo> all_types() {
    return kTypes;
}

std::string_view type_name(GgmlType type) {
    return type_info(type).name;
}

std::optional<GgmlType> type_from_name(std::string_view name) {
    for (const TypeInfo& t : kTypes) {
        if (t.name.size() != name.size()) continue;
        const bool same =
            std::equal(t.name.begin(), t.name.end(), name.begin(), [](char a, char b) {
                return std::toupper(static_cast<unsigned char>(a)) ==
                       std::toupper(static_cast<unsigned char>(b));
            });
        if (same) return t.type;
    }
    return std::nullopt;
}

GgmlType resolve_type_id(uint32_t id, std::string_view architecture, const std::string& what) {
    const bool microsoft = is_microsoft_bitnet_arch(architecture);
    const std::string arch_note =
        architecture.empty() ? "the file has no general.architecture"
                             : "general.architecture is '" + std::string(architecture) + "'";
    if (id == static_cast<uint32_t>(GgmlType::I2_S)) {
        if (microsoft) return GgmlType::I2_S;
        throw Error(what + ": ggml type id 36 is " + retired_meaning(id) + "; " + arch_note +
                    ", so it is neither (I2_S needs bitnet-b1.58 or bitnet-25)");
    }
    if (microsoft && (id == 38 || id == 39)) {
        throw NotSupported(what + ": ggml type id " + std::to_string(id) + " in a " +
                           std::string(architecture) + " file is Microsoft's " +
                           (id == 38 ? "TL1" : "TL2 (upstream ggml uses 39 for MXFP4)") +
                           ", a CPU-specific lookup-table layout; convert the model to I2_S");
    }
    if (const TypeInfo* t = find_info(id); t != nullptr) return t->type;
    const std::string retired = retired_meaning(id);
    if (!retired.empty())
        throw Error(what + ": ggml type id " + std::to_string(id) + " is " + retired);
    throw Error(what + ": unknown ggml type id " + std::to_string(id) + " (known ids are 0.." +
                std::to_string(static_cast<uint32_t>(GgmlType::Q2_0)) + ")");
}

std::optional<uint64_t> tensor_bytes(GgmlType type, int64_t row_length, int64_t n_elements) {
    const TypeInfo& t = type_info(type);
    if (row_length < 0 || n_elements < 0) return std::nullopt;
    if (type == GgmlType::I2_S) {
        // Microsoft's layout: 2 bits per value over the whole tensor, then an f32 scale at
        // byte n/4, padded to 32 bytes.
        if (n_elements % 4 != 0) return std::nullopt;
        return static_cast<uint64_t>(n_elements) / 4 + 32;
    }
    if (row_length % t.block_size != 0) return std::nullopt;
    const uint64_t blocks = static_cast<uint64_t>(n_elements / t.block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / t.block_bytes) return std::nullopt;
    return blocks * t.block_bytes;
}

}  // namespace bitnet
