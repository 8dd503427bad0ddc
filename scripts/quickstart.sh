#!/usr/bin/env bash
# The main job from a fresh machine: install dependencies, build, then generate text with
# leoam-run. Uses ../shared/models/stories260K.gguf when present (a real trained model); otherwise
# generates a synthetic model (random weights: its text is gibberish, and it says so).
#   extra arguments are passed to leoam-run (e.g. --prompt "..." --max-tokens 64)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
BUILD_DIR=${LEOAM_BUILD_DIR:-build}
SHARED=${LEOAM_SHARED:-../shared}
MODEL=${LEOAM_MODEL:-}
if [ -z "$MODEL" ]; then
  if [ -f "$SHARED/models/stories260K.gguf" ]; then
    MODEL="$SHARED/models/stories260K.gguf"
  else
    MODEL="$BUILD_DIR/models/synthetic-tiny-llama.gguf"
    if [ ! -f "$MODEL" ]; then
      mkdir -p "$BUILD_DIR/models"
      echo "No model given and ../shared not found: generating a SYNTHETIC model (random weights) at $MODEL"
      "$BUILD_DIR/bin/leoam-synth" --preset tiny-llama --out "$MODEL"
    fi
  fi
fi
echo "== leoam-run --model $MODEL"
if [ $# -eq 0 ]; then set -- --prompt "Once upon a time" --max-tokens 200 --temperature 0; fi
"$BUILD_DIR/bin/leoam-run" --model "$MODEL" "$@"
