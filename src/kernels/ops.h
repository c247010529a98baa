// Elementwise and per-row operations of the forward pass, in float32 with ggml's operation
// order where it matters for agreement with llama.cpp (RMSNorm's double-precision sum, RoPE's
// angle recurrence).
#pragma once

#include <cstdint>

namespace bitnet {

// y = x / sqrt(mean(x²) + eps) · w   (w may be null)
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

enum class RopeStyle { Normal, Neox };
// Rotates the first `rot_dims` of each of `n_heads` heads (head_dim apart) at position `pos`.
// Normal rotates pairs (2i, 2i+1); NeoX rotates (i, i + rot_dims/2).
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dims, int64_t pos,
          float freq_base, RopeStyle style);

inline float silu(float x) {
    return x / (1.0f + __builtin_expf(-x));
}
inline float relu_squared(float x) {
    return x > 0.0f ? x * x : 0.0f;
}
// g[i] = relu_squared(g[i]) * u[i] (BitNet b1.58's gated FFN), vectorized where the CPU allows,
// with the same results.
void relu_squared_glu(float* g, const float* u, int64_t n);

}  // namespace bitnet
