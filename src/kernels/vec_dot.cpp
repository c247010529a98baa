#include "kernels/vec_dot.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "core/fp16.h"
#include "kernels/vec_dot_avx2.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/iq2s_tables.h"

namespace bitnet {

namespace {

float dot_f32(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const float*>(vw);
    const auto* a = static_cast<const float*>(va);
    float acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) acc[k] += w[i + k] * a[i + k];
    }
    for (; i < n; ++i) acc[0] += w[i] * a[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Half-precision weights against float activations (activations are not rounded).
template <float (*Convert)(uint16_t)>
float dot_half(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint16_t*>(vw);
    const auto* a = static_cast<const float*>(va);
    float acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) acc[k] += Convert(w[i + k]) * a[i + k];
    }
    for (; i < n; ++i) acc[0] += Convert(w[i]) * a[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float dot_q8_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ8_0*>(vw);
    const auto* a = static_cast<const BlockQ8_0*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        int isum = 0;
        for (int j = 0; j < 32; ++j) isum += w[b].qs[j] * a[b].qs[j];
        sum += static_cast<float>(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d));
    }
    return sum;
}

float dot_q4_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ4_0*>(vw);
    const auto* a = static_cast<const BlockQ8_0*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += ((w[b].qs[j] & 0x0f) - 8) * a[b].qs[j];
            isum += ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
        }
        sum += static_cast<float>(isum) * fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
    }
    return sum;
}

float dot_tq2_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockTQ2_0*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        int32_t isum = 0;
        for (int j = 0; j < 64; j += 32) {
            for (int l = 0; l < 4; ++l) {
                for (int k = 0; k < 32; ++k) {
                    isum += a[b].qs[j * 4 + l * 32 + k] * (((w[b].qs[j + k] >> (2 * l)) & 3) - 1);
                }
            }
        }
        sum += static_cast<float>(isum) * (a[b].d * fp16_to_fp32(w[b].d));
    }
    return sum;
}

int trit(uint8_t byte, int n) {
    static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
    const auto q = static_cast<uint8_t>(byte * kPow3[n]);
    return ((static_cast<uint16_t>(q) * 3) >> 8) - 1;
}

float dot_tq1_0(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockTQ1_0*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        const int8_t* q = a[b].qs;
        int32_t isum = 0;
        for (int l = 0; l < 5; ++l) {
            for (int m = 0; m < 32; ++m) isum += trit(w[b].qs[m], l) * q[l * 32 + m];
        }
        for (int l = 0; l < 5; ++l) {
            for (int m = 0; m < 16; ++m) isum += trit(w[b].qs[32 + m], l) * q[160 + l * 16 + m];
        }
        for (int l = 0; l < 4; ++l) {
            for (int j = 0; j < 4; ++j) isum += trit(w[b].qh[j], l) * q[240 + l * 4 + j];
        }
        sum += static_cast<float>(isum) * (fp16_to_fp32(w[b].d) * a[b].d);
    }
    return sum;
}

float dot_iq2_s(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockIQ2S*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sum = 0;
    for (int64_t b = 0; b < n / kQK; ++b) {
        const int8_t* q8 = a[b].qs;
        int bsum = 0;
        for (int ib = 0; ib < 8; ++ib) {
            const int ls[2] = {1 + 2 * (w[b].scales[ib] & 0xf), 1 + 2 * (w[b].scales[ib] >> 4)};
            for (int half = 0; half < 2; ++half) {
                int isum = 0;
                for (int l = 2 * half; l < 2 * half + 2; ++l) {
                    const int g = 4 * ib + l;
                    const int index = w[b].qs[g] | ((w[b].qh[ib] << (8 - 2 * l)) & 0x300);
                    const uint64_t grid = kIq2sGrid[static_cast<size_t>(index)];
                    const uint8_t signs = w[b].qs[32 + g];
                    for (int j = 0; j < 8; ++j) {
                        const int v = static_cast<int>((grid >> (8 * j)) & 0xff);
                        isum += q8[8 * l + j] * (((signs >> j) & 1) ? -v : v);
                    }
                }
                bsum += ls[half] * isum;
            }
            q8 += 32;
        }
        sum += fp16_to_fp32(w[b].d) * a[b].d * static_cast<float>(bsum);
    }
    return 0.125f * sum;
}

// The eight float lanes of the Q4_K and Q6_K dots added in the order of the AVX2 kernels'
// horizontal sum (hsum_f32 in vec_dot_avx2.cpp): lanes l and l+4, then l and l+2, then the two.
float sum_lanes(const float (&s)[8]) {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

float dot_q4_k(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const BlockQ4K*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sums[8] = {};
    for (int64_t b = 0; b < n / kQK; ++b) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; ++j) {
            if (j < 4) {
                sc[j] = w[b].scales[j] & 63;
                mn[j] = w[b].scales[j + 4] & 63;
            } else {
                sc[j] = static_cast<uint8_t>((w[b].scales[j + 4] & 0xf) |
                                             ((w[b].scales[j - 4] >> 6) << 4));
                mn[j] =
                    static_cast<uint8_t>((w[b].scales[j + 4] >> 4) | ((w[b].scales[j] >> 6) << 4));
            }
        }
        // Eight int32 lanes, as the AVX2 kernel forms them: lane l holds the products of each
        // 32-value chunk's values 4l..4l+3, times the chunk's scale, and mins_l times the sum of
        // the activations' 16-value sums 2l and 2l+1. Each lane gets its own float sum, and the
        // eight sums are added at the end in the AVX2 kernel's order (as in dot_q6_k).
        int32_t lanes[8] = {}, mlanes[8] = {};
        for (int j = 0; j < 4; ++j) {  // 64 values: low nibbles then high nibbles of 32 bytes
            for (int p = 0; p < 32; ++p) {
                lanes[p / 4] +=
                    sc[2 * j] * ((w[b].qs[32 * j + p] & 0xf) * a[b].qs[64 * j + p]) +
                    sc[2 * j + 1] * ((w[b].qs[32 * j + p] >> 4) * a[b].qs[64 * j + 32 + p]);
            }
        }
        for (int l = 0; l < 8; ++l) mlanes[l] = mn[l] * (a[b].bsums[2 * l] + a[b].bsums[2 * l + 1]);
        const float d = fp16_to_fp32(w[b].d) * a[b].d, dmin = fp16_to_fp32(w[b].dmin) * a[b].d;
        for (int l = 0; l < 8; ++l) {
            sums[l] += d * static_cast<float>(lanes[l]) - dmin * static_cast<float>(mlanes[l]);
        }
    }
    return sum_lanes(sums);
}

float dot_q6_k(int64_t n, const void* vw, const void* va) {
    // Eight int32 lanes per block, as the AVX2 kernel forms them (kernels/q6k_avx2.h): lane l
    // holds, over the eight 32-value chunks of the block, scale(group) · Σ q·a for the chunk's
    // values 4l..4l+3 (q the unsigned 6-bit code), minus 32 · (scale_2l · bsum_2l +
    // scale_2l+1 · bsum_2l+1). The lanes sum to the block's exact Σ scale_g Σ (q - 32)·a. Each
    // lane is scaled in float and kept in its own running sum across blocks, and the eight sums
    // are added in the AVX2 kernel's horizontal order at the end, so vectorized float
    // accumulation gives the same bits. (ggml keeps 8 float lanes too, but other ones: its
    // results differ from ours by rounding.)
    const auto* w = static_cast<const BlockQ6K*>(vw);
    const auto* a = static_cast<const BlockQ8K*>(va);
    float sums[8] = {};
    for (int64_t b = 0; b < n / kQK; ++b) {
        int32_t lanes[8] = {};
        const uint8_t* ql = w[b].ql;
        const uint8_t* qh = w[b].qh;
        for (int j = 0; j < 2; ++j, ql += 64, qh += 32) {
            for (int k = 0; k < 4; ++k) {
                const int base = 128 * j + 32 * k;
                for (int p = 0; p < 32; ++p) {
                    const uint8_t lo = ql[p + 32 * (k % 2)];
                    const int low = k < 2 ? (lo & 0xf) : (lo >> 4);
                    const int q = low | (((qh[p] >> (2 * k)) & 3) << 4);
                    lanes[p / 4] += w[b].scales[(base + p) / 16] * (q * a[b].qs[base + p]);
                }
            }
        }
        for (int l = 0; l < 8; ++l) {
            lanes[l] -= 32 * (w[b].scales[2 * l] * a[b].bsums[2 * l] +
                              w[b].scales[2 * l + 1] * a[b].bsums[2 * l + 1]);
        }
        const float d = fp16_to_fp32(w[b].d) * a[b].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes[l]);
    }
    return sum_lanes(sums);
}

// I2_S: Σ (code − 1)·q / s, computed as (Σ code·q − Σ q) / s like bitnet.cpp.
template <int kBlock>
float dot_i2s(int64_t n, const void* vw, const void* va) {
    const auto* w = static_cast<const uint8_t*>(vw);
    const auto* h = static_cast<const I8TokenHeader*>(va);
    const auto* q = reinterpret_cast<const int8_t*>(h + 1);
    constexpr int kStride = kBlock / 4;
    int64_t isum = 0;
    for (int64_t b = 0; b < n / kBlock; ++b) {
        const uint8_t* bytes = w + b * kStride;
        const int8_t* qb = q + b * kBlock;
        int32_t s = 0;
        for (int plane = 0; plane < 4; ++plane) {
            const int shift = 6 - 2 * plane;
            for (int k = 0; k < kStride; ++k)
                s += ((bytes[k] >> shift) & 3) * qb[plane * kStride + k];
        }
        isum += s;
    }
    return static_cast<float>(isum - h->sum) / h->s;
}

}  // namespace

ActFormat act_format_for(GgmlType w) {
    switch (w) {
        // Float weights meet float activations: rounding activations to half precision would
        // only lose accuracy (llama.cpp's AVX-512 path does not round them either).
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
            return ActFormat::F32;
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
            return ActFormat::Q8_0;
        case GgmlType::Q4_K:
        case GgmlType::Q6_K:
        case GgmlType::TQ1_0:
        case GgmlType::TQ2_0:
        case GgmlType::IQ2_S:
            return ActFormat::Q8_K;
        case GgmlType::I2_S:
            return ActFormat::I8Token;
        default:
            throw NotSupported("matrix multiplication with " + std::string(type_name(w)) +
                               " weights");
    }
}

size_t act_row_bytes(ActFormat f, int64_t n) {
    switch (f) {
        case ActFormat::F32:
            return static_cast<size_t>(n) * 4;
        case ActFormat::F16:
        case ActFormat::BF16:
            return static_cast<size_t>(n) * 2;
        case ActFormat::Q8_0:
            return static_cast<size_t>(n / 32) * sizeof(BlockQ8_0);
        case ActFormat::Q8_K:
            return static_cast<size_t>(n / kQK) * sizeof(BlockQ8K);
        case ActFormat::I8Token:
            return sizeof(I8TokenHeader) + static_cast<size_t>((n + 3) / 4 * 4);
    }
    return 0;
}

void quantize_activation_row(ActFormat f, const float* x, void* dst, int64_t n) {
    switch (f) {
        case ActFormat::F32:
            std::memcpy(dst, x, static_cast<size_t>(n) * 4);
            return;
        case ActFormat::F16:
            quant::f16_from_float(x, dst, n, nullptr);
            return;
        case ActFormat::BF16:
            quant::bf16_from_float(x, dst, n, nullptr);
            return;
        case ActFormat::Q8_0:
            quant::q8_0_from_float(x, dst, n, nullptr);
            return;
        case ActFormat::Q8_K:
            if (active_isa() >= Isa::Avx2 && q8_k_from_float_avx2(x, dst, n)) return;
            quant::q8_k_from_float(x, dst, n, nullptr);
            return;
        case ActFormat::I8Token:
            if (active_isa() >= Isa::Avx2 && i8_token_from_float_avx2(x, dst, n)) return;
            i8_token_from_float(x, dst, n);
            return;
    }
}

void i8_token_from_float(const float* x, void* dst, int64_t n) {
    float max = 0.0f;
    for (int64_t i = 0; i < n; ++i) max = std::max(max, std::fabs(x[i]));
    auto* h = static_cast<I8TokenHeader*>(dst);
    auto* q = reinterpret_cast<int8_t*>(h + 1);
    const float s = 127.0f / std::max(max, 1e-5f);
    int32_t sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int v = std::clamp(nearest_int(x[i] * s), -128, 127);
        q[i] = static_cast<int8_t>(v);
        sum += v;
    }
    h->s = s;
    h->sum = sum;
}

VecDotFn vec_dot_scalar(GgmlType w, I2sLayout layout) {
    switch (w) {
        case GgmlType::F32:
            return dot_f32;
        case GgmlType::F16:
            return dot_half<fp16_to_fp32>;
        case GgmlType::BF16:
            return dot_half<bf16_to_fp32>;
        case GgmlType::Q8_0:
            return dot_q8_0;
        case GgmlType::Q4_0:
            return dot_q4_0;
        case GgmlType::Q4_K:
            return dot_q4_k;
        case GgmlType::Q6_K:
            return dot_q6_k;
        case GgmlType::TQ1_0:
            return dot_tq1_0;
        case GgmlType::TQ2_0:
            return dot_tq2_0;
        case GgmlType::IQ2_S:
            return dot_iq2_s;
        case GgmlType::I2_S:
            return layout == I2sLayout::Arm ? dot_i2s<64> : dot_i2s<128>;
        default:
            throw NotSupported("matrix multiplication with " + std::string(type_name(w)) +
                               " weights");
    }
}

}  // namespace bitnet
