#!/usr/bin/env bash
# Prefill/decode tokens/s of the CPU runtime: stories260K (real, ../shared) and a synthetic
# ~122M-parameter F16 Llama-shape model, at 512 and 4096 tokens of context, 1 and 2 threads.
#   usage: bench/runtime/run_runtime_bench.sh [build-dir]   (prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SHARED=${LEOAM_SHARED:-../shared}
BIN=$BUILD/bin
MODEL124=$BUILD/models/synthetic-llama-124m-f16.gguf
if [ ! -f "$MODEL124" ]; then
  mkdir -p "$BUILD/models"
  "$BIN/leoam-synth" --preset llama-124m --dtype f16 --out "$MODEL124" >&2
fi
header=true
for threads in 1 2; do
  if [ -f "$SHARED/models/stories260K.gguf" ]; then
    "$BIN/leoam-bench-runtime" --model "$SHARED/models/stories260K.gguf" --label stories260K --threads $threads \
      --prompt-tokens 512,2048 --decode-tokens 128 --reps 5 --header=$header
    header=false
  fi
  "$BIN/leoam-bench-runtime" --model "$MODEL124" --label synthetic-llama-124m-f16 --threads $threads \
    --prompt-tokens 512,4096 --decode-tokens 64 --reps 3 --header=$header
  header=false
done
