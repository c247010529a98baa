#!/usr/bin/env bash
# lint.sh BUILD_DIR: clang-format (every C++ file must already be formatted) and clang-tidy
# (.clang-tidy; every finding is an error) over the project's sources.
set -euo pipefail
build=$1
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h')
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '^src/.*\.cpp$')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# clang-tidy needs one compile command per source; unity builds (BITNET_UNITY) list batches
# instead, so configure (without building) a tree that lists every file.
# The same compiler as the build it was given.
db="$build/lint-db"
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
cmake -S . -B "$db" ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} -DBITNET_UNITY=OFF -DBITNET_TESTS=OFF \
  -DBITNET_BENCH=OFF -DBITNET_FUZZ=OFF -DBITNET_SANITIZE=OFF >/dev/null
# Two checks are most of clang-tidy's time: the clang static analyzer (over half of it) and
# performance-unnecessary-value-param (40 % of the rest, most of it spent inside CLI11's and
# nlohmann/json's templates). The suite runs the other checks; BITNET_LINT_FULL=1 (on demand,
# before a release) runs all of .clang-tidy.
extra=(--checks=-clang-analyzer-*,-performance-unnecessary-value-param)
[[ "${BITNET_LINT_FULL:-0}" == 1 ]] && extra=()
if ! printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$db" --quiet \
    --extra-arg=-Wno-unknown-warning-option "${extra[@]}" >"$log" 2>&1; then
  grep -E "(warning|error):" "$log" | sort -u
  echo "clang-tidy: findings above" >&2
  exit 1
fi
echo "clang-tidy: ${#sources[@]} sources clean${extra:+ (without the static analyzer and performance-unnecessary-value-param; BITNET_LINT_FULL=1 adds them)}"
