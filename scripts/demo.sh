#!/usr/bin/env bash
# The main job: set up, build, then write a small synthetic model (real Llama-3 vocabulary,
# RANDOM weights) and inspect it. Inference arrives with the engine; until then this shows the
# GGUF layer end to end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
mkdir -p out
model=out/demo-bitnet.gguf
vocab=.cache/reference/llama.cpp/models/ggml-vocab-llama-bpe.gguf
echo "== bitnet synth: a 2-layer bitnet-architecture model with RANDOM weights"
build/bitnet synth -o "$model" --arch bitnet --vocab "$vocab" --n-embd 256 --n-layer 2 \
  --n-head 4 --n-head-kv 2 --n-ff 640
echo "== bitnet inspect $model"
build/bitnet inspect "$model"
