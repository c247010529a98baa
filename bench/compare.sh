#!/usr/bin/env bash
# compare.sh MODEL.gguf [REFERENCE_MODEL.gguf] [-p N] [-n N] [-t N] [-r N] [--rounds N] [--head-type T]
# Runs `bitnet bench` and llama.cpp (the npm reference, bench/reference_bench.mjs) alternately,
# the same prompt length, generation length and threads, and prints both and the ratios.
# REFERENCE_MODEL defaults to MODEL (llama.cpp cannot read I2_S or bitnet-b1.58: give it the
# same shapes in TQ2_0). Benchmarks, not tests: nothing here asserts on time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: compare.sh MODEL.gguf [REFERENCE_MODEL.gguf] [-p N] [-n N] [-t N] [-r N] [--rounds N] [--head-type T]" >&2
  exit 2
fi
model=$1; shift
ref_model=$model
if [[ $# -gt 0 && $1 != -* ]]; then ref_model=$1; shift; fi
p=128 n=32 t=2 r=3 rounds=2 head=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -p) p=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    -t) t=$2; shift 2 ;;
    -r) r=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --head-type) head=(--head-type "$2"); shift 2 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bitnet=${BITNET:-$root/build/bitnet}
ref=${BITNET_REFERENCE_DIR:-$root/.cache/reference}
[[ -x $bitnet ]] || { echo "compare.sh: build bitnet first ($bitnet)" >&2; exit 1; }
ours=() theirs=()
for ((i = 1; i <= rounds; i++)); do
  line=$("$bitnet" bench -m "$model" -p "$p" -n "$n" -t "$t" -r "$r" "${head[@]}" --json | tail -n 1)
  ours+=("$line")
  theirs+=("$(node "$root/bench/reference_bench.mjs" "$ref" "$ref_model" "$p" "$n" "$t" "$r" | tail -n 1)")
done
python3 - "$p" "$n" "$t" "${#ours[@]}" "${ours[@]}" "${theirs[@]}" <<'PY'
import json, statistics, sys
p, n, t, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ours = [json.loads(x) for x in sys.argv[5:5 + k]]
theirs = [json.loads(x) for x in sys.argv[5 + k:5 + 2 * k]]
print(f"cpu: {ours[0]['cpu']}")
print(f"bitnet: {ours[0]['kernels']} ({ours[0]['isa']}), head {ours[0].get('head_type', 'file')}; "
      f"bandwidth {statistics.mean(o['bandwidth_gb_s'] for o in ours):.1f} GB/s")
print(f"{'round':>5} {'bitnet pp' + p:>14} {'llama.cpp pp' + p:>16} {'ratio':>6} "
      f"{'bitnet tg' + n:>12} {'llama.cpp tg' + n:>14} {'ratio':>6} {'roofline':>8}")
for i, (o, r) in enumerate(zip(ours, theirs), 1):
    print(f"{i:>5} {o['pp_tok_s']:>14.2f} {r['pp_tok_s']:>16.2f} {o['pp_tok_s'] / r['pp_tok_s']:>6.2f} "
          f"{o['tg_tok_s']:>12.2f} {r['tg_tok_s']:>14.2f} {o['tg_tok_s'] / r['tg_tok_s']:>6.2f} "
          f"{o['tg_roofline_pct']:>7.0f}%")
mo = lambda k, xs: statistics.mean(x[k] for x in xs)
print(f"{'mean':>5} {mo('pp_tok_s', ours):>14.2f} {mo('pp_tok_s', theirs):>16.2f} "
      f"{mo('pp_tok_s', ours) / mo('pp_tok_s', theirs):>6.2f} {mo('tg_tok_s', ours):>12.2f} "
      f"{mo('tg_tok_s', theirs):>14.2f} {mo('tg_tok_s', ours) / mo('tg_tok_s', theirs):>6.2f} "
      f"{mo('tg_roofline_pct', ours):>7.0f}%   ({t} threads)")
PY
