#include "parity/ggml_ref.h"

#include <dlfcn.h>

#include "support/test_paths.h"

namespace bitnet::test {

const GgmlRef& GgmlRef::get() {
    static const GgmlRef ref;
    return ref;
}

void* GgmlRef::sym(const char* name) const {
    void* p = dlsym(handle, name);
    if (p == nullptr) throw std::runtime_error(std::string("libggml-base.so lacks ") + name);
    return p;
}

template <typename F>
static void bind(F& fn, void* p) {
    fn = reinterpret_cast<F>(p);
}

GgmlRef::GgmlRef() {
    const std::string path = ggml_base_library().string();
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        throw std::runtime_error("cannot load the reference " + path + " (" + dlerror() +
                                 "); run scripts/setup.sh");
    }
    bind(type_name, sym("ggml_type_name"));
    bind(blck_size, sym("ggml_blck_size"));
    bind(type_size, sym("ggml_type_size"));
    bind(fp32_to_fp16, sym("ggml_fp32_to_fp16"));
    bind(fp16_to_fp32, sym("ggml_fp16_to_fp32"));
    bind(fp32_to_bf16, sym("ggml_fp32_to_bf16"));
    bind(bf16_to_fp32, sym("ggml_bf16_to_fp32"));
    bind(gguf_init_from_file, sym("gguf_init_from_file"));
    bind(gguf_free, sym("gguf_free"));
    bind(gguf_get_version, sym("gguf_get_version"));
    bind(gguf_get_alignment, sym("gguf_get_alignment"));
    bind(gguf_get_data_offset, sym("gguf_get_data_offset"));
    bind(gguf_get_n_kv, sym("gguf_get_n_kv"));
    bind(gguf_get_key, sym("gguf_get_key"));
    bind(gguf_get_kv_type, sym("gguf_get_kv_type"));
    bind(gguf_get_arr_type, sym("gguf_get_arr_type"));
    bind(gguf_get_arr_n, sym("gguf_get_arr_n"));
    bind(gguf_get_arr_data, sym("gguf_get_arr_data"));
    bind(gguf_get_arr_str, sym("gguf_get_arr_str"));
    bind(gguf_get_val_data, sym("gguf_get_val_data"));
    bind(gguf_get_val_str, sym("gguf_get_val_str"));
    bind(gguf_get_n_tensors, sym("gguf_get_n_tensors"));
    bind(gguf_get_tensor_name, sym("gguf_get_tensor_name"));
    bind(gguf_get_tensor_type, sym("gguf_get_tensor_type"));
    bind(gguf_get_tensor_offset, sym("gguf_get_tensor_offset"));
    bind(gguf_get_tensor_size, sym("gguf_get_tensor_size"));
    bind(quantize_init, sym("ggml_quantize_init"));
    bind(quantize_row_q8_K_ref, sym("quantize_row_q8_K_ref"));
}

// ggml's own spelling ("q8_0", "q8_K", "iq2_s") is what its symbols use.
static std::string ggml_name(const GgmlRef& g, int type) {
    return g.type_name(type);
}

GgmlRef::QuantizeFn GgmlRef::quantizer(int type) const {
    return reinterpret_cast<QuantizeFn>(
        dlsym(handle, ("quantize_" + ggml_name(*this, type)).c_str()));
}

GgmlRef::DequantizeFn GgmlRef::dequantizer(int type) const {
    if (type == 0) return nullptr;
    return reinterpret_cast<DequantizeFn>(
        dlsym(handle, ("dequantize_row_" + ggml_name(*this, type)).c_str()));
}

}  // namespace bitnet::test
