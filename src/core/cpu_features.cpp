#include <cpuid.h>

#include <array>
#include <cstdlib>
#include <cstring>

#include "bitnet/cpu.h"
#include "bitnet/error.h"

namespace bitnet {

namespace {

struct Regs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub) {
    Regs r;
    __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
    return r;
}

bool bit(unsigned reg, int n) {
    return ((reg >> n) & 1u) != 0;
}

uint64_t xgetbv0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
    CpuFeatures f;
    const auto max_leaf = static_cast<unsigned>(__get_cpuid_max(0, nullptr));
    if (max_leaf < 1) return f;
    const Regs l1 = cpuid(1, 0);
    f.sse42 = bit(l1.c, 20);
    const bool osxsave = bit(l1.c, 27);
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const bool os_ymm = (xcr0 & 0x6) == 0x6;
    const bool os_zmm = (xcr0 & 0xe6) == 0xe6;
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;
    f.avx = bit(l1.c, 28) && os_ymm;
    f.fma = bit(l1.c, 12) && os_ymm;
    f.f16c = bit(l1.c, 29) && os_ymm;
    if (max_leaf >= 7) {
        const Regs l7 = cpuid(7, 0);
        f.avx2 = bit(l7.b, 5) && os_ymm;
        f.avx512f = bit(l7.b, 16) && os_zmm;
        f.avx512bw = bit(l7.b, 30) && os_zmm;
        f.avx512vl = bit(l7.b, 31) && os_zmm;
        f.avx512vnni = bit(l7.c, 11) && os_zmm;
        f.amx_int8 = bit(l7.d, 25) && os_amx;
        const Regs l71 = cpuid(7, 1);
        f.avx_vnni = bit(l71.a, 4) && os_ymm;
    }
    if (static_cast<unsigned>(__get_cpuid_max(0x80000000u, nullptr)) >= 0x80000004u) {
        std::array<char, 49> brand{};
        for (unsigned i = 0; i < 3; ++i) {
            const Regs r = cpuid(0x80000002u + i, 0);
            std::memcpy(brand.data() + 16 * i, &r.a, 4);
            std::memcpy(brand.data() + 16 * i + 4, &r.b, 4);
            std::memcpy(brand.data() + 16 * i + 8, &r.c, 4);
            std::memcpy(brand.data() + 16 * i + 12, &r.d, 4);
        }
        f.brand = brand.data();
        const size_t first = f.brand.find_first_not_of(' ');
        f.brand = first == std::string::npos ? "" : f.brand.substr(first);
    }
    return f;
}

Isa resolve_active() {
    const Isa best = best_isa();
    const char* env = std::getenv("BITNET_ISA");
    if (env == nullptr || *env == '\0') return best;
    const Isa wanted = parse_isa(env);
    if (static_cast<int>(wanted) > static_cast<int>(best)) {
        throw Error("BITNET_ISA=" + std::string(env) + ": this CPU supports at most " +
                    std::string(isa_name(best)));
    }
    return wanted;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

Isa best_isa() {
    const CpuFeatures& f = cpu_features();
    if (f.avx512f && f.avx512bw && f.avx512vl && f.fma && f.f16c)
        return f.avx512vnni ? Isa::Avx512Vnni : Isa::Avx512;
    if (f.avx2 && f.fma && f.f16c) return Isa::Avx2;
    return Isa::Scalar;
}

Isa active_isa() {
    static const Isa isa = resolve_active();
    return isa;
}

std::string_view isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar:
            return "scalar";
        case Isa::Avx2:
            return "avx2";
        case Isa::Avx512:
            return "avx512";
        case Isa::Avx512Vnni:
            return "avx512vnni";
    }
    return "?";
}

Isa parse_isa(std::string_view name) {
    if (name == "scalar") return Isa::Scalar;
    if (name == "avx2") return Isa::Avx2;
    if (name == "avx512") return Isa::Avx512;
    if (name == "avx512vnni") return Isa::Avx512Vnni;
    throw Error("unknown instruction set '" + std::string(name) +
                "' (expected scalar, avx2, avx512 or avx512vnni)");
}

}  // namespace bitnet
