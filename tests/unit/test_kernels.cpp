// Every ISA-specific kernel against its scalar reference: integer formats must agree exactly,
// float formats to rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include "bitnet/cpu.h"
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/repack.h"
#include "kernels/vec_dot_avx2.h"
#include "kernels/vec_dot_avx512.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace bitnet {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

TEST(Kernels, Avx2DotsMatchScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    const struct {
        GgmlType type;
        I2sLayout layout;
        bool exact;
    } cases[] = {{GgmlType::TQ2_0, I2sLayout::X86, true}, {GgmlType::TQ1_0, I2sLayout::X86, true},
                 {GgmlType::I2_S, I2sLayout::X86, true},  {GgmlType::I2_S, I2sLayout::Arm, true},
                 {GgmlType::IQ2_S, I2sLayout::X86, true}, {GgmlType::Q8_0, I2sLayout::X86, true},
                 {GgmlType::Q6_K, I2sLayout::X86, true},  {GgmlType::Q4_K, I2sLayout::X86, true},
                 {GgmlType::F16, I2sLayout::X86, false},  {GgmlType::BF16, I2sLayout::X86, false},
                 {GgmlType::F32, I2sLayout::X86, false}};
    double worst = 0;  // float formats: largest |got - ref| / (|ref| + Σ|w·x|)
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(type_name(c.type)) +
                     (c.layout == I2sLayout::Arm ? " (ARM layout)" : ""));
        ASSERT_NE(vec_dot_avx2(c.type, c.layout), nullptr);
        // ARM layout: 64, 192, 2624 and 6976 end with an odd 64-value block, 128 and 2560 do not;
        // 43 · 8 + 3: float tails.
        std::vector<int64_t> lengths = {256, 512, 2560, 6912};
        if (c.layout == I2sLayout::Arm) lengths = {64, 128, 192, 2560, 2624, 6976};
        if (!c.exact) lengths.push_back(43 * 8 + 3);
        for (int64_t n : lengths) {
            for (uint32_t seed = 0; seed < 3; ++seed) {
                auto w = randn(static_cast<size_t>(n), static_cast<uint32_t>(n) + 7 * seed);
                // Seed 2: every activation at ±127 after quantization, the largest products.
                auto x =
                    randn(static_cast<size_t>(n), static_cast<uint32_t>(n + 1) + 13 * seed, 3.0f);
                if (seed == 2)
                    for (size_t i = 0; i < x.size(); ++i) x[i] = (i * 7919) % 3 == 0 ? -5.0f : 5.0f;
                std::vector<uint8_t> wq(*tensor_bytes(c.type, n, n));
                QuantOptions o;
                o.i2s_layout = c.layout;
                quantize_tensor(c.type, w.data(), 1, n, wq, o);
                const ActFormat f = act_format_for(c.type);
                std::vector<uint8_t> xq(act_row_bytes(f, n));
                quantize_activation_row(f, x.data(), xq.data(), n);
                const float ref = vec_dot_scalar(c.type, c.layout)(n, wq.data(), xq.data());
                const float got = vec_dot_avx2(c.type, c.layout)(n, wq.data(), xq.data());
                if (c.exact) {
                    EXPECT_EQ(got, ref) << "n=" << n << " seed=" << seed;
                } else {
                    std::vector<float> wf(static_cast<size_t>(n));
                    dequantize_tensor(c.type, wq, 1, n, wf.data());
                    double mag = 0;
                    for (size_t i = 0; i < wf.size(); ++i) mag += std::fabs(wf[i] * x[i]);
                    const double rel = std::fabs(double{got} - ref) / (std::fabs(ref) + mag);
                    worst = std::max(worst, rel);
                    EXPECT_LE(rel, 1e-5) << "n=" << n << " seed=" << seed;
                }
            }
        }
    }
    std::printf("[ kernels ] float dots: largest relative difference %.3g\n", worst);
}

// The AVX2 activation quantizers write the same bytes as the scalar ones: random rows at
// several scales, rows with ties for the largest magnitude (+m before -m and the reverse: the
// first one sets the sign of the Q8_K scale), zero blocks, lengths that are not multiples of
// 8 (I8Token), exact halves for the rounding, and rows with Inf/NaN (handed back to the scalar
// code).
TEST(Kernels, Avx2ActivationQuantizersMatchScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    std::vector<std::vector<float>> rows;
    for (uint32_t seed = 0; seed < 40; ++seed)
        rows.push_back(randn(2560, seed, seed % 4 == 0 ? 1e-3f : 3.0f));
    auto tie = randn(512, 99);
    tie[17] = 9.0f;
    tie[300] = -9.0f;
    rows.push_back(tie);
    std::swap(tie[17], tie[300]);
    rows.push_back(tie);
    std::vector<float> zeros(768, 0.0f);
    zeros[600] = -0.5f;  // two zero blocks, then one holding a single value
    rows.push_back(zeros);
    std::vector<float> halves(256);
    for (size_t i = 0; i < halves.size(); ++i) halves[i] = -127.0f + static_cast<float>(i) * 0.5f;
    rows.push_back(halves);
    size_t compared = 0;
    for (const auto& x : rows) {
        const auto n = static_cast<int64_t>(x.size());
        std::vector<uint8_t> ref(act_row_bytes(ActFormat::Q8_K, n)), got(ref.size(), 0xAA);
        quant::q8_k_from_float(x.data(), ref.data(), n, nullptr);
        ASSERT_TRUE(q8_k_from_float_avx2(x.data(), got.data(), n));
        EXPECT_EQ(got, ref) << "Q8_K, row of " << n;
        for (int64_t len : {n, n - 3, n - 29}) {
            std::vector<uint8_t> r8(act_row_bytes(ActFormat::I8Token, len)), g8(r8.size());
            i8_token_from_float(x.data(), r8.data(), len);
            ASSERT_TRUE(i8_token_from_float_avx2(x.data(), g8.data(), len));
            EXPECT_EQ(g8, r8) << "I8Token, row of " << len;
            ++compared;
        }
        ++compared;
    }
    // A block whose largest magnitude is so small that -127 / max overflows: handed back too
    // (the scalar code rounds the infinite products to 0).
    {
        std::vector<float> tiny(512, 0.0f);
        for (size_t i = 256; i < tiny.size(); ++i) tiny[i] = (i % 3 == 0 ? -1e-38f : 2e-38f);
        std::vector<uint8_t> q(act_row_bytes(ActFormat::Q8_K, 512));
        EXPECT_FALSE(q8_k_from_float_avx2(tiny.data(), q.data(), 512));
        std::vector<uint8_t> r8(act_row_bytes(ActFormat::I8Token, 512)), g8(r8.size());
        i8_token_from_float(tiny.data(), r8.data(), 512);
        ASSERT_TRUE(i8_token_from_float_avx2(tiny.data(), g8.data(), 512));
        EXPECT_EQ(g8, r8);
    }
    for (float bad : {INFINITY, -INFINITY, NAN}) {
        auto x = randn(512, 7);
        x[300] = bad;
        std::vector<uint8_t> q(act_row_bytes(ActFormat::Q8_K, 512));
        EXPECT_FALSE(q8_k_from_float_avx2(x.data(), q.data(), 512));
        EXPECT_FALSE(i8_token_from_float_avx2(x.data(), q.data(), 512));
    }
    std::printf("[ kernels ] %zu activation rows quantized identically\n", compared);
}

// BitNet b1.58's ReLU² gate: the AVX2 loop writes exactly what the scalar one does, NaN, -0
// and infinities included.
TEST(Kernels, Avx2ReluSquaredGluMatchesScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    auto g = randn(6917, 3, 4.0f);
    const auto u = randn(g.size(), 4);
    g[5] = NAN;
    g[6] = -0.0f;
    g[7] = INFINITY;
    g[8] = -INFINITY;
    g[6915] = NAN;
    auto ref = g;
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = relu_squared(ref[i]) * u[i];
    relu_squared_glu_avx2(g.data(), u.data(), static_cast<int64_t>(g.size()));
    ASSERT_EQ(g.size(), ref.size());
    for (size_t i = 0; i < g.size(); ++i) {
        ASSERT_EQ(std::memcmp(&g[i], &ref[i], 4), 0) << i << ": " << g[i] << " vs " << ref[i];
    }
}

TEST(Kernels, Avx2RmsNormMatchesScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    for (const int64_t n : {1, 7, 8, 9, 64, 2560, 6917}) {
        auto x = randn(static_cast<size_t>(n), static_cast<uint32_t>(n), 3.0f);
        const auto w = randn(x.size(), 5);
        if (n > 9) {  // magnitudes far apart, for the double sums' rounding
            x[3] = 3.0e18f;
            x[n - 2] = 1.0e-20f;
            x[n / 2] = -7.5e12f;
        }
        for (const bool weighted : {false, true}) {
            std::vector<float> want(x.size()), got(x.size());
            const float* wp = weighted ? w.data() : nullptr;
            rms_norm_scalar(x.data(), wp, want.data(), n, 1e-6f);
            rms_norm_avx2(x.data(), wp, got.data(), n, 1e-6f);
            for (size_t i = 0; i < x.size(); ++i) {
                ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
                    << "n " << n << " weighted " << weighted << " i " << i << ": " << got[i]
                    << " vs " << want[i];
            }
        }
    }
}

// exp_f32 against the C library's expf over a sweep of every 4099th float bit pattern (both
// signs, subnormals, infinities, NaN): at most 1 ulp apart (an exhaustive run over all 2^32
// inputs found 170645 differing by 1 ulp, none by more). Scalar code only, so it also runs
// under BITNET_ISA=scalar.
TEST(Kernels, ExpF32WithinOneUlpOfExpf) {
    int64_t differ = 0, compared = 0;
    for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 4099) {
        const auto bits = static_cast<uint32_t>(b);
        float x = 0;
        std::memcpy(&x, &bits, 4);
        const float got = exp_f32(x), want = std::exp(x);
        ++compared;
        if (std::isnan(want)) {
            ASSERT_TRUE(std::isnan(got)) << x;
            continue;
        }
        int32_t a = 0, c = 0;
        std::memcpy(&a, &got, 4);
        std::memcpy(&c, &want, 4);
        ASSERT_LE(std::abs(static_cast<int64_t>(a) - c), 1)
            << std::hexfloat << x << ": " << got << " vs " << want;
        differ += a != c;
    }
    std::printf("[ kernels ] exp_f32: %lld of %lld inputs 1 ulp from expf, none further\n",
                static_cast<long long>(differ), static_cast<long long>(compared));
}

// SiLU gate: the AVX2 exp and loop write exactly what the scalar ones do (both run the same
// double operations), NaN, signed zeros, infinities and the clamped ranges included.
TEST(Kernels, Avx2SiluGluMatchesScalar) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    auto g = randn(6917, 3, 8.0f);
    const auto u = randn(g.size(), 4);
    const float special[] = {NAN,    -0.0f,  0.0f,    INFINITY, -INFINITY,
                             88.7f,  89.0f,  -87.5f,  -104.0f,  -150.5f,
                             100.5f, 1e-30f, -1e-40f, 3.0e38f,  -3.0e38f};
    for (size_t i = 0; i < std::size(special); ++i) g[5 + 3 * i] = special[i];
    g[6915] = NAN;
    // Every 65537th bit pattern as well, for exp_f32_avx2 alone, and 3 more for its scalar tail.
    std::vector<float> x;
    for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 65537) {
        const auto bits = static_cast<uint32_t>(b);
        std::memcpy(&x.emplace_back(), &bits, 4);
    }
    x.insert(x.end(), {-0.5f, 1.5f, 87.0f});
    std::vector<float> y(x.size());
    exp_f32_avx2(x.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
        const float want = exp_f32(x[i]);
        ASSERT_TRUE(std::memcmp(&y[i], &want, 4) == 0 || (std::isnan(want) && std::isnan(y[i])))
            << std::hexfloat << x[i] << ": " << y[i] << " vs " << want;
    }
    auto ref = g;
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu(ref[i]) * u[i];
    auto dispatched = g;  // through silu_glu, which picks the AVX2 loop on this CPU
    silu_glu(dispatched.data(), u.data(), static_cast<int64_t>(g.size()));
    silu_glu_avx2(g.data(), u.data(), static_cast<int64_t>(g.size()));
    ASSERT_EQ(std::memcmp(dispatched.data(), g.data(), 4 * g.size()), 0);
    for (size_t i = 0; i < g.size(); ++i) {
        ASSERT_TRUE(std::memcmp(&g[i], &ref[i], 4) == 0 || (std::isnan(g[i]) && std::isnan(ref[i])))
            << i << ": " << g[i] << " vs " << ref[i];
    }
    std::printf("[ kernels ] silu_glu: %zu values and exp_f32: %zu inputs identical\n", g.size(),
                x.size());
}

// Cached rows of n values per type, from floats (as the engine stores K and V).
std::vector<uint8_t> cache_rows(GgmlType type, const std::vector<float>& x, int64_t n) {
    const int64_t rows = static_cast<int64_t>(x.size()) / n;
    const size_t row = cache_row_bytes(type, n);
    std::vector<uint8_t> out(row * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
        cache_store_row(type, x.data() + r * n, n, out.data() + static_cast<size_t>(r) * row);
    return out;
}

// A q8_0 cache row is ggml's Q8_0 quantization of it; a block holding NaN or Inf gets a NaN
// scale (so the fault reaches the logits check), the other blocks stay as they were.
TEST(Kernels, Q8_0CacheRowsAreGgmlBlocksAndKeepNaN) {
    auto x = randn(128, 5, 2.0f);
    std::vector<uint8_t> want(*tensor_bytes(GgmlType::Q8_0, 128, 128));
    quantize_tensor(GgmlType::Q8_0, x.data(), 1, 128, want);
    EXPECT_EQ(cache_rows(GgmlType::Q8_0, x, 128), want);
    for (float bad : {NAN, INFINITY}) {
        auto y = x;
        y[40] = bad;  // block 1
        const auto got = cache_rows(GgmlType::Q8_0, y, 128);
        const auto* blocks = reinterpret_cast<const BlockQ8_0*>(got.data());
        const auto* ref = reinterpret_cast<const BlockQ8_0*>(want.data());
        EXPECT_TRUE(std::isnan(fp16_to_fp32(blocks[1].d)));
        for (int b : {0, 2, 3}) EXPECT_EQ(std::memcmp(&blocks[b], &ref[b], sizeof(BlockQ8_0)), 0);
        const float ones[1] = {1.0f};
        std::vector<float> v(128);
        attention_kernels().of(GgmlType::Q8_0).wsum(ones, got.data(), 1, 128, v.data());
        EXPECT_TRUE(std::isnan(v[40]));
    }
}

// The grouped-query attention kernels (four heads per key/value) give exactly what the
// one-head kernels give, head by head, for every cache type, in the scalar set and in the AVX2
// one: key lengths with and without SIMD tails (q8_0: whole blocks), and value sums over 0, 1,
// 63, 64, 65 and 256 keys (the AVX2 kernel works in blocks of 64).
TEST(Kernels, GroupedAttentionKernelsEqualOneHead) {
    std::vector<const AttentionKernels*> sets = {&attention_scalar()};
    if (best_isa() >= Isa::Avx2) sets.push_back(attention_avx2());
    size_t compared = 0;
    for (const AttentionKernels* ak : sets) {
        for (GgmlType type : {GgmlType::F16, GgmlType::F32, GgmlType::Q8_0}) {
            SCOPED_TRACE(std::string(ak->name) + " " + std::string(type_name(type)));
            const CacheKernels& ck = ak->of(type);
            for (int64_t n : {64, 100, 128, 131}) {
                if (!cache_type_supported(type, n)) continue;
                const auto q = randn(static_cast<size_t>(4 * n), static_cast<uint32_t>(n));
                const auto k = cache_rows(
                    type, randn(static_cast<size_t>(n), static_cast<uint32_t>(n + 1), 2.0f), n);
                float got[4];
                ck.dot4(q.data(), n, k.data(), n, got);
                for (int h = 0; h < 4; ++h) {
                    EXPECT_EQ(got[h], ck.dot(q.data() + h * n, k.data(), n)) << "n=" << n;
                    ++compared;
                }
                for (int64_t keys : {0, 1, 63, 64, 65, 256}) {
                    const int64_t ws = keys + 3;  // weights of head h at h * ws
                    const auto w = randn(static_cast<size_t>(4 * ws), static_cast<uint32_t>(keys));
                    const auto v =
                        cache_rows(type, randn(static_cast<size_t>(keys * n), 11, 2.0f), n);
                    std::vector<float> out(static_cast<size_t>(4 * (n + 2)), NAN), ref(out);
                    ck.wsum4(w.data(), ws, v.data(), keys, n, out.data(), n + 2);
                    for (int h = 0; h < 4; ++h) {
                        ck.wsum(w.data() + h * ws, v.data(), keys, n, ref.data() + h * (n + 2));
                        ++compared;
                    }
                    for (size_t i = 0; i < out.size(); ++i) {
                        if (std::isnan(ref[i])) {
                            EXPECT_TRUE(std::isnan(out[i])) << i;  // gaps between heads untouched
                        } else {
                            ASSERT_EQ(out[i], ref[i])
                                << "n=" << n << " keys=" << keys << " i=" << i;
                        }
                    }
                }
            }
        }
    }
    if (best_isa() < Isa::Avx2) std::printf("[ kernels ] AVX2 attention skipped: no AVX2\n");
    std::printf("[ kernels ] %zu grouped dot/value-sum heads equal the one-head kernels\n",
                compared);
}

// Float kernels (AVX-512 row dots for F16/BF16/F32 weights, the AVX2 attention loops) stay
// within 1e-5 relative of the scalar reference; the largest deviation is printed.
TEST(Kernels, FloatKernelsStayWithinRounding) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    double worst = 0;
    auto check = [&](float got, float ref, double magnitude) {
        const double rel = std::fabs(static_cast<double>(got) - ref) / magnitude;
        worst = std::max(worst, rel);
        EXPECT_LE(rel, 1e-5) << got << " vs " << ref;
    };
    for (int64_t n : {64, 100, 2560, 6912}) {
        const auto w = randn(static_cast<size_t>(n), static_cast<uint32_t>(n));
        const auto x = randn(static_cast<size_t>(n), static_cast<uint32_t>(n + 7), 2.0f);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(w[i]) * x[i]);
        if (best_isa() >= Isa::Avx512) {
            for (GgmlType type : {GgmlType::F16, GgmlType::BF16, GgmlType::F32}) {
                std::vector<uint8_t> wq(*tensor_bytes(type, n, n));
                quantize_tensor(type, w.data(), 1, n, wq);
                check(vec_dot_avx512(type)(n, wq.data(), x.data()),
                      vec_dot_scalar(type, I2sLayout::X86)(n, wq.data(), x.data()), mag);
            }
        }
        // Attention: q · k and value sums over up to 300 keys of 64 or 96 values, per cache type
        // (the magnitude: Σ |q · k| or Σ |w · v| over the stored values).
        const AttentionKernels& ref = attention_scalar();
        const AttentionKernels& simd = *attention_avx2();
        for (GgmlType type : {GgmlType::F16, GgmlType::F32, GgmlType::Q8_0}) {
            for (const int64_t dim : {int64_t{64}, int64_t{96}}) {
                const int64_t keys = std::min<int64_t>(300, n / dim);
                if (keys == 0) continue;
                const auto stored = cache_rows(type, w, dim);
                std::vector<float> back(static_cast<size_t>(keys * dim));  // stored, as floats
                const size_t row = cache_row_bytes(type, dim);
                for (int64_t p = 0; p < keys; ++p) {
                    std::vector<float> e(static_cast<size_t>(dim));
                    const float ones[1] = {1.0f};
                    ref.of(type).wsum(ones, stored.data() + static_cast<size_t>(p) * row, 1, dim,
                                      e.data());
                    std::copy(e.begin(), e.end(), back.begin() + p * dim);
                }
                double mag_dot = 0;
                for (int64_t d = 0; d < dim; ++d)
                    mag_dot += std::fabs(x[static_cast<size_t>(d)] * back[static_cast<size_t>(d)]);
                check(simd.of(type).dot(x.data(), stored.data(), dim),
                      ref.of(type).dot(x.data(), stored.data(), dim), mag_dot);
                const auto wt = randn(static_cast<size_t>(keys), 77);
                std::vector<float> o1(static_cast<size_t>(dim)), o2(o1);
                ref.of(type).wsum(wt.data(), stored.data(), keys, dim, o1.data());
                simd.of(type).wsum(wt.data(), stored.data(), keys, dim, o2.data());
                for (int64_t d = 0; d < dim; ++d) {
                    double m = 0;
                    for (int64_t p = 0; p < keys; ++p)
                        m += std::fabs(wt[static_cast<size_t>(p)] *
                                       back[static_cast<size_t>(p * dim + d)]);
                    check(o2[static_cast<size_t>(d)], o1[static_cast<size_t>(d)], m);
                }
            }
        }
    }
    // The softmax numerators: scores over a wide range (and tails of 1..7), a run of equal
    // maxima, scores far below the maximum (which underflow to 0 or nearly so), and a NaN.
    {
        const AttentionKernels& ref = attention_scalar();
        const AttentionKernels& simd = *attention_avx2();
        for (int64_t n : {1, 7, 8, 45, 256}) {
            auto s = randn(static_cast<size_t>(n), static_cast<uint32_t>(n), 12.0f);
            if (n > 40) {
                s[3] = s[4] = 40.0f;     // two equal maxima
                s[10] = -200.0f;         // underflows
                s[11] = 40.0f - 87.2f;   // just above the underflow limit
                s[12] = 40.0f - 103.0f;  // a float subnormal for the reference
            }
            auto a = s, b = s;
            double sa = 0, sb = 0;
            const float ma = ref.exp_shift(a.data(), n, &sa);
            const float mb = simd.exp_shift(b.data(), n, &sb);
            EXPECT_EQ(ma, mb);
            check(static_cast<float>(sb), static_cast<float>(sa), sa);
            for (int64_t i = 0; i < n; ++i) {
                const auto k = static_cast<size_t>(i);
                EXPECT_NEAR(b[k], a[k], 1e-5 * a[k] + 1e-37) << "n=" << n << " i=" << i;
                if (a[k] > 1e-30f) check(b[k], a[k], a[k]);
            }
        }
        std::vector<float> bad = {1.0f, NAN, 2.0f, 0.5f, 3.0f, 1.0f, 0.0f, -1.0f, 2.0f};
        double sum = 0;
        simd.exp_shift(bad.data(), static_cast<int64_t>(bad.size()), &sum);
        EXPECT_TRUE(std::isnan(sum)) << "a NaN score must not vanish";
    }
    if (best_isa() < Isa::Avx512)
        std::printf("[ kernels ] AVX-512 float dots skipped: no AVX-512\n");
    std::printf("[ kernels ] float kernels: largest relative deviation %.3g\n", worst);
}

// The tiled kernels against the scalar row dot product, element for element, for row counts
// that leave remainders and token counts that mix 4x4 and 16x1 tiles.
TEST(Kernels, TiledGemmMatchesScalarDots) {
    if (active_isa() < Isa::Avx2) GTEST_SKIP() << "no AVX2 (or BITNET_ISA below it)";
    struct Case {
        GgmlType type;
        I2sLayout layout;
        GemmFn fn;  // the plain-layout tiled kernel expected at AVX512_VNNI
    };
    int checked = 0;
    // TQ1_0 and ARM-layout I2_S go through their row dots in the stored layout and through the
    // rows16 kernels once repacked (TQ1_0 as TQ2_0).
    for (const Case& c : {Case{GgmlType::TQ2_0, I2sLayout::X86, gemm_tq2_0_avx512vnni},
                          Case{GgmlType::TQ1_0, I2sLayout::X86, nullptr},
                          Case{GgmlType::I2_S, I2sLayout::X86, gemm_i2s_x86_avx512vnni},
                          Case{GgmlType::I2_S, I2sLayout::Arm, nullptr},
                          Case{GgmlType::Q8_0, I2sLayout::X86, gemm_q8_0_avx2},
                          Case{GgmlType::IQ2_S, I2sLayout::X86, gemm_iq2_s_avx2}}) {
        SCOPED_TRACE(std::string(type_name(c.type)) +
                     (c.layout == I2sLayout::Arm ? " (ARM layout)" : ""));
        for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{48, 256},
                                         {37, 2560},
                                         {16, 6912},
                                         {64, 384},
                                         {32, 640},
                                         {32, 512},
                                         {32, 192}}) {
            if ((c.type == GgmlType::TQ2_0 || c.type == GgmlType::TQ1_0 ||
                 c.type == GgmlType::IQ2_S) &&
                cols % 256 != 0)
                continue;
            // 192: only the ARM layout holds it (and then not as rows16).
            if (c.type == GgmlType::I2_S && c.layout == I2sLayout::X86 && cols % 128 != 0) continue;
            // 32 x 512: the extremes of the int16 accumulation (every weight ±1, every
            // activation ±127: 64 steps of pair sums of 508 in one lane).
            const bool extreme = cols == 512;
            auto w = randn(static_cast<size_t>(rows * cols), static_cast<uint32_t>(rows));
            if (extreme) {
                for (size_t i = 0; i < w.size(); ++i)
                    w[i] = (i / static_cast<size_t>(cols)) % 2 == 0 ? 1.0f : -1.0f;
            }
            std::vector<uint8_t> wq(*tensor_bytes(c.type, cols, rows * cols));
            QuantOptions qo;
            qo.i2s_layout = c.layout;
            quantize_tensor(c.type, w.data(), rows, cols, wq, qo);
            const size_t row_bytes =
                c.type == GgmlType::I2_S
                    ? static_cast<size_t>(cols / 4)
                    : static_cast<size_t>(cols / type_info(c.type).block_size) *
                          type_info(c.type).block_bytes;
            // 4-19 tokens: every remainder of the 4-token tiles, tiles packed by both threads.
            for (int64_t n_tokens : {1, 3, 4, 5, 7, 16, 18, 19}) {
                auto x = randn(static_cast<size_t>(n_tokens * cols), 99, 3.0f);
                if (extreme) {
                    for (size_t i = 0; i < x.size(); ++i)
                        x[i] = (i / static_cast<size_t>(cols)) % 2 == 0 ? 3.0f : -3.0f;
                }
                const ActFormat f = act_format_for(c.type);
                const size_t arow = act_row_bytes(f, cols);
                std::vector<uint8_t> act(arow * static_cast<size_t>(n_tokens));
                for (int64_t t = 0; t < n_tokens; ++t)
                    quantize_activation_row(f, x.data() + t * cols, act.data() + t * arow, cols);
                WeightMatrix wm;
                wm.type = c.type;
                wm.data = wq.data();
                wm.rows = rows;
                wm.cols = cols;
                wm.row_bytes = row_bytes;
                wm.scale = 0.75f;
                // Through matmul (which picks the tiled kernel) and by hand with the scalar dot;
                // then once more with the matrix held rows16 (kernels/repack.h).
                wm.i2s_layout = c.layout;
                const bool rows16 = gemm_rows16_for(rows16_type(c.type)) != nullptr &&
                                    can_repack_rows16(c.type, c.layout, rows, cols);
                std::vector<uint8_t> packed(rows16 ? rows16_bytes(c.type, rows, cols) : 0);
                if (rows16) repack_rows16(c.type, c.layout, wq, rows, cols, packed);
                if (c.type == GgmlType::TQ1_0 || c.layout == I2sLayout::Arm) {
                    EXPECT_EQ(rows16, rows % 16 == 0 && cols % 128 == 0) << rows << "x" << cols;
                }
                for (const bool use_rows16 : {false, true}) {
                    if (use_rows16 && !rows16) continue;
                    WeightMatrix m = wm;
                    if (use_rows16) {
                        m.data = packed.data();
                        m.rows16 = true;
                        m.type = rows16_type(c.type);
                        m.row_bytes = c.type == GgmlType::IQ2_S
                                          ? static_cast<size_t>(cols / 256) * sizeof(HeldIq2s)
                                          : *tensor_bytes(m.type, cols, cols);
                    }
                    ThreadPool pool(2);
                    MatmulScratch scratch;
                    std::vector<float> y(static_cast<size_t>(rows * n_tokens));
                    matmul(m, x.data(), n_tokens, y.data(), pool, scratch);
                    if (c.type == GgmlType::IQ2_S) {
                        // The IQ2_S kernels themselves (matmul would hide rows they skipped
                        // behind the row dots): the held one covers every row, the stored
                        // layout's panels every 8 rows from 2 tokens on.
                        const GemmFn fn =
                            use_rows16 ? gemm_rows16_for(m.type) : gemm_for(m.type, I2sLayout::X86);
                        ASSERT_NE(fn, nullptr);
                        std::vector<float> y2(y.size(), -1.0f);
                        GemmArgs g{m.data, m.row_bytes, cols,      m.scale, act.data(),
                                   arow,   n_tokens,    y2.data(), rows};
                        const int64_t want = use_rows16                        ? rows
                                             : n_tokens >= kIq2sPanelMinTokens ? rows / 8 * 8
                                                                               : 0;
                        EXPECT_EQ(fn(g, 0, rows), want) << n_tokens << " tokens";
                        for (int64_t t = 0; t < n_tokens; ++t) {
                            for (int64_t r = 0; r < want; ++r) {
                                const auto k = static_cast<size_t>(t * rows + r);
                                ASSERT_EQ(y2[k], y[k]) << "row " << r << " token " << t;
                            }
                        }
                    }
                    const VecDotFn dot = vec_dot_scalar(c.type, c.layout);
                    for (int64_t t = 0; t < n_tokens; ++t) {
                        for (int64_t r = 0; r < rows; ++r) {
                            const float ref =
                                wm.scale * dot(cols, wq.data() + static_cast<size_t>(r) * row_bytes,
                                               act.data() + static_cast<size_t>(t) * arow);
                            const float got = y[static_cast<size_t>(t * rows + r)];
                            ASSERT_EQ(std::memcmp(&got, &ref, sizeof(float)), 0)  // -0 too
                                << got << " vs " << ref << ": row " << r << " token " << t << " of "
                                << n_tokens << (use_rows16 ? " (rows16)" : "");
                            ++checked;
                        }
                    }
                }
            }
        }
        if (active_isa() >= Isa::Avx512Vnni) {
            EXPECT_EQ(gemm_for(c.type, c.layout), c.fn);
        }
    }
    std::printf("[ kernels ] %d tiled outputs (%s) equal to the scalar reference\n", checked,
                std::string(isa_name(active_isa())).c_str());
}

// Token tiles (kernels/gemm.h) against their documented layout, byte for byte, and the buffer
// size: nothing written past act_tiles_bytes.
TEST(Kernels, ActTilesFollowTheirLayout) {
    if (best_isa() < Isa::Avx2) GTEST_SKIP() << "this CPU has no AVX2";
    int tiles_checked = 0;
    for (const ActFormat f : {ActFormat::Q8_K, ActFormat::I8Token}) {
        for (const int64_t cols : {128, 256, 384, 640, 2560}) {
            if (f == ActFormat::Q8_K && cols % 256 != 0) continue;
            for (int64_t n = 4; n <= 9; ++n) {
                const auto x = randn(static_cast<size_t>(n * cols), static_cast<uint32_t>(n), 3.0f);
                const size_t arow = act_row_bytes(f, cols);
                std::vector<uint8_t> act(arow * static_cast<size_t>(n));
                for (int64_t t = 0; t < n; ++t)
                    quantize_activation_row(f, x.data() + t * cols, act.data() + t * arow, cols);
                const int64_t n_tiles = n / 4, steps = cols / 4, chunks = (steps + 63) / 64;
                const size_t bytes = act_tiles_bytes(cols, n);
                ASSERT_EQ(bytes, static_cast<size_t>(n_tiles * (16 * chunks + 4 * cols)));
                std::vector<uint8_t> tiles(bytes + 64, 0xA5);
                for (int64_t j = 0; j < n_tiles; ++j)
                    pack_act_tile_avx2(f, act.data(), arow, cols, n_tiles, j, tiles.data());
                for (size_t i = bytes; i < tiles.size(); ++i) ASSERT_EQ(tiles[i], 0xA5) << i;
                // Value i of token t in its quantized row.
                const auto value = [&](int64_t t, int64_t i) {
                    const uint8_t* row = act.data() + static_cast<size_t>(t) * arow;
                    return f == ActFormat::Q8_K
                               ? reinterpret_cast<const BlockQ8K*>(row)[i / 256].qs[i % 256]
                               : reinterpret_cast<const int8_t*>(row + 8)[i];
                };
                size_t at = 0;  // chunks in order, each holding every tile in turn
                for (int64_t c = 0; c < chunks; ++c) {
                    const int64_t len = std::min<int64_t>(64, steps - 64 * c);
                    for (int64_t j = 0; j < n_tiles; ++j, ++tiles_checked) {
                        for (int64_t k = 0; k < 4; ++k) {
                            int32_t pair[2] = {0, 0};  // values 4s, 4s+1 and 4s+2, 4s+3
                            for (int64_t s = 0; s < len; ++s) {
                                for (int64_t v = 0; v < 4; ++v) {
                                    const int8_t want = value(4 * j + k, 4 * (64 * c + s) + v);
                                    const auto got =
                                        static_cast<int8_t>(tiles[at + 16 + 16 * s + 4 * k + v]);
                                    ASSERT_EQ(got, want) << "chunk " << c << " tile " << j;
                                    pair[v / 2] += want;
                                }
                            }
                            int16_t init[2];
                            std::memcpy(init, tiles.data() + at + 4 * k, 4);
                            EXPECT_EQ(init[0], f == ActFormat::Q8_K ? -pair[0] : 0);
                            EXPECT_EQ(init[1], f == ActFormat::Q8_K ? -pair[1] : 0);
                        }
                        at += static_cast<size_t>(16 + 16 * len);
                    }
                }
                ASSERT_EQ(at, bytes);
            }
        }
    }
    std::printf("[ kernels ] %d token tiles laid out as documented\n", tiles_checked);
}

TEST(Kernels, MatmulMatchesDequantizedProduct) {
    ThreadPool pool(3);
    MatmulScratch scratch;
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                          GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::TQ1_0,
                          GgmlType::TQ2_0, GgmlType::IQ2_S, GgmlType::I2_S}) {
        SCOPED_TRACE(std::string(type_name(type)));
        // 9 tokens: a batch large enough for the threads to take pieces (matmul.cpp).
        const int64_t rows = 37, cols = 512, tokens = 9;
        const auto w = randn(static_cast<size_t>(rows * cols), 1, 0.05f);
        const auto x = randn(static_cast<size_t>(tokens * cols), 2);
        std::vector<uint8_t> wq(*tensor_bytes(type, cols, rows * cols));
        quantize_tensor(type, w.data(), rows, cols, wq);
        std::vector<float> wd(w.size());
        dequantize_tensor(type, wq, rows, cols, wd.data());
        WeightMatrix m;
        m.type = type;
        m.data = wq.data();
        m.rows = rows;
        m.cols = cols;
        m.row_bytes = type == GgmlType::I2_S ? static_cast<size_t>(cols / 4)
                                             : *tensor_bytes(type, cols, cols);
        if (type == GgmlType::I2_S) m.scale = i2s_scale(wq, rows * cols);
        std::vector<float> y(static_cast<size_t>(tokens * rows));
        matmul(m, x.data(), tokens, y.data(), pool, scratch);
        // Against the float product with dequantized weights: off only by the 8-bit (or exact)
        // activation rounding.
        for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
                double ref = 0, mag = 0;
                for (int64_t c = 0; c < cols; ++c) {
                    ref += static_cast<double>(wd[r * cols + c]) * x[t * cols + c];
                    mag += std::fabs(static_cast<double>(wd[r * cols + c]) * x[t * cols + c]);
                }
                ASSERT_NEAR(y[t * rows + r], ref, 0.02 * mag + 1e-6)
                    << "token " << t << " row " << r;
            }
        }
    }
}

// parallel_pieces hands out every piece exactly once, in multiples of the piece size (the last
// one short; one thread takes the whole range at once), to however many threads there are, and
// rethrows a piece's error after the region has ended.
TEST(Kernels, ThreadPoolPiecesCoverTheRangeOnce) {
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        for (int64_t n : {1, 16, 17, 1000, 3840}) {
            std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
            std::atomic<bool> aligned{true};
            pool.parallel_pieces(n, 48, [&](int, int64_t b, int64_t e) {
                if (b % 48 != 0 || (e - b != 48 && e != n)) aligned = false;
                for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)]++;
            });
            EXPECT_TRUE(aligned) << threads << " threads, n=" << n;
            for (int64_t i = 0; i < n; ++i)
                ASSERT_EQ(seen[static_cast<size_t>(i)], 1) << threads << " threads, n=" << n;
        }
        EXPECT_THROW(pool.parallel_pieces(1000, 16,
                                          [](int, int64_t b, int64_t e) {
                                              if (b <= 512 && 512 < e)
                                                  throw std::runtime_error("piece");
                                          }),
                     std::runtime_error);
        // The pool is usable afterwards, in both modes.
        std::atomic<int64_t> sum{0};
        pool.parallel_for(100, 1, [&](int, int64_t b, int64_t e) { sum += e - b; });
        EXPECT_EQ(sum, 100);
    }
}

TEST(Kernels, RopeRotatesPairs) {
    std::vector<float> v = {1, 0, 0, 1, 1, 0, 0, 1};
    std::vector<float> n = v;
    rope(v.data(), 1, 8, 8, 0, 10000.0f, RopeStyle::Normal);
    EXPECT_EQ(v, n) << "position 0 is the identity";
    rope(v.data(), 1, 8, 8, 1, 10000.0f, RopeStyle::Normal);
    EXPECT_NEAR(v[0], std::cos(1.0f), 1e-6);  // pair (0, 1) at angle 1
    EXPECT_NEAR(v[1], std::sin(1.0f), 1e-6);
    std::vector<float> x = {1, 0, 0, 0, 0, 0, 0, 0};
    rope(x.data(), 1, 8, 8, 1, 10000.0f, RopeStyle::Neox);
    EXPECT_NEAR(x[0], std::cos(1.0f), 1e-6);  // NeoX pairs (0, 4)
    EXPECT_NEAR(x[4], std::sin(1.0f), 1e-6);
}

}  // namespace
}  // namespace bitnet
