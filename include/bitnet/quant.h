// Block formats: quantize floats into a ggml type and dequantize back, bit-exact with ggml
// wherever ggml defines the format (tested against libggml-base), plus Microsoft's I2_S.
//
// Row formats work row by row (each row a multiple of the block size). I2_S is a tensor format
// (one scale for the whole tensor), so the API takes whole tensors: n_rows x n_per_row values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bitnet/types.h"

namespace bitnet {

// How Microsoft's I2_S packs codes: x86 builds write blocks of 128 values in 32 bytes (the
// released 2B-4T file); ARM builds since late 2025 write blocks of 64 values in 16 bytes.
enum class I2sLayout { Auto, X86, Arm };

struct QuantOptions {
    // Per-column importance weights (n_per_row floats), as llama-imatrix produces; IQ2_S uses
    // them, Q8_0/TQ1_0/TQ2_0 ignore them as ggml does, others refuse them.
    const float* importance = nullptr;
    I2sLayout i2s_layout = I2sLayout::Auto;
    int threads = 1;
};

// The scalar reference implementation of each format, one entry per type.
struct QuantTraits {
    GgmlType type;
    GgmlType dot_partner;  // the activation format its dot products pair with
    int64_t block_size;
    size_t block_bytes;
    // Rows of k values (k a multiple of block_size); null when the direction is unsupported.
    void (*to_float)(const void* src, float* dst, int64_t k);
    void (*from_float)(const float* src, void* dst, int64_t k, const float* importance);
};

// The traits of a row format; nullptr for types without a scalar implementation (and I2_S).
const QuantTraits* quant_traits(GgmlType type);

bool can_quantize(GgmlType type);
bool can_dequantize(GgmlType type);

// The I2_S layout to use for a tensor of n values: an explicit choice is checked against n;
// Auto reads x86 unless n is a multiple of 64 but not of 128 (which only ARM can hold). The
// file does not record the layout, so Auto cannot tell them apart otherwise.
I2sLayout resolve_i2s_layout(I2sLayout requested, int64_t n);

// Quantizes n_rows x n_per_row floats into `dst` (tensor_bytes(type, ...) bytes). Throws Error
// (NotSupported for unsupported types) naming what is wrong.
void quantize_tensor(GgmlType type, const float* src, int64_t n_rows, int64_t n_per_row,
                     std::span<uint8_t> dst, const QuantOptions& options = {});

// Dequantizes a tensor's bytes into n_rows x n_per_row floats.
void dequantize_tensor(GgmlType type, std::span<const uint8_t> src, int64_t n_rows,
                       int64_t n_per_row, float* dst, const QuantOptions& options = {});

// I2_S helpers: the ternary codes (0 -> -1, 1 -> 0, 2 -> +1) and scale of a packed tensor.
float i2s_scale(std::span<const uint8_t> src, int64_t n);
uint8_t i2s_code(std::span<const uint8_t> src, int64_t index, I2sLayout layout);

}  // namespace bitnet
