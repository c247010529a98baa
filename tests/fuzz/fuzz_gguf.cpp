// libFuzzer target: the GGUF reader must reject every malformed input with bitnet::Error,
// never crash, read out of bounds, overflow or allocate without bound.
#include <cstddef>
#include <cstdint>

#include "bitnet/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const bitnet::GgufFile f = bitnet::GgufFile::parse({data, size}, "fuzz.gguf");
        uint64_t sum = 0;
        for (const auto& t : f.tensors()) {
            for (uint8_t b : f.tensor_data(t)) sum += b;
        }
        (void)f.metadata().get_or<uint32_t>("general.alignment", 0);
        (void)sum;
    } catch (const bitnet::Error&) {
    }
    return 0;
}
