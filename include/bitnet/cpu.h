// CPU feature detection and the instruction-set level kernels dispatch on.
//
// The level is chosen once, from cpuid, at the first call to active_isa(). The environment
// variable BITNET_ISA=scalar|avx2|avx512|avx512vnni forces a lower level (for tests and
// comparisons); asking for a level the CPU lacks is an error, never a silent fallback.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace bitnet {

// Levels in order; each includes the ones below it. Avx512Vnni adds vpdpbusd (AVX512_VNNI).
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Vnni = 3 };

struct CpuFeatures {
    bool sse42 = false;
    bool avx = false;
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512vnni = false;
    bool avx_vnni = false;
    bool amx_int8 = false;
    std::string brand;
};

const CpuFeatures& cpu_features();

// Highest level the CPU (and OS) supports: Avx2 needs AVX2+FMA+F16C, Avx512 needs F/BW/VL.
Isa best_isa();

// The level in force: BITNET_ISA if set, else best_isa(). Throws Error for a bad or
// unsupported override.
Isa active_isa();

std::string_view isa_name(Isa isa);
Isa parse_isa(std::string_view name);  // throws Error naming the accepted values

// The machine's streaming-read bandwidth in GB/s (1e9 bytes/s): `threads` threads each read
// their share of a `bytes` buffer; the best of `repetitions` runs. The ceiling for decode,
// which reads every weight once per token. The buffer is the memory the engine holds its
// weights in (2 MiB aligned, advised for transparent huge pages), so the ceiling counts what
// huge pages gain.
double measure_read_bandwidth(int threads, size_t bytes = size_t{1} << 30, int repetitions = 5);

}  // namespace bitnet
