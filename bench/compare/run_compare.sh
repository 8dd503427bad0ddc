#!/usr/bin/env bash
# Side-by-side CPU prefill/decode tokens/s: llama.cpp (prebuilt binary from the npm package
# @node-llama-cpp/linux-x64, driven by llamacpp_bench.mjs) vs LeoAM (leoam-bench-runtime), run
# interleaved in one go on stories260K (pp512/tg128) and the synthetic llama-124m F16 model
# (pp512/tg128 and pp4096 then tg64). Prints ONE markdown table with the ratio LeoAM/llama.cpp.
#   usage: bench/compare/run_compare.sh [build-dir]      (build-dir must hold bin/leoam-bench-runtime
#          and bin/leoam-synth; nothing is built here)
#   env:   THREADS="2 1"  REPS_SMALL=5  REPS_LARGE=3  LEOAM_SHARED=../shared  FLASH_ATTN=off
#          QUIET_WAIT=0 (seconds to wait, before each row, for the machine to go quiet: fewer than
#          QUIET_MAX=0.5 other runnable threads on average over 2 s). The table's last column says how
#          many cores other processes kept busy during each engine's run: trust rows where it is ~0.
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

# CPU busy time of the whole machine, in clock ticks (user+nice+system+irq+softirq+steal).
cpu_busy() { local a; read -r -a a < /proc/stat; echo $((a[1] + a[2] + a[3] + a[6] + a[7] + a[8])); }
HZ=$(getconf CLK_TCK)
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
# run_engine CMD...: sets OUT (its stdout) and OTHERS (average number of cores that OTHER processes
# kept busy while it ran: machine busy time minus this command's own user+system time, over wall).
run_engine() {
  local TIMEFORMAT='%3R %3U %3S' b0 b1 wall user sys
  b0=$(cpu_busy)
  { time "$@" > "$TMP/out" 2>&3; } 3>&2 2> "$TMP/time"
  b1=$(cpu_busy)
  read -r wall user sys < "$TMP/time"
  OUT=$(cat "$TMP/out")
  OTHERS=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v w="$wall" -v u="$user" -v s="$sys" \
           'BEGIN {o = (d / hz - u - s) / w; printf "%.2f", o < 0 ? 0 : o}')
}

# One row per (model, threads, prompt, decode): both engines, engine order alternating per row.
rows=()
order=0
bench_row() {  # label model reps prompt decode threads
  local label=$1 model=$2 reps=$3 prompt=$4 decode=$5 threads=$6 l r lo ro busy
  local args=(--model "$model" --label "$label" --prompt-tokens "$prompt" --decode-tokens "$decode"
              --threads "$threads" --reps "$reps" --header=false)
  busy=$(wait_quiet)
  if (( order++ % 2 == 0 )); then
    run_engine "${LLAMA[@]}" "${args[@]}"; l=$OUT lo=$OTHERS
    run_engine "$BIN/leoam-bench-runtime" "${args[@]}"; r=$OUT ro=$OTHERS
  else
    run_engine "$BIN/leoam-bench-runtime" "${args[@]}"; r=$OUT ro=$OTHERS
    run_engine "${LLAMA[@]}" "${args[@]}"; l=$OUT lo=$OTHERS
  fi
  echo "  $label t=$threads pp$prompt/tg$decode  other runnable before: $busy" >&2
  echo "    llama.cpp $l  others' CPU: $lo cores" >&2
  echo "    LeoAM     $r  others' CPU: $ro cores" >&2
  rows+=("$(awk -v l="$l" -v r="$r" -v label="$label" -v t="$threads" -v p="$prompt" -v d="$decode" \
    -v noise="$lo / $ro" 'BEGIN {
      split(l, a, "|"); split(r, b, "|");
      printf "| %s | %s | %s | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f | %s |",
        label, t, p, d, a[6], b[6], b[6] / a[6], a[7], b[7], b[7] / a[7], noise }')")
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
echo "| model | threads | prompt | decode | llama.cpp pp tok/s | LeoAM pp tok/s | pp LeoAM/llama.cpp | llama.cpp tg tok/s | LeoAM tg tok/s | tg LeoAM/llama.cpp | others' CPU (cores) llama.cpp / LeoAM |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "llama.cpp: node-llama-cpp $(node -p "require('$ROOT/bench/compare/node_modules/node-llama-cpp/package.json').version") prebuilt CPU binary," \
     "flash-attn $FLASH_ATTN, ubatch 512, F16 KV cache, timings from llama_perf_context. $(nproc) CPUs," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). others' CPU: cores kept busy by other processes during each engine's run (0 = quiet; the machine has 2)."
