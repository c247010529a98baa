// Elementwise and per-row operations of the forward pass, in float32 with ggml's operation
// order where it matters for agreement with llama.cpp (RMSNorm's double-precision sum, RoPE's
// angle recurrence).
#pragma once

#include <cstdint>

namespace bitnet {

// y = x / sqrt(mean(x²) + eps) · w   (w may be null)
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void rms_norm_scalar(const float* x, const float* w, float* y, int64_t n, float eps);
// The float scale 1 / sqrt(mean + eps) of rms_norm from the double sum of the n squares (not
// inline: the AVX2 file calls this one instead of emitting an AVX2 copy that the linker could
// pick for the scalar code).
float rms_scale(double sum, int64_t n, float eps);

enum class RopeStyle { Normal, Neox };
// Rotates the first `rot_dims` of each of `n_heads` heads (head_dim apart) at position `pos`.
// Normal rotates pairs (2i, 2i+1); NeoX rotates (i, i + rot_dims/2).
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dims, int64_t pos,
          float freq_base, RopeStyle style);

// e^x in float. x·log2(e) = k + r with k an integer and |r| <= 1/2 (rounded in double);
// 2^r = e^(r·ln 2) is the Taylor polynomial of degree 10 (coefficients kExpPoly, relative error
// below 3e-13 on that interval), evaluated in double by Horner's rule without fused operations;
// 2^k is added to the exponent field and the double is rounded once to float. So the result is
// the correctly rounded e^x except where e^x lies within about 3e-13 (relative) of a rounding
// boundary of float, and the AVX2 version (exp_f32_avx2 in vec_dot_avx2.cpp), which runs the
// same double operations lane by lane, is bit-identical to this one. x is clamped to
// [-150, 100] first (e^x rounds to 0 and to +Inf beyond); NaN stays NaN.
inline constexpr double kExpLog2e = 0x1.71547652b82fep+0;
inline constexpr double kExpRound = 0x1.8p+52;  // adding it rounds |z| < 2^51 to an integer
inline constexpr double kExpPoly[11] = {
    0x1.0000000000000p+0,  0x1.62e42fefa39efp-1,  0x1.ebfbdff82c58ep-3,  0x1.c6b08d704a0bfp-5,
    0x1.3b2ab6fba4e77p-7,  0x1.5d87fe78a6730p-10, 0x1.430912f86c786p-13, 0x1.ffcbfc588b0c5p-17,
    0x1.62c0223a5c822p-20, 0x1.b5253d395e7c1p-24, 0x1.e4cf5158b8ec7p-28};  // (ln 2)^n / n!
float exp_f32(float x);

// SiLU, x·sigmoid(x) = x / (1 + e^-x), with exp_f32.
inline float silu(float x) {
    return x / (1.0f + exp_f32(-x));
}
inline float relu_squared(float x) {
    return x > 0.0f ? x * x : 0.0f;
}
// g[i] = relu_squared(g[i]) * u[i] (BitNet b1.58's gated FFN), vectorized where the CPU allows,
// with the same results.
void relu_squared_glu(float* g, const float* u, int64_t n);
// g[i] = silu(g[i]) * u[i] (the gated FFN of LLaMA and of the upstream `bitnet` architecture),
// vectorized where the CPU allows, with the same results.
void silu_glu(float* g, const float* u, int64_t n);

}  // namespace bitnet
