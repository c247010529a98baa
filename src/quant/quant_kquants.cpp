// Q4_K and Q6_K: dequantization, and quantization byte-exact with ggml's reference quantizers
// (quantize_row_q4_K_ref, quantize_row_q6_K_ref in ggml-quants.c, without importance
// weights): the same search for sub-block scales and mins, the same float expressions in the
// same order, so that every block matches libggml-base (tests/parity/test_quant_parity.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitnet/cpu.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace bitnet::quant {

namespace {

// Six-bit scale and min j (0..7) of a Q4_K block, packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = static_cast<uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS

// Symmetric levels in [-nmax, nmax) for n values, weighted by x² (ggml's make_qx_quants with
// rmse_type 1 and no importance): the plain absmax scale, then nine steps of 0.1 on either
// side, keeping the one with the best weighted fit. levels receives level + nmax; returns the
// scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* levels) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        std::fill(levels, levels + n, int8_t{0});
        return 0.0f;
    }
    const auto level = [&](float iscale, int i) {
        return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    };
    float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = level(iscale, i);
        levels[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        const auto fl = static_cast<float>(l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const auto fl = static_cast<float>(level(iscale, i));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * fl;
            suml2 += w * fl * fl;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(nmax + level(iscale, i));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Asymmetric levels in [0, nmax] with a min (ggml's make_qkx2_quants, squared error): the
// min-max scale, then nstep + 1 candidate scales from (rmin + nmax) / range in steps of rdelta,
// each fitted by weighted least squares for scale and min. Returns the scale; *the_min
// receives minus the min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                       float* the_min, uint8_t* levels_aux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0.0f) min = 0.0f;
    if (max == min) {
        std::fill(levels, levels + n, uint8_t{0});
        *the_min = -min;
        return 0.0f;
    }
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1.0f / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        levels[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        const float diff = scale * static_cast<float>(levels[i]) + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
            levels_aux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const auto fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0.0f;
            for (int i = 0; i < n; ++i) {
                const float diff = this_scale * static_cast<float>(levels_aux[i]) + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                std::copy(levels_aux, levels_aux + n, levels);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

}  // namespace

void q4_k_from_float(const float* x, void* vy, int64_t k, const float*) {
    auto* y = static_cast<BlockQ4K*>(vy);
    uint8_t levels[kQK];
    uint8_t levels_aux[32];
    float weights[32];
    float mins[kQK / 32];
    float scales[kQK / 32];
    for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
        float max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < kQK / 32; ++j) {
            float sum_x2 = 0.0f;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            const float av_x = std::sqrt(sum_x2 / 32.0f);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, levels + 32 * j, &mins[j],
                                         levels_aux, -1.0f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
        const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
        for (int j = 0; j < kQK / 32; ++j) {
            // ggml narrows nearest_int to uint8_t before the MIN.
            const auto ls =
                std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
            const auto lm =
                std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
                y[i].scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
            }
        }
        y[i].d = fp32_to_fp16(max_scale / 63.0f);
        y[i].dmin = fp32_to_fp16(max_min / 63.0f);
        for (int j = 0; j < kQK / 32; ++j) {
            uint8_t sc = 0, m = 0;
            scale_min_k4(j, y[i].scales, sc, m);
            const float d = fp16_to_fp32(y[i].d) * static_cast<float>(sc);
            if (d == 0.0f) continue;
            const float dm = fp16_to_fp32(y[i].dmin) * static_cast<float>(m);
            for (int ii = 0; ii < 32; ++ii) {
                const int l = nearest_int((x[32 * j + ii] + dm) / d);
                levels[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
            }
        }
        uint8_t* q = y[i].qs;
        for (int j = 0; j < kQK; j += 64, q += 32) {
            for (int l = 0; l < 32; ++l)
                q[l] = static_cast<uint8_t>(levels[j + l] | (levels[j + l + 32] << 4));
        }
    }
}

void q6_k_from_float(const float* x, void* vy, int64_t k, const float*) {
    q6_k_from_float_with(x, vy, k, active_isa() >= Isa::Avx2);
}

void q6_k_from_float_with(const float* x, void* vy, int64_t k, bool avx2) {
    auto* y = static_cast<BlockQ6K*>(vy);
    int8_t levels[kQK];
    float scales[kQK / 16];
    for (int64_t i = 0; i < k / kQK; ++i, x += kQK) {
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int ib = 0; ib < kQK / 16; ib += avx2 ? 8 : 1) {
            if (avx2)
                make_qx_quants_x8_avx2(x + 16 * ib, 32, scales + ib, levels + 16 * ib);
            else
                scales[ib] = make_qx_quants(16, 32, x + 16 * ib, levels + 16 * ib);
        }
        for (int ib = 0; ib < kQK / 16; ++ib) {
            const float scale = scales[ib];
            if (std::fabs(scale) > max_abs_scale) {
                max_abs_scale = std::fabs(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < kGroupMaxEps) {
            std::memset(&y[i], 0, sizeof(BlockQ6K));
            continue;
        }
        const float iscale = -128.0f / max_scale;
        y[i].d = fp32_to_fp16(1.0f / iscale);
        for (int ib = 0; ib < kQK / 16; ++ib)
            y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
        for (int j = 0; j < kQK / 16; ++j) {
            const float d = fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[j]);
            if (d == 0.0f) continue;
            if (avx2) {
                levels_for_scale_avx2(x + 16 * j, d, -32, 31, 32, levels + 16 * j);
                continue;
            }
            for (int ii = 0; ii < 16; ++ii) {
                const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d)));
                levels[16 * j + ii] = static_cast<int8_t>(l + 32);
            }
        }
        uint8_t* ql = y[i].ql;
        uint8_t* qh = y[i].qh;
        for (int j = 0; j < kQK; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const auto q1 = static_cast<uint8_t>(levels[j + l] & 0xF);
                const auto q2 = static_cast<uint8_t>(levels[j + l + 32] & 0xF);
                const auto q3 = static_cast<uint8_t>(levels[j + l + 64] & 0xF);
                const auto q4 = static_cast<uint8_t>(levels[j + l + 96] & 0xF);
                ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
                ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
                qh[l] = static_cast<uint8_t>(
                    (levels[j + l] >> 4) | ((levels[j + l + 32] >> 4) << 2) |
                    ((levels[j + l + 64] >> 4) << 4) | ((levels[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void q4_k_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockQ4K*>(vx);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const uint8_t* q = x[i].qs;
        const float d = fp16_to_fp32(x[i].d);
        const float min = fp16_to_fp32(x[i].dmin);
        for (int j = 0, is = 0; j < kQK; j += 64, is += 2, q += 32) {
            uint8_t sc = 0, m = 0;
            scale_min_k4(is, x[i].scales, sc, m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(is + 1, x[i].scales, sc, m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xf) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

void q6_k_to_float(const void* vx, float* y, int64_t k) {
    const auto* x = static_cast<const BlockQ6K*>(vx);
    for (int64_t i = 0; i < k / kQK; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int n = 0; n < kQK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * static_cast<float>(q1);
                y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
                y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
                y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
            }
        }
    }
}

}  // namespace bitnet::quant
