// AVX-512 (F/BW/VL) row dot products for float weights; they differ from the scalar reference
// only in summation order. Only called when the CPU has AVX-512 (see vec_dot_for).
#pragma once

#include "kernels/vec_dot.h"

namespace bitnet {

// nullptr when there is no AVX-512 version for this weight type.
VecDotFn vec_dot_avx512(GgmlType weight);

}  // namespace bitnet
