#include "kernels/attention.h"

#include "bitnet/cpu.h"
#include "core/fp16.h"

namespace bitnet {

namespace {

float dot_f16(const float* q, const uint16_t* k, int64_t n) {
    float dot = 0.0f;
    for (int64_t d = 0; d < n; ++d) dot += q[d] * fp16_to_fp32(k[d]);
    return dot;
}
float dot_f32(const float* q, const float* k, int64_t n) {
    float dot = 0.0f;
    for (int64_t d = 0; d < n; ++d) dot += q[d] * k[d];
    return dot;
}
template <typename T, float (*Convert)(T)>
void wsum(const float* w, const T* v, int64_t n_keys, int64_t n, float* out) {
    for (int64_t d = 0; d < n; ++d) out[d] = 0.0f;
    for (int64_t p = 0; p < n_keys; ++p)
        for (int64_t d = 0; d < n; ++d) out[d] += w[p] * Convert(v[p * n + d]);
}
float as_float(float x) {
    return x;
}
void wsum_f16(const float* w, const uint16_t* v, int64_t n_keys, int64_t n, float* out) {
    wsum<uint16_t, fp16_to_fp32>(w, v, n_keys, n, out);
}
void wsum_f32(const float* w, const float* v, int64_t n_keys, int64_t n, float* out) {
    wsum<float, as_float>(w, v, n_keys, n, out);
}

void dot4_f16(const float* q, int64_t q_stride, const uint16_t* k, int64_t n, float* out) {
    for (int h = 0; h < 4; ++h) out[h] = dot_f16(q + h * q_stride, k, n);
}
void wsum4_f16(const float* w, int64_t w_stride, const uint16_t* v, int64_t n_keys, int64_t n,
               float* out, int64_t out_stride) {
    for (int h = 0; h < 4; ++h) wsum_f16(w + h * w_stride, v, n_keys, n, out + h * out_stride);
}

}  // namespace

const AttentionKernels& attention_scalar() {
    static const AttentionKernels k{dot_f16,  dot_f32,   dot4_f16, wsum_f16,
                                    wsum_f32, wsum4_f16, "scalar"};
    return k;
}

const AttentionKernels& attention_kernels() {
    if (active_isa() >= Isa::Avx2) return *attention_avx2();
    return attention_scalar();
}

}  // namespace bitnet
