// The traits table and the tensor-level quantize/dequantize entry points (row formats are
// split across threads by rows; I2_S is handled as the whole-tensor format it is).
#include "bitnet/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "bitnet/error.h"
#include "quant/formats.h"

namespace bitnet {

namespace {

using T = GgmlType;

constexpr QuantTraits kTraits[] = {
    {T::F32, T::F32, 1, 4, quant::f32_to_float, quant::f32_from_float},
    {T::F16, T::F32, 1, 2, quant::f16_to_float, quant::f16_from_float},
    {T::BF16, T::F32, 1, 2, quant::bf16_to_float, quant::bf16_from_float},
    {T::Q8_0, T::Q8_0, 32, 34, quant::q8_0_to_float, quant::q8_0_from_float},
    {T::Q4_0, T::Q8_0, 32, 18, quant::q4_0_to_float, quant::q4_0_from_float},
    {T::Q8_K, T::Q8_K, 256, 292, quant::q8_k_to_float, quant::q8_k_from_float},
    {T::Q4_K, T::Q8_K, 256, 144, quant::q4_k_to_float, quant::q4_k_from_float},
    {T::Q6_K, T::Q8_K, 256, 210, quant::q6_k_to_float, quant::q6_k_from_float},
    {T::TQ1_0, T::Q8_K, 256, 54, quant::tq1_0_to_float, quant::tq1_0_from_float},
    {T::TQ2_0, T::Q8_K, 256, 66, quant::tq2_0_to_float, quant::tq2_0_from_float},
    {T::IQ2_S, T::Q8_K, 256, 82, quant::iq2_s_to_float, quant::iq2_s_from_float},
};

constexpr int64_t kI2sX86Block = 128;  // values per 32 bytes
constexpr int64_t kI2sArmBlock = 64;   // values per 16 bytes

int64_t i2s_block(I2sLayout layout) {
    return layout == I2sLayout::Arm ? kI2sArmBlock : kI2sX86Block;
}

// Byte and bit shift of value `index` in an I2_S tensor.
std::pair<size_t, int> i2s_position(int64_t index, I2sLayout layout) {
    const int64_t block = i2s_block(layout);
    const int64_t stride = block / 4;  // bytes per block = values per bit plane
    const int64_t b = index / block;
    const int64_t j = index % block;
    return {static_cast<size_t>(b * stride + j % stride), 6 - 2 * static_cast<int>(j / stride)};
}

void check_size(GgmlType type, size_t have, int64_t n_rows, int64_t n_per_row, const char* what) {
    const auto need = tensor_bytes(type, n_per_row, n_rows * n_per_row);
    if (!need) {
        throw Error(std::string(type_name(type)) + ": row length " + std::to_string(n_per_row) +
                    " is not a multiple of the block size " +
                    std::to_string(type_info(type).block_size));
    }
    if (have != *need) {
        throw Error(std::string(type_name(type)) + ": " + what + " has " + std::to_string(have) +
                    " bytes, expected " + std::to_string(*need));
    }
}

// Runs f(first_row, row_count) over n_rows split into contiguous chunks on up to `threads`.
template <typename F>
void for_rows(int64_t n_rows, int threads, F&& f) {
    const int64_t workers = std::clamp<int64_t>(threads, 1, std::max<int64_t>(1, n_rows));
    if (workers == 1) {
        f(int64_t{0}, n_rows);
        return;
    }
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
    const int64_t chunk = (n_rows + workers - 1) / workers;
    for (int64_t w = 0; w < workers; ++w) {
        const int64_t first = w * chunk;
        const int64_t count = std::min(chunk, n_rows - first);
        if (count <= 0) break;
        pool.emplace_back([&, w, first, count] {
            try {
                f(first, count);
            } catch (...) {
                errors[static_cast<size_t>(w)] = std::current_exception();
            }
        });
    }
    for (auto& t : pool) t.join();
    for (auto& e : errors) {
        if (e) std::rethrow_exception(e);
    }
}

void check_finite(const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(src[i])) {
            throw Error("value " + std::to_string(i) + " is " +
                        (std::isnan(src[i]) ? "NaN" : "infinite") +
                        "; refusing to quantize non-finite weights");
        }
    }
}

// The traits of a row format that supports the direction, or NotSupported.
const QuantTraits& require_traits(GgmlType type, bool quantize) {
    for (const QuantTraits& t : kTraits) {
        if (t.type == type && (quantize ? t.from_float != nullptr : t.to_float != nullptr))
            return t;
    }
    throw NotSupported(std::string(quantize ? "quantizing into " : "dequantizing ") +
                       std::string(type_name(type)));
}

void quantize_i2s(const float* src, int64_t n, std::span<uint8_t> dst, I2sLayout layout) {
    float scale = 0.0f;
    for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(src[i]));
    std::fill(dst.begin(), dst.end(), uint8_t{0});
    for (int64_t i = 0; i < n; ++i) {
        // Microsoft's rule: the sign gives the code, tiny values are zero.
        const uint8_t code = std::fabs(src[i]) < 1e-6f ? 1 : (src[i] > 0 ? 2 : 0);
        const auto [byte, shift] = i2s_position(i, layout);
        dst[byte] = static_cast<uint8_t>(dst[byte] | (code << shift));
    }
    std::memcpy(dst.data() + n / 4, &scale, sizeof(scale));
}

}  // namespace

const QuantTraits* quant_traits(GgmlType type) {
    for (const QuantTraits& t : kTraits) {
        if (t.type == type) return &t;
    }
    return nullptr;
}

bool can_quantize(GgmlType type) {
    if (type == GgmlType::I2_S) return true;
    const QuantTraits* t = quant_traits(type);
    return t != nullptr && t->from_float != nullptr;
}

bool can_dequantize(GgmlType type) {
    if (type == GgmlType::I2_S) return true;
    const QuantTraits* t = quant_traits(type);
    return t != nullptr && t->to_float != nullptr;
}

I2sLayout resolve_i2s_layout(I2sLayout requested, int64_t n) {
    if (requested == I2sLayout::Auto) {
        if (n % kI2sX86Block == 0) return I2sLayout::X86;
        if (n % kI2sArmBlock == 0) return I2sLayout::Arm;  // only the ARM layout can hold it
        throw Error("I2_S: " + std::to_string(n) +
                    " values fill neither layout's blocks (128 or 64)");
    }
    if (n % i2s_block(requested) != 0) {
        throw Error("I2_S: " + std::to_string(n) + " values do not fill the " +
                    (requested == I2sLayout::Arm ? "ARM layout's 64" : "x86 layout's 128") +
                    "-value blocks");
    }
    return requested;
}

float i2s_scale(std::span<const uint8_t> src, int64_t n) {
    float scale = 0.0f;
    if (src.size() < static_cast<size_t>(n / 4) + sizeof(float))
        throw Error("I2_S: tensor data too short");
    std::memcpy(&scale, src.data() + n / 4, sizeof(scale));
    return scale;
}

uint8_t i2s_code(std::span<const uint8_t> src, int64_t index, I2sLayout layout) {
    const auto [byte, shift] = i2s_position(index, layout);
    return static_cast<uint8_t>((src[byte] >> shift) & 3);
}

void quantize_tensor(GgmlType type, const float* src, int64_t n_rows, int64_t n_per_row,
                     std::span<uint8_t> dst, const QuantOptions& o) {
    if (type != GgmlType::I2_S) require_traits(type, true);
    check_size(type, dst.size(), n_rows, n_per_row, "destination");
    const int64_t n = n_rows * n_per_row;
    check_finite(src, n);
    if (type == GgmlType::I2_S) {
        quantize_i2s(src, n, dst, resolve_i2s_layout(o.i2s_layout, n));
        return;
    }
    const QuantTraits& t = require_traits(type, true);
    if (o.importance != nullptr && type != GgmlType::IQ2_S && type != GgmlType::Q8_0 &&
        type != GgmlType::TQ1_0 && type != GgmlType::TQ2_0) {
        throw NotSupported("importance weights for " + std::string(type_name(type)));
    }
    const size_t row_bytes = static_cast<size_t>(n_per_row / t.block_size) * t.block_bytes;
    for_rows(n_rows, o.threads, [&](int64_t first, int64_t count) {
        for (int64_t r = first; r < first + count; ++r) {
            t.from_float(src + r * n_per_row, dst.data() + static_cast<size_t>(r) * row_bytes,
                         n_per_row, type == GgmlType::IQ2_S ? o.importance : nullptr);
        }
    });
}

void dequantize_tensor(GgmlType type, std::span<const uint8_t> src, int64_t n_rows,
                       int64_t n_per_row, float* dst, const QuantOptions& o) {
    if (type != GgmlType::I2_S) require_traits(type, false);
    check_size(type, src.size(), n_rows, n_per_row, "source");
    const int64_t n = n_rows * n_per_row;
    if (type == GgmlType::I2_S) {
        const I2sLayout layout = resolve_i2s_layout(o.i2s_layout, n);
        const float scale = i2s_scale(src, n);
        for (int64_t i = 0; i < n; ++i) {
            // scale · (code − 1); code 3 is never written and reads as +2, as bitnet.cpp's
            // kernels would compute it.
            dst[i] = scale * static_cast<float>(i2s_code(src, i, layout) - 1);
        }
        return;
    }
    const QuantTraits& t = require_traits(type, false);
    const size_t row_bytes = static_cast<size_t>(n_per_row / t.block_size) * t.block_bytes;
    for_rows(n_rows, o.threads, [&](int64_t first, int64_t count) {
        for (int64_t r = first; r < first + count; ++r) {
            t.to_float(src.data() + static_cast<size_t>(r) * row_bytes, dst + r * n_per_row,
                       n_per_row);
        }
    });
}

}  // namespace bitnet
