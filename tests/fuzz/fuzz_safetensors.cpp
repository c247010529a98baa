// libFuzzer target: the safetensors reader must reject every malformed input with bitnet::Error,
// never crash, read out of bounds or overflow; what it accepts must be readable whole.
#include <cstddef>
#include <cstdint>

#include "bitnet/error.h"
#include "bitnet/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const bitnet::SafetensorsFile f = bitnet::SafetensorsFile::parse({data, size}, "fuzz");
        double sum = 0;
        for (const auto& t : f.tensors()) {
            if (t.elements() <= (1 << 16)) {
                for (float v : bitnet::st_to_float(t)) sum += v;
            }
        }
        (void)sum;
    } catch (const bitnet::Error&) {
    }
    return 0;
}
