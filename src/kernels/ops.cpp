#include "kernels/ops.h"

#include "bitnet/cpu.h"
#include "kernels/vec_dot_avx2.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bitnet {

float rms_scale(double sum, int64_t n, float eps) {
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    return 1.0f / std::sqrt(mean + eps);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    if (active_isa() >= Isa::Avx2) {
        rms_norm_avx2(x, w, y, n, eps);
    } else {
        rms_norm_scalar(x, w, y, n, eps);
    }
}

void rms_norm_scalar(const float* x, const float* w, float* y, int64_t n, float eps) {
    // ggml sums the float squares in double. Here they go into eight running sums (lane j: every
    // value whose index is j mod 8), as two AVX2 vectors hold them, combined in a fixed order, the
    // rest added one by one: a different rounding of the double sum than ggml's single one, far
    // below what the float mean can show, and the same in rms_norm_avx2.
    double s[8] = {};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        for (int j = 0; j < 8; ++j) s[j] += static_cast<double>(x[k + j] * x[k + j]);
    }
    double sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; k < n; ++k) sum += static_cast<double>(x[k] * x[k]);
    const float scale = rms_scale(sum, n, eps);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
    if (w != nullptr) {
        for (int64_t i = 0; i < n; ++i) y[i] = y[i] * w[i];
    }
}

void relu_squared_glu(float* g, const float* u, int64_t n) {
    if (active_isa() >= Isa::Avx2) {
        relu_squared_glu_avx2(g, u, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) g[i] = relu_squared(g[i]) * u[i];
}

float exp_f32(float x) {
    // NaN passes the clamp and is quieted by the conversion to double, as in exp4; its payload
    // sits above the bits that the exponent addition below touches, so NaN stays NaN.
    x = std::clamp(x, -150.0f, 100.0f);
    const double z = static_cast<double>(x) * kExpLog2e;
    const double kd = z + kExpRound;  // k in the low bits of the significand
    const double r = z - (kd - kExpRound);
    double p = kExpPoly[10];
    for (int i = 9; i >= 0; --i) p = p * r + kExpPoly[i];
    uint64_t bits = 0, k = 0;
    std::memcpy(&bits, &p, 8);
    std::memcpy(&k, &kd, 8);
    bits += k << 52;
    std::memcpy(&p, &bits, 8);
    return static_cast<float>(p);
}

void silu_glu(float* g, const float* u, int64_t n) {
    if (active_isa() >= Isa::Avx2) {
        silu_glu_avx2(g, u, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) g[i] = silu(g[i]) * u[i];
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dims, int64_t pos,
          float freq_base, RopeStyle style) {
    // theta_i = pos · base^(-2i/rot_dims), by repeated multiplication as ggml computes it.
    const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(rot_dims));
    float cs[512], sn[512];
    float theta = static_cast<float>(pos);
    const int64_t half = rot_dims / 2;
    for (int64_t i = 0; i < half && i < 512; ++i) {
        cs[i] = std::cos(theta);
        sn[i] = std::sin(theta);
        theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
            const int64_t a = style == RopeStyle::Neox ? i : 2 * i;
            const int64_t b = style == RopeStyle::Neox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

}  // namespace bitnet
