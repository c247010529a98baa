// F32, F16, BF16, Q8_0, Q4_0 and Q8_K: scalar reference implementations with ggml's exact
// float operation order and rounding (roundf for Q8_0, truncation of x+8.5 for Q4_0,
// nearest_int for Q8_K).
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace bitnet::quant {

void f32_to_float(const void* src, float* dst, int64_t k) {
    std::memcpy(dst, src, static_cast<size_t>(k) * sizeof(float));
}
void f32_from_float(const float* src, void* dst, int64_t k, const float*) {
    std::memcpy(dst, src, static_cast<size_t>(k) * sizeof(float));
}

void f16_to_float(const void* src, float* dst, int64_t k) {
    const auto* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < k; ++i) dst[i] = fp16_to_fp32(h[i]);
}
void f16_from_float(const float* src, void* dst, int64_t k, const float*) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < k; ++i) h[i] = fp32_to_fp16(src[i]);
}

void bf16_to_float(const void* src, float* dst, int64_t k) {
    const auto* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < k; ++i) dst[i] = bf16_to_fp32(h[i]);
}
void bf16_from_float(const float* src, void* dst, int64_t k, const float*) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < k; ++i) h[i] = fp32_to_bf16(src[i]);
}

// Q8_0: d = absmax/127, q = roundf(x/d) (half away from zero).
void q8_0_from_float(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<BlockQ8_0*>(vy);
    for (int64_t i = 0; i < k / 32; ++i, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 32; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
    }
}
void q8_0_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockQ8_0*>(vx);
    for (int64_t i = 0; i < k / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

// Q4_0: d = (signed value of largest magnitude)/-8; nibble = min(15, trunc(x/d + 8.5)).
void q4_0_from_float(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<BlockQ4_0*>(vy);
    for (int64_t i = 0; i < k / 32; ++i, x += 32) {
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < 32; ++j) {
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) {
            const auto lo = static_cast<int8_t>(x[j] * id + 8.5f);
            const auto hi = static_cast<int8_t>(x[16 + j] * id + 8.5f);
            const auto q0 = static_cast<uint8_t>(std::min<int>(15, lo));
            const auto q1 = static_cast<uint8_t>(std::min<int>(15, hi));
            y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}
void q4_0_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockQ4_0*>(vx);
    for (int64_t i = 0; i < k / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            y[j] = static_cast<float>((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

// Q8_K: scale from the signed value of largest magnitude, q = nearest_int(-127/max · x),
// clamped to 127, with per-16 sums for the K-quant dot products.
void q8_k_from_float(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<BlockQ8K*>(vy);
    for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
        float max = 0.0f;
        float amax = 0.0f;
        for (int j = 0; j < kQK; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        std::memset(&y[i], 0, sizeof(BlockQ8K));
        if (amax == 0.0f) continue;
        const float iscale = -127.0f / max;
        for (int j = 0; j < kQK; ++j) {
            y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        }
        for (int j = 0; j < kQK / 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += y[i].qs[j * 16 + l];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1.0f / iscale;
    }
}
void q8_k_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockQ8K*>(vx);
    for (int64_t i = 0; i < k / kQK; ++i) {
        for (int j = 0; j < kQK; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
    }
}

}  // namespace bitnet::quant
