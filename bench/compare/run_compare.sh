#!/usr/bin/env bash
# Side-by-side CPU prefill/decode tokens/s: llama.cpp (prebuilt binary from the npm package
# @node-llama-cpp/linux-x64, driven by llamacpp_bench.mjs) vs LeoAM (leoam-bench-runtime), run
# interleaved in one go on stories260K (pp512/tg128) and the synthetic llama-124m F16 model
# (pp512/tg128 and pp4096 then tg64). Prints ONE markdown table with the ratio LeoAM/llama.cpp.
#   usage: bench/compare/run_compare.sh [build-dir]      (build-dir must hold bin/leoam-bench-runtime
#          and bin/leoam-synth; nothing is built here)
#   env:   THREADS="2 1"  REPS_SMALL=5  REPS_LARGE=3  LEOAM_SHARED=../shared  FLASH_ATTN=off
#          QUIET_WAIT=0 (seconds to wait, before each row, for the machine to go quiet: fewer than
#          QUIET_MAX=0.5 other runnable threads on average over 2 s; the table records what it was)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$(cd "${1:-build}" && pwd)
SHARED=${LEOAM_SHARED:-../shared}
THREADS=${THREADS:-"2 1"}
REPS_SMALL=${REPS_SMALL:-5}
REPS_LARGE=${REPS_LARGE:-3}
FLASH_ATTN=${FLASH_ATTN:-off}
QUIET_WAIT=${QUIET_WAIT:-0}
QUIET_MAX=${QUIET_MAX:-0.5}
BIN=$BUILD/bin
for b in leoam-bench-runtime leoam-synth; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (build it first)" >&2; exit 1; }
done
command -v node >/dev/null || { echo "node is required (Debian package nodejs)" >&2; exit 1; }

# node-llama-cpp without any download or source build: skip its postinstall and the optional
# GPU binaries; the CPU binary comes from @node-llama-cpp/linux-x64 (pinned in package.json).
# `npm install` with the committed lockfile, not `npm ci`: npm leaves the other platforms' optional
# packages out of a lockfile made on Linux and `npm ci` then refuses it as out of sync.
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
if [ ! -d bench/compare/node_modules/node-llama-cpp ]; then
  (cd bench/compare && npm install --omit=optional --ignore-scripts --no-audit --no-fund >&2)
fi

STORIES=$SHARED/models/stories260K.gguf
MODEL124=$BUILD/models/synthetic-llama-124m-f16.gguf
if [ ! -f "$MODEL124" ]; then
  mkdir -p "$BUILD/models"
  "$BIN/leoam-synth" --preset llama-124m --dtype f16 --out "$MODEL124" >&2
fi
LLAMA=(node bench/compare/llamacpp_bench.mjs --flash-attn "$FLASH_ATTN")

# First: can llama.cpp load our synthetic GGUF at all? If not, that is a bug in the synth files.
if ! "${LLAMA[@]}" --model "$MODEL124" --load-only >&2; then
  echo "llama.cpp could NOT load $MODEL124 (see the error above)" >&2
  exit 2
fi

# Average number of OTHER runnable threads over 2 s (procs_running counts the reader itself).
other_runnable() {
  local s=0 i k v rest
  for i in 1 2 3 4 5 6 7 8 9 10; do  # bash builtins only, so that the reader is the one process counted
    while read -r k v rest; do [[ $k == procs_running ]] && s=$((s + v - 1)); done < /proc/stat
    sleep 0.2
  done
  awk -v s=$s 'BEGIN {printf "%.1f", s / 10}'
}
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT)) busy
  while :; do
    busy=$(other_runnable)
    if awk -v b="$busy" -v m="$QUIET_MAX" 'BEGIN {exit !(b < m)}' || (( SECONDS >= deadline )); then
      echo "$busy"; return
    fi
    sleep 5
  done
}

# One row per (model, threads, prompt, decode): both engines, engine order alternating per row.
rows=()
order=0
bench_row() {  # label model reps prompt decode threads
  local label=$1 model=$2 reps=$3 prompt=$4 decode=$5 threads=$6 l r load busy
  local args=(--model "$model" --label "$label" --prompt-tokens "$prompt" --decode-tokens "$decode"
              --threads "$threads" --reps "$reps" --header=false)
  busy=$(wait_quiet); load=$(cut -d' ' -f1 /proc/loadavg)
  if (( order++ % 2 == 0 )); then
    l=$("${LLAMA[@]}" "${args[@]}"); r=$("$BIN/leoam-bench-runtime" "${args[@]}")
  else
    r=$("$BIN/leoam-bench-runtime" "${args[@]}"); l=$("${LLAMA[@]}" "${args[@]}")
  fi
  echo "  $label t=$threads pp$prompt/tg$decode  load avg $load, other runnable $busy" >&2
  echo "    llama.cpp $l" >&2
  echo "    LeoAM     $r" >&2
  rows+=("$(awk -F'|' -v l="$l" -v r="$r" -v label="$label" -v t="$threads" -v p="$prompt" -v d="$decode" \
    -v load="$load / $busy" 'BEGIN {
      split(l, a, "|"); split(r, b, "|");
      printf "| %s | %s | %s | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f | %s |",
        label, t, p, d, a[6], b[6], b[6] / a[6], a[7], b[7], b[7] / a[7], load }')")
}

for t in $THREADS; do
  if [ -f "$STORIES" ]; then
    bench_row stories260K "$STORIES" "$REPS_SMALL" 512 128 "$t"
  else
    echo "no $STORIES: skipping stories260K" >&2
  fi
  bench_row synthetic-llama-124m-f16 "$MODEL124" "$REPS_LARGE" 512 128 "$t"
  bench_row synthetic-llama-124m-f16 "$MODEL124" "$REPS_LARGE" 4096 64 "$t"
done

echo
echo "| model | threads | prompt | decode | llama.cpp pp tok/s | LeoAM pp tok/s | pp LeoAM/llama.cpp | llama.cpp tg tok/s | LeoAM tg tok/s | tg LeoAM/llama.cpp | load avg / other runnable |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "llama.cpp: node-llama-cpp $(node -p "require('$ROOT/bench/compare/node_modules/node-llama-cpp/package.json').version") prebuilt CPU binary," \
     "flash-attn $FLASH_ATTN, ubatch 512, F16 KV cache, timings from llama_perf_context. $(nproc) CPUs," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). before each row: 1-min load avg / other runnable threads (2 s avg)."
