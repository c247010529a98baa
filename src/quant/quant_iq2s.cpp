// IQ2_S (2.5625 bpw): 32 groups of 8 values per 256, each group a point of a 1024-entry grid
// (10-bit index: qs[g] | 2 bits of qh) with a sign byte, and a 4-bit scale per 16 values.
// The quantizer follows ggml's quantize_row_iq2_s_impl step for step (19 trial scales per 16
// values, snapping off-grid points to the best neighbour under the weighted error), with the
// same float operation order, so the bytes are identical.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "bitnet/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/iq2s_tables.h"

namespace bitnet::quant {

namespace {

constexpr int kMaxQ = 3;
constexpr float kGroupMaxEpsIq2S = 1e-8f;  // ggml's GROUP_MAX_EPS_IQ2_S

// Among the nearest grid points of an off-grid group, the one with the least weighted error at
// `scale`; writes its 2-bit coordinates to codes.
int best_neighbour(const Iq2sSearch& s, uint16_t code, const float* xval, const float* weight,
                   float scale, int8_t* codes) {
    float best_d2 = FLT_MAX;
    int best = -1;
    for (uint16_t k : s.neighbours(code)) {
        const auto& pg = s.point(k);
        float d2 = 0;
        for (int i = 0; i < 8; ++i) {
            const float q = pg[static_cast<size_t>(i)];
            const float diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            best = k;
        }
    }
    if (best < 0) throw Error("IQ2_S: no grid neighbour for point " + std::to_string(code));
    const auto& pg = s.point(best);
    for (int i = 0; i < 8; ++i)
        codes[i] = static_cast<int8_t>((pg[static_cast<size_t>(i)] - 1) / 2);
    return best;
}

// Rounds 8 values at inverse scale `id` to 2-bit coordinates; returns their code.
uint16_t round_group(const float* xval, float id, int8_t* codes) {
    uint16_t u = 0;
    for (int i = 0; i < 8; ++i) {
        const int l = std::max(0, std::min(kMaxQ - 1, nearest_int(0.5f * (id * xval[i] - 1))));
        codes[i] = static_cast<int8_t>(l);
        u = static_cast<uint16_t>(u | (l << (2 * i)));
    }
    return u;
}

uint16_t code_of(const int8_t* codes) {
    uint16_t u = 0;
    for (int i = 0; i < 8; ++i) u = static_cast<uint16_t>(u | (codes[i] << (2 * i)));
    return u;
}

void weighted_sums(const float* weight, const float* xval, const int8_t* codes, float& sumqx,
                   float& sumq2) {
    sumqx = 0;
    sumq2 = 0;
    for (int i = 0; i < 16; ++i) {
        const float w = weight[i];
        const auto q = static_cast<float>(2 * codes[i] + 1);
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
}

// Quantizes 16 values; returns their scale and fills codes and signs. `empty` reports a group too
// small to store (scale 0, nothing written).
float quantize_16(const Iq2sSearch& s, const float* xb, const float* weight, const float* waux,
                  int8_t* codes, uint8_t* signs, bool& empty) {
    float xval[16];
    for (int k = 0; k < 2; ++k) {
        uint8_t sg = 0;
        for (int i = 0; i < 8; ++i) {
            const float v = xb[8 * k + i];
            xval[8 * k + i] = v >= 0 ? v : -v;
            if (!(v >= 0)) sg = static_cast<uint8_t>(sg | (1 << i));
        }
        signs[k] = sg;
    }
    float max = xval[0];
    for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
    std::memset(codes, 0, 16);
    empty = max < kGroupMaxEpsIq2S;
    if (empty) return 0.0f;

    float best = 0;
    float scale = max / (2 * kMaxQ - 1);
    bool on_grid[2] = {true, true};
    int8_t aux[16];
    for (int is = -9; is <= 9; ++is) {
        const float id = (2 * kMaxQ - 1 + static_cast<float>(is) * 0.1f) / max;
        const float this_scale = 1 / id;
        bool on_grid_aux[2];
        for (int k = 0; k < 2; ++k) {
            const uint16_t u = round_group(xval + 8 * k, id, aux + 8 * k);
            on_grid_aux[k] = s.grid_index(u) >= 0;
            if (!on_grid_aux[k])
                best_neighbour(s, u, xval + 8 * k, waux + 8 * k, this_scale, aux + 8 * k);
        }
        float sumqx = 0, sumq2 = 0;
        weighted_sums(weight, xval, aux, sumqx, sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            std::memcpy(codes, aux, 16);
            on_grid[0] = on_grid_aux[0];
            on_grid[1] = on_grid_aux[1];
        }
    }
    if ((!on_grid[0] || !on_grid[1]) && scale > 0) {
        const float id = 1 / scale;
        for (int k = 0; k < 2; ++k) {
            if (on_grid[k]) continue;
            const uint16_t u = round_group(xval + 8 * k, id, codes + 8 * k);
            if (s.grid_index(u) < 0)
                best_neighbour(s, u, xval + 8 * k, waux + 8 * k, scale, codes + 8 * k);
        }
        float sumqx = 0, sumq2 = 0;
        weighted_sums(weight, xval, codes, sumqx, sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) {
        scale = -scale;
        signs[0] = static_cast<uint8_t>(~signs[0]);
        signs[1] = static_cast<uint8_t>(~signs[1]);
    }
    return scale;
}

void quantize_block(const Iq2sSearch& s, const float* xbl, const float* importance, BlockIQ2S& y) {
    std::memset(&y, 0, sizeof(y));
    float sumx2 = 0;
    for (int i = 0; i < kQK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / kQK;

    float scales[kQK / 16];
    float max_scale = 0;
    float weight[16];
    float waux[16];
    int8_t codes[16];
    uint8_t signs[2];
    for (int ib = 0; ib < kQK / 16; ++ib) {
        const float* xb = xbl + 16 * ib;
        if (importance != nullptr) {
            const float* qw = importance + 16 * ib;
            for (int i = 0; i < 16; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
        } else {
            for (int i = 0; i < 16; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
        }
        for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
        bool empty = false;
        const float scale = quantize_16(s, xb, weight, waux, codes, signs, empty);
        scales[ib] = scale;
        if (empty) continue;  // below the noise floor: the group stays all zero
        for (int k = 0; k < 2; ++k) {
            const int grid_index = s.grid_index(code_of(codes + 8 * k));
            if (grid_index < 0) throw Error("IQ2_S: quantized point left the grid");
            const int g = 2 * ib + k;
            y.qs[g] = static_cast<uint8_t>(grid_index & 255);
            y.qh[g / 4] = static_cast<uint8_t>(y.qh[g / 4] | ((grid_index >> 8) << (2 * (g % 4))));
            y.qs[kQK / 8 + g] = signs[k];
        }
        max_scale = std::max(max_scale, scale);
    }
    if (max_scale == 0.0f) return;
    const float d = max_scale / 31;
    y.d = fp32_to_fp16(d * 0.9875f);
    const float id = 1 / d;
    for (int ib = 0; ib < kQK / 16; ++ib) {
        const int l = std::max(0, std::min(15, nearest_int(0.5f * (id * scales[ib] - 1))));
        y.scales[ib / 2] = static_cast<uint8_t>(ib % 2 == 0 ? l : (y.scales[ib / 2] | (l << 4)));
    }
}

}  // namespace

void iq2_s_from_float(const float* x, void* vy, int64_t k, const float* importance) {
    const Iq2sSearch& s = Iq2sSearch::get();
    auto* y = static_cast<BlockIQ2S*>(vy);
    for (int64_t i = 0; i < k / kQK; ++i) {
        quantize_block(s, x + i * kQK, importance != nullptr ? importance + i * kQK : nullptr,
                       y[i]);
    }
}

void iq2_s_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockIQ2S*>(vx);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* qs = x[i].qs;
        const uint8_t* signs = x[i].qs + kQK / 8;
        for (int ib32 = 0; ib32 < kQK / 32; ++ib32) {
            const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib32] & 0xf)) * 0.25f,
                                 d * (0.5f + static_cast<float>(x[i].scales[ib32] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l) {
                const float dl = db[l / 2];
                const int index = qs[l] | ((x[i].qh[ib32] << (8 - 2 * l)) & 0x300);
                const uint64_t g = kIq2sGrid[static_cast<size_t>(index)];
                for (int j = 0; j < 8; ++j) {
                    const auto gb = static_cast<float>((g >> (8 * j)) & 0xff);
                    y[j] = dl * gb * ((signs[l] >> j) & 1 ? -1.f : 1.f);
                }
                y += 8;
            }
            qs += 4;
            signs += 4;
        }
    }
}

}  // namespace bitnet::quant
