#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace bitnet {

namespace {

// Element i of a cached row, as float.
template <GgmlType T>
float value_at(const void* row, int64_t i) {
    if constexpr (T == GgmlType::F16) {
        return fp16_to_fp32(static_cast<const uint16_t*>(row)[i]);
    } else if constexpr (T == GgmlType::F32) {
        return static_cast<const float*>(row)[i];
    } else {
        const auto& b = static_cast<const BlockQ8_0*>(row)[i / 32];
        return static_cast<float>(b.qs[i % 32]) * fp16_to_fp32(b.d);
    }
}

template <GgmlType T>
float dot(const float* q, const void* k, int64_t n) {
    if constexpr (T == GgmlType::Q8_0) {
        // Per block: the scale times the float sum of q · (int8 value).
        const auto* b = static_cast<const BlockQ8_0*>(k);
        float sum = 0.0f;
        for (int64_t j = 0; j < n / 32; ++j) {
            float s = 0.0f;
            for (int i = 0; i < 32; ++i) s += q[32 * j + i] * static_cast<float>(b[j].qs[i]);
            sum += fp16_to_fp32(b[j].d) * s;
        }
        return sum;
    } else {
        float sum = 0.0f;
        for (int64_t d = 0; d < n; ++d) sum += q[d] * value_at<T>(k, d);
        return sum;
    }
}

template <GgmlType T>
void dot4(const float* q, int64_t q_stride, const void* k, int64_t n, float* out) {
    for (int h = 0; h < 4; ++h) out[h] = dot<T>(q + h * q_stride, k, n);
}

template <GgmlType T>
void wsum(const float* w, const void* v, int64_t n_keys, int64_t n, float* out) {
    const size_t row = cache_row_bytes(T, n);
    for (int64_t d = 0; d < n; ++d) out[d] = 0.0f;
    for (int64_t p = 0; p < n_keys; ++p) {
        const void* vp = static_cast<const uint8_t*>(v) + static_cast<size_t>(p) * row;
        for (int64_t d = 0; d < n; ++d) out[d] += w[p] * value_at<T>(vp, d);
    }
}

template <GgmlType T>
void wsum4(const float* w, int64_t w_stride, const void* v, int64_t n_keys, int64_t n, float* out,
           int64_t out_stride) {
    for (int h = 0; h < 4; ++h) wsum<T>(w + h * w_stride, v, n_keys, n, out + h * out_stride);
}

float exp_shift(float* x, int64_t n, double* sum) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        s += x[i];
    }
    *sum = s;
    return max;
}

template <GgmlType T>
constexpr CacheKernels kernels_of() {
    return {dot<T>, dot4<T>, wsum<T>, wsum4<T>};
}

}  // namespace

const CacheKernels& AttentionKernels::of(GgmlType type) const {
    switch (type) {
        case GgmlType::F16:
            return f16;
        case GgmlType::F32:
            return f32;
        case GgmlType::Q8_0:
            return q8_0;
        default:
            throw Error("internal: no attention kernels for a " + std::string(type_name(type)) +
                        " cache");
    }
}

bool cache_type_supported(GgmlType type, int64_t n) {
    return type == GgmlType::F16 || type == GgmlType::F32 ||
           (type == GgmlType::Q8_0 && n % 32 == 0);
}

size_t cache_row_bytes(GgmlType type, int64_t n) {
    switch (type) {
        case GgmlType::F32:
            return static_cast<size_t>(n) * 4;
        case GgmlType::Q8_0:
            return static_cast<size_t>(n / 32) * sizeof(BlockQ8_0);
        default:
            return static_cast<size_t>(n) * 2;
    }
}

void cache_store_row(GgmlType type, const float* x, int64_t n, void* dst) {
    switch (type) {
        case GgmlType::F32:
            std::memcpy(dst, x, static_cast<size_t>(n) * 4);
            return;
        case GgmlType::Q8_0:
            // A block holding Inf or NaN is stored with a NaN scale (the quantizer's cast of
            // NaN would be undefined), so that the broken activation reaches the logits check
            // as it does through the f16 and f32 caches.
            for (int64_t b = 0; b < n / 32; ++b) {
                const float* xb = x + 32 * b;
                auto* yb = static_cast<BlockQ8_0*>(dst) + b;
                if (std::all_of(xb, xb + 32, [](float v) { return std::isfinite(v); })) {
                    quant::q8_0_from_float(xb, yb, 32, nullptr);
                } else {
                    std::memset(yb->qs, 0, sizeof yb->qs);
                    yb->d = 0x7E00;  // fp16 NaN
                }
            }
            return;
        default: {
            auto* h = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
            return;
        }
    }
}

const AttentionKernels& attention_scalar() {
    static const AttentionKernels k{kernels_of<GgmlType::F16>(), kernels_of<GgmlType::F32>(),
                                    kernels_of<GgmlType::Q8_0>(), exp_shift, "scalar"};
    return k;
}

const AttentionKernels& attention_kernels() {
    if (active_isa() >= Isa::Avx2) return *attention_avx2();
    return attention_scalar();
}

}  // namespace bitnet
