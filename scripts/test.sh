#!/usr/bin/env bash
# The whole test suite: set up, build (g++ Release; one clang tree with ASan+UBSan and libFuzzer
# coverage for the sanitized copy of the suite and the fuzz targets), then run every test through
# CTest, fuzzing, the sanitized suite and lint included.
#   BITNET_FUZZ_SECONDS   seconds per fuzz target (default 30: the five targets together stay under 3 minutes)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"

# The library, CLI, test program and fuzz targets once more with clang, ASan and UBSan. The fuzz
# targets need libFuzzer's coverage instrumentation; the sanitized tests run with it too, which
# costs them a little and saves building everything a third time. -O1 with line tables only
# compiles much faster than -O2 -g and still gives sanitizer reports with file:line.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  -DBITNET_SANITIZE=ON -DBITNET_FUZZ=ON -DBITNET_BENCH=OFF >/dev/null
cmake --build build-asan

cmake -S . -B build -DBITNET_FUZZ_DIR="$root/build-asan" -DBITNET_SANITIZE_DIR="$root/build-asan" \
  -DBITNET_FUZZ_SECONDS="${BITNET_FUZZ_SECONDS:-30}" >/dev/null
cmake --build build
cd build
ctest --output-on-failure -j "$(nproc)"
