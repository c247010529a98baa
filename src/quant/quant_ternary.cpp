// TQ1_0 and TQ2_0 (upstream ggml's ternary formats), scalar reference implementations.
//
// TQ2_0: 64 bytes of 2-bit codes then fp16 d. Byte qs[j+m] (j in {0,32}, m < 32) holds in
// bits 2n..2n+1 the code (value+1) of element (j/32)*128 + 32n + m.
// TQ1_0: 48 bytes of 5 trits each, 4 bytes of 4 trits each, fp16 d. A byte stores the trits
// t0..t4 (t0 most significant) as ceil(q·256/243) with q = sum t_n·3^(4-n); trit n is read back
// as ((u8)(byte·3^n)·3) >> 8.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace bitnet::quant {

namespace {

float absmax(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    return amax;
}

// -1, 0, 1 -> 0, 1, 2 (lroundf: half away from zero, as ggml)
int trit(float x, float id) {
    return static_cast<int>(std::lroundf(x * id)) + 1;
}

uint8_t pack_trits(const float* x, int stride, int count, float id) {
    uint8_t q = 0;
    for (int n = 0; n < count; ++n) q = static_cast<uint8_t>(q * 3 + trit(x[n * stride], id));
    return q;
}

uint8_t to_fraction(uint8_t q) {
    return static_cast<uint8_t>((static_cast<uint16_t>(q) * 256 + 242) / 243);
}

float trit_value(uint8_t byte, int n, float d) {
    static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
    const auto q = static_cast<uint8_t>(byte * kPow3[n]);
    const int t = (static_cast<uint16_t>(q) * 3) >> 8;
    return static_cast<float>(t - 1) * d;
}

}  // namespace

void tq2_0_from_float(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<BlockTQ2_0*>(vy);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const float d = absmax(x, kQK);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 64; j += 32) {
            for (int m = 0; m < 32; ++m) {
                uint8_t q = 0;
                for (int n = 0; n < 4; ++n)
                    q = static_cast<uint8_t>(q + ((trit(x[m + n * 32], id) & 3) << (2 * n)));
                y[i].qs[j + m] = q;
            }
            x += 128;
        }
    }
}

void tq2_0_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockTQ2_0*>(vx);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 64; j += 32) {
            for (int n = 0; n < 4; ++n) {
                for (int m = 0; m < 32; ++m) {
                    const int q = (x[i].qs[j + m] >> (2 * n)) & 3;
                    *y++ = static_cast<float>(q - 1) * d;
                }
            }
        }
    }
}

void tq1_0_from_float(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<BlockTQ1_0*>(vy);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const float d = absmax(x, kQK);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        // qs[0..31]: elements m + 32n of the first 160; qs[32..47]: m + 16n of the next 80.
        for (int m = 0; m < 32; ++m) y[i].qs[m] = to_fraction(pack_trits(x + m, 32, 5, id));
        x += 160;
        for (int m = 0; m < 16; ++m) y[i].qs[32 + m] = to_fraction(pack_trits(x + m, 16, 5, id));
        x += 80;
        // qh[j]: elements j + 4n of the last 16, with the first trit shifted to the top.
        for (int j = 0; j < 4; ++j) {
            y[i].qh[j] = to_fraction(static_cast<uint8_t>(pack_trits(x + j, 4, 4, id) * 3));
        }
        x += 16;
    }
}

void tq1_0_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockTQ1_0*>(vx);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int n = 0; n < 5; ++n) {
            for (int m = 0; m < 32; ++m) *y++ = trit_value(x[i].qs[m], n, d);
        }
        for (int n = 0; n < 5; ++n) {
            for (int m = 0; m < 16; ++m) *y++ = trit_value(x[i].qs[32 + m], n, d);
        }
        for (int n = 0; n < 4; ++n) {
            for (int j = 0; j < 4; ++j) *y++ = trit_value(x[i].qh[j], n, d);
        }
    }
}

}  // namespace bitnet::quant
