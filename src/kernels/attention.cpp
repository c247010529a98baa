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
void axpy_f16(float w, const uint16_t* v, float* out, int64_t n) {
    for (int64_t d = 0; d < n; ++d) out[d] += w * fp16_to_fp32(v[d]);
}
void axpy_f32(float w, const float* v, float* out, int64_t n) {
    for (int64_t d = 0; d < n; ++d) out[d] += w * v[d];
}

void dot4_f16(const float* q, int64_t q_stride, const uint16_t* k, int64_t n, float* out) {
    for (int h = 0; h < 4; ++h) out[h] = dot_f16(q + h * q_stride, k, n);
}
void axpy4_f16(const float* w, const uint16_t* v, float* out, int64_t out_stride, int64_t n) {
    for (int h = 0; h < 4; ++h) axpy_f16(w[h], v, out + h * out_stride, n);
}

}  // namespace

const AttentionKernels& attention_scalar() {
    static const AttentionKernels k{dot_f16,  dot_f32,   axpy_f16, axpy_f32,
                                    dot4_f16, axpy4_f16, "scalar"};
    return k;
}

const AttentionKernels& attention_kernels() {
    if (active_isa() >= Isa::Avx2) return *attention_avx2();
    return attention_scalar();
}

}  // namespace bitnet
