#!/usr/bin/env bash
# The main job: set up, build, write a small model with the layout of Microsoft's BitNet b1.58
# 2B-4T release (I2_S weights, Llama-3 vocabulary, no tokenizer.ggml.pre) but RANDOM weights,
# inspect it and generate text with it. Real weights cannot be downloaded here; point
# `build/bitnet run -m` at a real ggml-model-i2_s.gguf to get meaningful text.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
mkdir -p out
model=out/demo-bitnet-b1.58.gguf
vocab=.cache/reference/llama.cpp/models/ggml-vocab-llama-bpe.gguf
if [[ ! -f "$model" ]]; then
  echo "== bitnet synth: a reduced BitNet b1.58 2B-4T replica (4 layers, width 512) with RANDOM weights"
  build/bitnet synth -o "$model" --replica-2b4t --vocab "$vocab" --n-embd 512 --n-layer 4 \
    --n-head 8 --n-head-kv 2 --n-ff 1536
fi
echo "== bitnet inspect $model (summary; the whole listing is in out/inspect.txt)"
build/bitnet inspect "$model" > out/inspect.txt
head -n 12 out/inspect.txt
echo
echo "== bitnet run: the weights are RANDOM, so the text below is meaningless; this shows the"
echo "   whole path (I2_S matmuls, ReLU² FFN, Llama-3 tokenizer, sampling, streaming) working."
build/bitnet run -m "$model" -p "The capital of France is" -n 32 --temp 0.7 --seed 1 -t "$(nproc)"
