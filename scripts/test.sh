#!/usr/bin/env bash
# The whole test suite: set up, build (g++ Release, and clang with ASan+UBSan+libFuzzer for
# the fuzz targets), then run every test through CTest, fuzzing included.
#   BITNET_FUZZ_SECONDS   seconds per fuzz target (default 60)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"

if [[ ! -f build-fuzz/build.ninja ]]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DBITNET_FUZZ=ON -DBITNET_TESTS=OFF -DBITNET_BENCH=OFF >/dev/null
fi
cmake --build build-fuzz

cmake -S . -B build -DBITNET_FUZZ_DIR="$root/build-fuzz" \
  -DBITNET_FUZZ_SECONDS="${BITNET_FUZZ_SECONDS:-60}" >/dev/null
cmake --build build
cd build
ctest --output-on-failure -j "$(nproc)"
