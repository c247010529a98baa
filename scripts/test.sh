#!/usr/bin/env bash
# The whole test suite: set up, build (g++ Release; clang with ASan+UBSan for a sanitized copy
# of the suite; clang with libFuzzer for the fuzz targets), then run every test through CTest,
# fuzzing, the sanitized suite and lint included.
#   BITNET_FUZZ_SECONDS   seconds per fuzz target (default 40: the four targets together stay under 3 minutes)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"

if [[ ! -f build-fuzz/build.ninja ]]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DBITNET_FUZZ=ON -DBITNET_TESTS=OFF -DBITNET_BENCH=OFF >/dev/null
fi
# Only the fuzz targets (the CLI is built and tested in the other two trees).
cmake --build build-fuzz --target fuzz_gguf fuzz_tokenizer fuzz_template fuzz_request

# The whole library, CLI and test program once more with ASan and UBSan (clang).
if [[ ! -f build-asan/build.ninja ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DBITNET_SANITIZE=ON -DBITNET_BENCH=OFF >/dev/null
fi
cmake --build build-asan

cmake -S . -B build -DBITNET_FUZZ_DIR="$root/build-fuzz" -DBITNET_SANITIZE_DIR="$root/build-asan" \
  -DBITNET_FUZZ_SECONDS="${BITNET_FUZZ_SECONDS:-40}" >/dev/null
cmake --build build
cd build
ctest --output-on-failure -j "$(nproc)"
