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
# The clang static analyzer is over half of clang-tidy's time; the suite runs the other checks
# and BITNET_LINT_FULL=1 (on demand, before a release) adds the analyzer.
extra=(--checks=-clang-analyzer-*)
[[ "${BITNET_LINT_FULL:-0}" == 1 ]] && extra=()
if ! printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet \
    --extra-arg=-Wno-unknown-warning-option "${extra[@]}" >"$log" 2>&1; then
  grep -E "(warning|error):" "$log" | sort -u
  echo "clang-tidy: findings above" >&2
  exit 1
fi
echo "clang-tidy: ${#sources[@]} sources clean${extra:+ (without the static analyzer; BITNET_LINT_FULL=1 adds it)}"
