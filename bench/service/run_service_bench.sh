#!/usr/bin/env bash
# Service benchmark: leoam-compute on a synthetic llama-124m (leoam-synth, random weights, f16),
# loaded by leoam-bench-service at 1, 4 and 16 concurrent clients, with decode batching
# (--max-batch 16) and without (--max-batch 1). Prints a markdown table.
#
#   bench/service/run_service_bench.sh [BUILD_DIR] [extra leoam-bench-service flags...]
#   env: THREADS (compute threads, default: all CPUs), REQUESTS (per client, default 2),
#        MAX_TOKENS (default 64), PROMPT_TOKENS (default 32), MODEL (a GGUF to use instead)
set -euo pipefail
BUILD=${1:-build}
shift || true
BIN="$BUILD/bin"
for b in leoam-compute leoam-bench-service leoam-synth; do
  [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b (build it: ninja -C $BUILD $b)" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/leoam-service-bench.XXXXXX")
COMPUTE_PID=""
cleanup() {
  if [[ -n "$COMPUTE_PID" ]]; then kill -TERM "$COMPUTE_PID" 2>/dev/null || true; wait "$COMPUTE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

MODEL=${MODEL:-}
if [[ -z "$MODEL" ]]; then
  MODEL="$WORK/llama-124m.gguf"
  "$BIN/leoam-synth" --preset llama-124m --seed 1 --out "$MODEL" >/dev/null
fi
THREADS=${THREADS:-0}
REQUESTS=${REQUESTS:-2}
MAX_TOKENS=${MAX_TOKENS:-64}
PROMPT_TOKENS=${PROMPT_TOKENS:-32}
SOCK="unix://$WORK/compute.sock"

echo "model: synthetic llama-124m (random weights, f16) | prompt $PROMPT_TOKENS tokens, $MAX_TOKENS generated, $REQUESTS requests per client | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| config | clients | tokens | tokens/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | failures |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for batch in 16 1; do
  "$BIN/leoam-compute" --model "$MODEL" --listen "$SOCK" --threads "$THREADS" --max-batch "$batch" \
      --max-concurrent 64 >"$WORK/compute.log" 2>&1 &
  COMPUTE_PID=$!
  for _ in $(seq 1 600); do
    "$BIN/leoam-bench-service" --server "$SOCK" --clients 1 --requests 0 --warmup 0 --markdown=false >/dev/null 2>&1 && break
    sleep 0.1
  done
  for clients in 1 4 16; do
    "$BIN/leoam-bench-service" --server "$SOCK" --clients "$clients" --requests "$REQUESTS" \
        --max-tokens "$MAX_TOKENS" --prompt-tokens "$PROMPT_TOKENS" --label "max-batch $batch" "$@"
  done
  kill -TERM "$COMPUTE_PID"; wait "$COMPUTE_PID" || true
  COMPUTE_PID=""
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
