// AVX2 (+FMA, F16C) row dot products. Integer formats give results identical to the scalar
// reference (the same integer sums, the same float operations per block); float formats
// differ only in summation order. Compiled with -mavx2 -mfma -mf16c and only called when the
// CPU has them (see vec_dot_for).
#pragma once

#include "kernels/vec_dot.h"

namespace bitnet {

// nullptr when there is no AVX2 version for this weight type.
VecDotFn vec_dot_avx2(GgmlType weight, I2sLayout layout);

}  // namespace bitnet
