// The real ggml (libggml-base.so from the npm reference), loaded with dlopen and called
// through our own C prototypes. Construction fails the test when the library is missing:
// parity tests never pass silently without their reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace bitnet::test {

struct GgufInitParams {
    bool no_alloc;
    void** ctx;
};

class GgmlRef {
  public:
    // Loads the library once per process; throws std::runtime_error if it cannot.
    static const GgmlRef& get();

    // ggml.h
    const char* (*type_name)(int type) = nullptr;
    int64_t (*blck_size)(int type) = nullptr;
    size_t (*type_size)(int type) = nullptr;
    uint16_t (*fp32_to_fp16)(float) = nullptr;
    float (*fp16_to_fp32)(uint16_t) = nullptr;
    uint16_t (*fp32_to_bf16)(float) = nullptr;
    float (*bf16_to_fp32)(uint16_t) = nullptr;

    // gguf.h
    void* (*gguf_init_from_file)(const char* path, GgufInitParams params) = nullptr;
    void (*gguf_free)(void* ctx) = nullptr;
    uint32_t (*gguf_get_version)(const void* ctx) = nullptr;
    size_t (*gguf_get_alignment)(const void* ctx) = nullptr;
    size_t (*gguf_get_data_offset)(const void* ctx) = nullptr;
    int64_t (*gguf_get_n_kv)(const void* ctx) = nullptr;
    const char* (*gguf_get_key)(const void* ctx, int64_t id) = nullptr;
    int (*gguf_get_kv_type)(const void* ctx, int64_t id) = nullptr;
    int (*gguf_get_arr_type)(const void* ctx, int64_t id) = nullptr;
    size_t (*gguf_get_arr_n)(const void* ctx, int64_t id) = nullptr;
    const void* (*gguf_get_arr_data)(const void* ctx, int64_t id) = nullptr;
    const char* (*gguf_get_arr_str)(const void* ctx, int64_t id, size_t i) = nullptr;
    const void* (*gguf_get_val_data)(const void* ctx, int64_t id) = nullptr;
    const char* (*gguf_get_val_str)(const void* ctx, int64_t id) = nullptr;
    int64_t (*gguf_get_n_tensors)(const void* ctx) = nullptr;
    const char* (*gguf_get_tensor_name)(const void* ctx, int64_t id) = nullptr;
    int (*gguf_get_tensor_type)(const void* ctx, int64_t id) = nullptr;
    size_t (*gguf_get_tensor_offset)(const void* ctx, int64_t id) = nullptr;
    size_t (*gguf_get_tensor_size)(const void* ctx, int64_t id) = nullptr;

    // ggml-quants.h
    using QuantizeFn = size_t (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                                  const float* imatrix);
    using DequantizeFn = void (*)(const void* src, float* dst, int64_t k);
    void (*quantize_init)(int type) = nullptr;
    void (*quantize_row_q8_K_ref)(const float* src, void* dst, int64_t k) = nullptr;
    // The quantizer / row dequantizer ggml exports for a type id, or nullptr.
    QuantizeFn quantizer(int type) const;
    DequantizeFn dequantizer(int type) const;

    void* handle = nullptr;

  private:
    GgmlRef();
    void* sym(const char* name) const;
};

}  // namespace bitnet::test
