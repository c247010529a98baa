// Scanning a tensor for values and scales that make a model compute garbage: NaN/Inf, all
// zeros, and block or tensor scales that are zero, negative where the format's quantizer
// never writes a negative one, subnormal in their own storage format, or above 1e4 in
// magnitude. `bitnet inspect --check` runs it over every tensor of a file.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "bitnet/quant.h"
#include "bitnet/types.h"

namespace bitnet {

struct TensorCheck {
    bool checked = true;  // false: the type cannot be decoded here (see `skipped`)
    std::string skipped;  // why it was not checked
    uint64_t values = 0;
    uint64_t nan = 0, inf = 0;
    int64_t first_non_finite = -1;  // element index
    bool all_zero = false;
    uint64_t scales = 0;  // block scales (one per block; I2_S: one per tensor)
    uint64_t zero_scales = 0, negative_scales = 0, subnormal_scales = 0, huge_scales = 0;
    int64_t first_bad_scale = -1;  // block index

    bool ok() const {
        return nan == 0 && inf == 0 && !all_zero && zero_scales == 0 && negative_scales == 0 &&
               subnormal_scales == 0 && huge_scales == 0;
    }
};

// Scales above this magnitude are reported (ternary and 8-bit weights are O(1) or smaller).
constexpr float kHugeScale = 1e4f;

// Checks a tensor of n_elements values in rows of row_length, stored as `type` in `bytes`.
// Decodes in pieces of whole rows, so memory stays small for any tensor size. `progress`
// (optional) receives the fraction done. Throws Error on sizes that do not match the type.
TensorCheck check_tensor(GgmlType type, std::span<const uint8_t> bytes, int64_t row_length,
                         int64_t n_elements, I2sLayout i2s_layout = I2sLayout::Auto,
                         const std::function<void(double)>& progress = {});

}  // namespace bitnet
