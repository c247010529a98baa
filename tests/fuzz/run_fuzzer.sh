#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR SECONDS [DICT]: fuzzes for a bounded time from a copy of the
# seed corpus (the checked-in seeds stay unchanged) and fails on any crash, leak, timeout or
# sanitizer report. Prints the number of executions; a failing input is kept (BITNET_FUZZ_KEEP,
# default ./fuzz-artifacts) and printed in base64.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 dict=${4:-}
[[ -x "$fuzzer" ]] || { echo "fuzzer $fuzzer is not built" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
      -artifact_prefix="$work/artifacts/" -print_final_stats=1)
[[ -n "$dict" ]] && args+=(-dict="$dict")
status=0
"$fuzzer" "${args[@]}" "$work/corpus" >"$work/log" 2>&1 || status=$?
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" "$work/log" || true
if [[ $status -ne 0 ]] || ls "$work/artifacts" | grep -q .; then
  tail -n 60 "$work/log"
  echo "fuzzer found a problem (exit $status); inputs: $(ls "$work/artifacts")" >&2
  # Keep the inputs (the work folder is removed) and print them whole, so that a failure in CI
  # can be reproduced: base64 -d > crash; FUZZER crash.
  keep=${BITNET_FUZZ_KEEP:-$PWD/fuzz-artifacts}
  mkdir -p "$keep" && cp "$work"/artifacts/* "$keep/" 2>/dev/null || true
  echo "kept in $keep" >&2
  for f in "$work"/artifacts/*; do
    [[ -f "$f" ]] || continue
    echo "---- $(basename "$f") ($(stat -c %s "$f") bytes), base64:"
    base64 -w 100 "$f" | head -n 400
  done
  exit 1
fi
