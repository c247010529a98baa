#include "bitnet/check.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "bitnet/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

// Where a format keeps its block scale, how it is stored, and whether ggml's quantizer can
// write a negative one (Q4_0, Q8_K and Q6_K take the sign of the largest value).
struct ScaleField {
    size_t offset;
    bool fp16;
    bool may_be_negative;
};

bool scale_field(GgmlType type, ScaleField& f) {
    switch (type) {
        case GgmlType::Q8_0:
            f = {offsetof(BlockQ8_0, d), true, false};
            return true;
        case GgmlType::Q4_0:
            f = {offsetof(BlockQ4_0, d), true, true};
            return true;
        case GgmlType::Q8_K:
            f = {offsetof(BlockQ8K, d), false, true};
            return true;
        case GgmlType::Q4_K:
            f = {offsetof(BlockQ4K, d), true, false};
            return true;
        case GgmlType::Q6_K:
            f = {offsetof(BlockQ6K, d), true, true};
            return true;
        case GgmlType::TQ1_0:
            f = {offsetof(BlockTQ1_0, d), true, false};
            return true;
        case GgmlType::TQ2_0:
            f = {offsetof(BlockTQ2_0, d), true, false};
            return true;
        case GgmlType::IQ2_S:
            f = {offsetof(BlockIQ2S, d), true, false};
            return true;
        default:
            return false;
    }
}

void check_scale(const uint8_t* p, const ScaleField& f, int64_t block, TensorCheck& c) {
    float v = 0.0f;
    bool subnormal = false;
    if (f.fp16) {
        uint16_t h = 0;
        std::memcpy(&h, p + f.offset, 2);
        v = fp16_to_fp32(h);
        subnormal = (h & 0x7c00u) == 0 && (h & 0x3ffu) != 0;
    } else {
        std::memcpy(&v, p + f.offset, 4);
        subnormal = std::fpclassify(v) == FP_SUBNORMAL;
    }
    ++c.scales;
    if (!std::isfinite(v)) return;  // counted with the values
    const bool bad_neg = v < 0.0f && !f.may_be_negative;
    const bool zero = v == 0.0f, huge = std::fabs(v) > kHugeScale;
    c.zero_scales += zero ? 1 : 0;
    c.negative_scales += bad_neg ? 1 : 0;
    c.subnormal_scales += subnormal ? 1 : 0;
    c.huge_scales += huge ? 1 : 0;
    if ((zero || bad_neg || subnormal || huge) && c.first_bad_scale < 0) c.first_bad_scale = block;
}

void count_values(const float* v, int64_t n, int64_t base, TensorCheck& c, bool& any_nonzero) {
    for (int64_t i = 0; i < n; ++i) {
        const float x = v[i];
        if (std::isnan(x)) {
            ++c.nan;
        } else if (std::isinf(x)) {
            ++c.inf;
        } else {
            any_nonzero = any_nonzero || x != 0.0f;
            continue;
        }
        if (c.first_non_finite < 0) c.first_non_finite = base + i;
    }
}

}  // namespace

TensorCheck check_tensor(GgmlType type, std::span<const uint8_t> bytes, int64_t row_length,
                         int64_t n_elements, I2sLayout i2s_layout,
                         const std::function<void(double)>& progress) {
    TensorCheck c;
    if (!can_dequantize(type)) {
        c.checked = false;
        c.skipped = "decoding " + std::string(type_name(type)) + " is not supported";
        return c;
    }
    if (n_elements == 0) return c;  // an empty tensor has nothing to check
    if (row_length <= 0 || n_elements < 0 || n_elements % row_length != 0)
        throw Error("check: " + std::to_string(n_elements) + " values in rows of " +
                    std::to_string(row_length));
    const auto need = tensor_bytes(type, row_length, n_elements);
    if (!need || *need != bytes.size())
        throw Error("check: " + std::string(type_name(type)) + " data of " +
                    std::to_string(bytes.size()) + " bytes for " + std::to_string(n_elements) +
                    " values");
    c.values = static_cast<uint64_t>(n_elements);
    bool any_nonzero = false;
    QuantOptions qo;
    qo.i2s_layout = i2s_layout;
    if (type == GgmlType::I2_S) {
        // One scale for the whole tensor, after the codes; decoded whole (it is one piece).
        std::vector<float> v(static_cast<size_t>(n_elements));
        dequantize_tensor(type, bytes, n_elements / row_length, row_length, v.data(), qo);
        count_values(v.data(), n_elements, 0, c, any_nonzero);
        const ScaleField f{static_cast<size_t>(n_elements / 4), false, false};
        check_scale(bytes.data(), f, 0, c);
        c.all_zero = n_elements > 0 && !any_nonzero;
        return c;
    }
    const TypeInfo& ti = type_info(type);
    const int64_t rows = n_elements / row_length;
    const size_t row_bytes = static_cast<size_t>(row_length / ti.block_size) * ti.block_bytes;
    const int64_t rows_per_piece = std::max<int64_t>(1, (1 << 20) / row_length);
    std::vector<float> v;
    ScaleField f{};
    const bool has_scale = scale_field(type, f);
    for (int64_t r0 = 0; r0 < rows; r0 += rows_per_piece) {
        const int64_t nr = std::min(rows_per_piece, rows - r0);
        const std::span<const uint8_t> piece =
            bytes.subspan(static_cast<size_t>(r0) * row_bytes, static_cast<size_t>(nr) * row_bytes);
        v.resize(static_cast<size_t>(nr * row_length));
        dequantize_tensor(type, piece, nr, row_length, v.data(), qo);
        count_values(v.data(), nr * row_length, r0 * row_length, c, any_nonzero);
        if (has_scale) {
            const int64_t blocks = nr * row_length / ti.block_size;
            const int64_t first = r0 * row_length / ti.block_size;
            for (int64_t b = 0; b < blocks; ++b)
                check_scale(piece.data() + static_cast<size_t>(b) * ti.block_bytes, f, first + b,
                            c);
        }
        if (progress) progress(static_cast<double>(r0 + nr) / static_cast<double>(rows));
    }
    c.all_zero = n_elements > 0 && !any_nonzero;
    return c;
}

}  // namespace bitnet
