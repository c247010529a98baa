// Model conversion: rewrite a GGUF file with its weight matrices in another type
// (`bitnet quantize`). Metadata is kept; general.file_type is set for the new type.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/quant.h"
#include "bitnet/types.h"

namespace bitnet {

struct ConvertOptions {
    GgmlType type = GgmlType::F16;        // for 2-D *.weight tensors
    std::optional<GgmlType> embd_type;    // token_embd.weight (default: unchanged)
    std::optional<GgmlType> output_type;  // output.weight (default: unchanged)
    std::optional<GgmlType> fallback;     // for rows that do not fit `type`'s blocks
    // I2_S layout of the output (recorded under kI2sLayoutKey). Auto: the input's layout when
    // it holds I2_S, else x86 (ARM when a tensor only fits ARM's 64-value blocks). A layout
    // different from the input's repacks its I2_S tensors.
    I2sLayout i2s_layout = I2sLayout::Auto;
    // How to read the input's I2_S tensors. Auto: as its kI2sLayoutKey says, else x86.
    I2sLayout i2s_read_layout = I2sLayout::Auto;
    int threads = 1;
};

struct ConvertedTensor {
    std::string name;
    GgmlType from;
    GgmlType to;
    uint64_t elements;
    uint64_t bytes_before;
    uint64_t bytes_after;
    bool rewritten = false;  // re-encoded (a new type, or I2_S in another layout)
};

struct ConvertReport {
    std::vector<ConvertedTensor> tensors;  // every tensor, in file order
    uint64_t file_bytes_before = 0;
    uint64_t file_bytes_after = 0;
    uint64_t converted = 0;  // tensors re-encoded (see ConvertedTensor::rewritten)
    double seconds = 0;
};

// The llama.cpp general.file_type value for a model mostly of `type` (I2_S: Microsoft's 40).
uint32_t file_type_for(GgmlType type);

// Converts `in` to `out` (written atomically). Checks everything before writing: tensors that
// cannot be converted are all listed in one Error. `progress(done, total, name)` is called
// after each tensor.
ConvertReport convert_model(
    const std::string& in, const std::string& out, const ConvertOptions& options,
    const std::function<void(size_t, size_t, const std::string&)>& progress = {});

}  // namespace bitnet
