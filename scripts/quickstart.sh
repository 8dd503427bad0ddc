#!/usr/bin/env bash
# The main job, on one machine with one command: installs packages, builds, starts leoam-kvstore and
# leoam-compute on unix sockets in a temp dir, sends a long prompt with the `leoam` CLI (streamed
# answer; TTFT, tokens/s and KV tier hits), restarts the KV store, and sends the same prompt again:
# its KV now comes from the store's persisted cache.
#
#   scripts/quickstart.sh [--model M.gguf] [--prompt-tokens N] [--max-tokens N] [--device-budget SIZE]
#                         [--mode leoam|quest|offload-all] [--kill] [--no-install] [--keep]
#
# Without --model it uses a SYNTHETIC model (random weights: its text is gibberish; speeds and cache
# behaviour are real), generated on first use with leoam-synth (preset $LEOAM_QUICKSTART_PRESET,
# default llama-124m: 122M parameters, F16, 8K context) into $LEOAM_BUILD_DIR/models/.
#   --prompt-tokens  length of the long prompt (default 3000; at most the model's context)
#   --max-tokens     tokens to generate per request (default 48)
#   --device-budget  KV bytes each request keeps in (device) memory; the rest lives in the store (32MiB;
#                    prefill needs one layer's pages of the whole prompt resident)
#   --kill           restart the store with kill -9 instead of SIGTERM (the cache survives that too)
#   --no-install     skip scripts/install-deps.sh;  --keep  keep the temp dir (logs, RocksDB) at the end
# Environment: LEOAM_BUILD_DIR (build), LEOAM_CUDA (AUTO), LEOAM_BUILD_JOBS (all CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODEL=""
PROMPT_TOKENS=3000
MAX_TOKENS=48
DEVICE_BUDGET=32MiB
MODE=leoam
KILL_SIGNAL=TERM
INSTALL=1
KEEP=0
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --model=*) MODEL=${1#*=}; shift ;;
    --prompt-tokens) PROMPT_TOKENS=$2; shift 2 ;;
    --prompt-tokens=*) PROMPT_TOKENS=${1#*=}; shift ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --max-tokens=*) MAX_TOKENS=${1#*=}; shift ;;
    --device-budget) DEVICE_BUDGET=$2; shift 2 ;;
    --device-budget=*) DEVICE_BUDGET=${1#*=}; shift ;;
    --mode) MODE=$2; shift 2 ;;
    --mode=*) MODE=${1#*=}; shift ;;
    --kill) KILL_SIGNAL=KILL; shift ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "quickstart: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done

BUILD_DIR=${LEOAM_BUILD_DIR:-build}
BIN="$ROOT/$BUILD_DIR/bin"
case "$BUILD_DIR" in /*) BIN="$BUILD_DIR/bin" ;; esac
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# ------------------------------------------------------------------ install and build
if [ "$INSTALL" = 1 ]; then
  step "Installing packages (scripts/install-deps.sh)"
  ./scripts/install-deps.sh
fi
step "Building leoam-kvstore, leoam-compute, leoam, leoam-synth into $BUILD_DIR"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLEOAM_CUDA="${LEOAM_CUDA:-AUTO}"
fi
cmake --build "$BUILD_DIR" -j "${LEOAM_BUILD_JOBS:-$(nproc)}" --target leoam-kvstore leoam-compute leoam leoam-synth

# ------------------------------------------------------------------ model
if [ -z "$MODEL" ]; then
  PRESET=${LEOAM_QUICKSTART_PRESET:-llama-124m}
  MODEL="$ROOT/$BUILD_DIR/models/synthetic-$PRESET.gguf"
  case "$BUILD_DIR" in /*) MODEL="$BUILD_DIR/models/synthetic-$PRESET.gguf" ;; esac
  if [ ! -f "$MODEL" ]; then
    step "No --model given: generating a SYNTHETIC model ($PRESET, random weights) at $MODEL"
    mkdir -p "$(dirname "$MODEL")"
    "$BIN/leoam-synth" --preset "$PRESET" --out "$MODEL.tmp" && mv "$MODEL.tmp" "$MODEL"
  fi
  echo "NOTE: $MODEL is a SYNTHETIC model with random weights: the generated text is gibberish."
  echo "      Timings, tier hits and the cache are real. Use --model M.gguf for a real model."
fi
[ -f "$MODEL" ] || { echo "quickstart: model $MODEL not found" >&2; exit 1; }

# ------------------------------------------------------------------ processes
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/leoam-quickstart.XXXXXX")
KV_SOCK="unix://$RUN_DIR/kvstore.sock"
SERVER="unix://$RUN_DIR/compute.sock"
KV_PID=""
COMPUTE_PID=""
cleanup() {
  local rc=$?
  [ -n "$COMPUTE_PID" ] && kill "$COMPUTE_PID" 2>/dev/null && wait "$COMPUTE_PID" 2>/dev/null
  [ -n "$KV_PID" ] && kill "$KV_PID" 2>/dev/null && wait "$KV_PID" 2>/dev/null
  if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
    echo "quickstart: logs and data kept in $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

leoam() { "$BIN/leoam" --server="$SERVER" "$@"; }

# Waits until the log says the process listens (or it died).
wait_listening() {  # pid log name
  for _ in $(seq 1 600); do
    if grep -q "listening on\|serving .* on" "$2" 2>/dev/null; then return 0; fi
    if ! kill -0 "$1" 2>/dev/null; then
      echo "quickstart: $3 exited; its log:" >&2
      tail -20 "$2" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "quickstart: $3 did not start within 120 s; see $2" >&2
  exit 1
}

start_kvstore() {  # log file
  "$BIN/leoam-kvstore" --listen="$KV_SOCK" --data-dir="$RUN_DIR/kv" --arena-size=1GiB --io-threads=4 \
    >"$1" 2>&1 &
  KV_PID=$!
  wait_listening "$KV_PID" "$1" leoam-kvstore
}

step "Starting leoam-kvstore ($KV_SOCK, RocksDB in $RUN_DIR/kv)"
start_kvstore "$RUN_DIR/kvstore.1.log"
echo "pid $KV_PID"

step "Starting leoam-compute ($SERVER, mode $MODE, device budget $DEVICE_BUDGET per request)"
"$BIN/leoam-compute" --model="$MODEL" --listen="$SERVER" --kvstore="$KV_SOCK" --mode="$MODE" \
  --device-budget="$DEVICE_BUDGET" >"$RUN_DIR/compute.log" 2>&1 &
COMPUTE_PID=$!
wait_listening "$COMPUTE_PID" "$RUN_DIR/compute.log" leoam-compute
echo "pid $COMPUTE_PID"
leoam info

# ------------------------------------------------------------------ the long prompt
# Real English text, repeated with a counter so that no two paragraphs are the same, until it
# tokenizes to about --prompt-tokens tokens.
paragraph() {
  echo "Part $1. The old lighthouse keeper climbed the spiral stairs every evening, counting the steps, listening to" \
       "the sea against the rocks below, and writing in his notebook what the ships had carried past the point that day."
}
per_paragraph=$(leoam tokenize "$(paragraph 1)" | tr ',' '\n' | grep -c .)
count=$(( PROMPT_TOKENS / per_paragraph ))
[ "$count" -ge 1 ] || count=1
PROMPT_FILE="$RUN_DIR/prompt.txt"
for i in $(seq 1 "$count"); do paragraph "$i"; done >"$PROMPT_FILE"
echo "Summarize what the keeper wrote." >>"$PROMPT_FILE"
PROMPT=$(cat "$PROMPT_FILE")
prompt_tokens=$(leoam tokenize --add-special "$PROMPT" | tr ',' '\n' | grep -c .)

ask() {  # title, name (its stderr, with the usage line, is kept in $RUN_DIR/name.err)
  step "$1"
  echo "prompt: $prompt_tokens tokens (\"$(head -c 80 "$PROMPT_FILE")...\"), max $MAX_TOKENS new tokens"
  echo "--- answer (streamed) ---"
  leoam generate --max-tokens="$MAX_TOKENS" --ignore-eos "$PROMPT" 2> >(tee "$RUN_DIR/$2.err" >&2)
  wait $!  # the tee
  echo
  echo "--- server ---"
  leoam stats
}
usage_line() {  # name -> "TTFT ... ms, ... tokens/s; cached tokens ... (memory ..., disk ...)"
  tr '\r' '\n' <"$RUN_DIR/$1.err" | grep -o 'TTFT .*disk [0-9]*)' | tail -1
}

ask "Request 1: a long prompt, nothing cached yet" request1

# ------------------------------------------------------------------ restart the store
step "Restarting leoam-kvstore (SIG$KILL_SIGNAL; the RocksDB tier in $RUN_DIR/kv persists)"
kill -s "$KILL_SIGNAL" "$KV_PID"
wait "$KV_PID" 2>/dev/null || true
KV_PID=""
start_kvstore "$RUN_DIR/kvstore.2.log"
echo "new pid $KV_PID; $(grep -o 'disk tier at .*' "$RUN_DIR/kvstore.2.log" | head -1)"
# Compute notices the new store instance and re-attaches (new session, new arena) by itself.
for _ in $(seq 1 100); do
  if leoam stats 2>/dev/null | grep -q "^kvstore: .*, connected, [1-9][0-9]* reconnect"; then break; fi
  sleep 0.2
done
leoam stats | grep "^kvstore"

ask "Request 2: the same prompt after the restart, its KV served from the persisted cache" request2

step "Summary ($prompt_tokens prompt tokens, $(basename "$MODEL"), mode $MODE, device budget $DEVICE_BUDGET)"
echo "request 1 (cold):                      $(usage_line request1)"
echo "request 2 (after the store restarted): $(usage_line request2)"
if ! usage_line request2 | grep -q "cached tokens [1-9]"; then
  echo "quickstart: the second request was NOT served from the store's cache (see $RUN_DIR/compute.log)" >&2
  exit 1
fi
echo "Logs: $RUN_DIR/{compute,kvstore.1,kvstore.2}.log$([ "$KEEP" = 1 ] && echo " (kept)")"
