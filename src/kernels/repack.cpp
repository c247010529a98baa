#include "kernels/repack.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "bitnet/cpu.h"
#include "bitnet/error.h"
#include "kernels/gemm.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

// The 256 codes of one TQ2_0 block: value 128h + 32l + k is (qs[32h + k] >> 2l) & 3.
void tq2_codes(const BlockTQ2_0& b, uint8_t* codes) {
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 4; ++l)
            for (int k = 0; k < 32; ++k)
                codes[128 * h + 32 * l + k] =
                    static_cast<uint8_t>((b.qs[32 * h + k] >> (2 * l)) & 3);
}

// The 256 codes (value + 1) of one TQ1_0 block, as the scalar dot reads them: qs[m]'s trit l
// is value 32l + m (m < 32), qs[32 + m]'s is 160 + 16l + m, qh[j]'s is 240 + 4l + j; trit l of
// byte q is ((q · 3^l mod 256) · 3) >> 8.
void tq1_codes(const BlockTQ1_0& b, uint8_t* codes) {
    static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
    const auto trit = [](uint8_t q, int l) {
        const auto m = static_cast<uint8_t>(q * kPow3[l]);
        return static_cast<uint8_t>((static_cast<uint16_t>(m) * 3) >> 8);
    };
    for (int l = 0; l < 5; ++l) {
        for (int m = 0; m < 32; ++m) codes[32 * l + m] = trit(b.qs[m], l);
        for (int m = 0; m < 16; ++m) codes[160 + 16 * l + m] = trit(b.qs[32 + m], l);
    }
    for (int l = 0; l < 4; ++l)
        for (int j = 0; j < 4; ++j) codes[240 + 4 * l + j] = trit(b.qh[j], l);
}

// The codes of one I2_S block (128 values x86, 64 ARM): value (block / 4) p + k is
// (byte[k] >> (6 - 2p)) & 3.
void i2s_codes(const uint8_t* block, int values, uint8_t* codes) {
    const int stride = values / 4;
    for (int p = 0; p < 4; ++p)
        for (int k = 0; k < stride; ++k)
            codes[stride * p + k] = static_cast<uint8_t>((block[k] >> (6 - 2 * p)) & 3);
}

// Row r's part of n/16 vectors from its n codes (vectors 64 bytes apart).
void pack_row(const uint8_t* codes, int64_t n, int r, uint8_t* out) {
    for (int64_t q = 0; q < n / 16; ++q) {
        const uint8_t* c = codes + 16 * q;
        uint8_t* o = out + 64 * q + 4 * r;
        for (int j = 0; j < 4; ++j)
            o[j] =
                static_cast<uint8_t>(c[j] | (c[4 + j] << 2) | (c[8 + j] << 4) | (c[12 + j] << 6));
    }
}

// One 32-value block of a 16-row group in the rows16 Q8_0 layout (kRows16Q8Block bytes).
void pack_q8_0_block(const uint8_t* rows, size_t row_bytes, int64_t b, uint8_t* out) {
    for (int r = 0; r < 16; ++r) {
        const auto& blk =
            reinterpret_cast<const BlockQ8_0*>(rows + static_cast<size_t>(r) * row_bytes)[b];
        int16_t sum = 0;
        for (int v = 0; v < 32; ++v) {
            out[64 * (v / 4) + 4 * r + v % 4] = static_cast<uint8_t>(blk.qs[v]);
            sum = static_cast<int16_t>(sum + blk.qs[v]);
        }
        std::memcpy(out + 8 * 64 + 2 * r, &blk.d, 2);
        std::memcpy(out + 8 * 64 + 32 + 2 * r, &sum, 2);
    }
}

// Runs fn(group) for every group, on all hardware threads.
template <typename F>
void for_groups(int64_t groups, F&& fn) {
    const int n = static_cast<int>(std::max(1u, std::min(8u, std::thread::hardware_concurrency())));
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        pool.emplace_back([&, i] {
            for (int64_t g = i; g < groups; g += n) fn(g);
        });
    }
    for (auto& t : pool) t.join();
}

}  // namespace

GgmlType rows16_type(GgmlType type) {
    return type == GgmlType::TQ1_0 ? GgmlType::TQ2_0 : type;
}

bool can_repack_rows16(GgmlType type, I2sLayout layout, int64_t rows, int64_t cols) {
    if (rows <= 0 || rows % 16 != 0) return false;
    if (type == GgmlType::TQ2_0 || type == GgmlType::TQ1_0) return cols % kQK == 0;
    // The rows16 I2_S kernels walk 128 values at a time, whatever the stored layout.
    if (type == GgmlType::I2_S) return layout != I2sLayout::Auto && cols % 128 == 0;
    if (type == GgmlType::IQ2_S) return cols % kQK == 0;
    if (type == GgmlType::Q8_0) return cols % 32 == 0;
    return false;
}

size_t rows16_bytes(GgmlType type, int64_t rows, int64_t cols) {
    if (type == GgmlType::Q8_0)
        return static_cast<size_t>(rows / 16) * static_cast<size_t>(cols / 32) * kRows16Q8Block;
    if (type == GgmlType::IQ2_S)
        return static_cast<size_t>(rows) * static_cast<size_t>(cols / kQK) * sizeof(HeldIq2s);
    return *tensor_bytes(rows16_type(type), cols, rows * cols);
}

void repack_rows16(GgmlType type, I2sLayout layout, std::span<const uint8_t> src, int64_t rows,
                   int64_t cols, std::span<uint8_t> dst) {
    if (!can_repack_rows16(type, layout, rows, cols) ||
        dst.size() != rows16_bytes(type, rows, cols))
        throw Error("repack: unsupported shape or type");
    if (type == GgmlType::Q8_0) {
        const int64_t nb = cols / 32;
        const size_t row_bytes = static_cast<size_t>(nb) * sizeof(BlockQ8_0);
        for_groups(rows / 16, [&](int64_t g) {
            const uint8_t* grp = src.data() + static_cast<size_t>(g) * 16 * row_bytes;
            for (int64_t b = 0; b < nb; ++b) {
                pack_q8_0_block(grp, row_bytes, b,
                                dst.data() + static_cast<size_t>(g * nb + b) * kRows16Q8Block);
            }
        });
        return;
    }
    if (type == GgmlType::IQ2_S) {
        const int64_t nb = cols / kQK;
        const auto* in = reinterpret_cast<const BlockIQ2S*>(src.data());
        auto* out = reinterpret_cast<HeldIq2s*>(dst.data());
        if (active_isa() < Isa::Avx2) throw Error("repack: IQ2_S is held only with AVX2");
        for_groups(rows / 16, [&](int64_t g) {
            hold_iq2s_avx2(in + g * 16 * nb, out + g * 16 * nb, 16 * nb);
        });
        return;
    }
    if (type == GgmlType::TQ2_0 || type == GgmlType::TQ1_0) {
        const int64_t nb = cols / kQK;
        const bool tq1 = type == GgmlType::TQ1_0;
        const size_t block_bytes = tq1 ? sizeof(BlockTQ1_0) : sizeof(BlockTQ2_0);
        const size_t row_bytes = static_cast<size_t>(nb) * block_bytes;
        constexpr size_t kGroupBlock = 16 * sizeof(BlockTQ2_0);
        for_groups(rows / 16, [&](int64_t g) {
            uint8_t codes[kQK];
            const uint8_t* grp = src.data() + static_cast<size_t>(g) * 16 * row_bytes;
            for (int64_t b = 0; b < nb; ++b) {
                uint8_t* out = dst.data() + static_cast<size_t>(g * nb + b) * kGroupBlock;
                for (int r = 0; r < 16; ++r) {
                    const uint8_t* blk = grp + static_cast<size_t>(r) * row_bytes +
                                         static_cast<size_t>(b) * block_bytes;
                    uint16_t d;
                    if (tq1) {
                        const auto& t1 = *reinterpret_cast<const BlockTQ1_0*>(blk);
                        tq1_codes(t1, codes);
                        d = t1.d;
                    } else {
                        const auto& t2 = *reinterpret_cast<const BlockTQ2_0*>(blk);
                        tq2_codes(t2, codes);
                        d = t2.d;
                    }
                    pack_row(codes, kQK, r, out);
                    std::memcpy(out + 16 * 64 + 2 * r, &d, 2);
                }
            }
        });
        return;
    }
    // I2_S: 128 codes at a time, from one x86 block or two ARM ones.
    const size_t row_bytes = static_cast<size_t>(cols / 4);
    const int block = layout == I2sLayout::Arm ? 64 : 128;
    for_groups(rows / 16, [&](int64_t g) {
        uint8_t codes[128];
        const uint8_t* grp = src.data() + static_cast<size_t>(g) * 16 * row_bytes;
        for (int64_t b = 0; b < cols / 128; ++b) {
            uint8_t* out = dst.data() + static_cast<size_t>(g) * 16 * row_bytes +
                           static_cast<size_t>(b) * 8 * 64;
            for (int r = 0; r < 16; ++r) {
                const uint8_t* bytes =
                    grp + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * 32;
                for (int h = 0; h < 128 / block; ++h)
                    i2s_codes(bytes + h * block / 4, block, codes + h * block);
                pack_row(codes, 128, r, out);
            }
        }
    });
}

void requantize_rows(GgmlType from, GgmlType to, std::span<const uint8_t> src, int64_t rows,
                     int64_t cols, bool rows16, std::span<uint8_t> dst) {
    const TypeInfo& ti = type_info(to);
    if (cols % ti.block_size != 0 || (rows16 && to != GgmlType::Q8_0) ||
        (rows16 && !can_repack_rows16(GgmlType::Q8_0, I2sLayout::X86, rows, cols)))
        throw Error("requantize: rows of " + std::to_string(cols) + " do not fit " +
                    std::string(ti.name));
    const size_t in_row = src.size() / static_cast<size_t>(rows);
    const size_t q8_row = static_cast<size_t>(cols / ti.block_size) * ti.block_bytes;
    const size_t want =
        rows16 ? rows16_bytes(GgmlType::Q8_0, rows, cols) : q8_row * static_cast<size_t>(rows);
    if (dst.size() != want) throw Error("requantize: wrong destination size");
    const int64_t chunk = 16;
    for_groups((rows + chunk - 1) / chunk, [&](int64_t g) {
        const int64_t r0 = g * chunk, n = std::min(chunk, rows - r0);
        std::vector<float> f(static_cast<size_t>(n * cols));
        dequantize_tensor(
            from, src.subspan(static_cast<size_t>(r0) * in_row, static_cast<size_t>(n) * in_row), n,
            cols, f.data());
        if (!rows16) {
            quantize_tensor(
                to, f.data(), n, cols,
                dst.subspan(static_cast<size_t>(r0) * q8_row, static_cast<size_t>(n) * q8_row));
            return;
        }
        std::vector<uint8_t> q(static_cast<size_t>(n) * q8_row);
        quantize_tensor(GgmlType::Q8_0, f.data(), n, cols, q);
        const int64_t nb = cols / 32;
        for (int64_t b = 0; b < nb; ++b) {
            pack_q8_0_block(q.data(), q8_row, b,
                            dst.data() + static_cast<size_t>(g * nb + b) * kRows16Q8Block);
        }
    });
}

}  // namespace bitnet
