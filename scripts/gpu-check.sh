#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one go: op-by-op tests against the CPU backend, the model
# end to end on the GPU (stories260K references, synthetic F16/BF16/Q8_0 models against the CPU,
# the paged engine), then the benchmarks (tables printed last).
#
#   scripts/gpu-check.sh build      on a machine with the -dev packages and nvcc: build for sm_90
#                                   (LEOAM_CUDA_ARCHITECTURES overrides; BUILD=dir picks the build
#                                   folder, default build-gpu/) and pack the test/bench binaries, their
#                                   non-system shared libraries and the shared model files they read
#                                   into carry/gpu/ (git-ignored) for a GPU machine without the packages
#   scripts/gpu-check.sh run        on the GPU machine: run what carry/gpu/ (unpacked from
#                                   carry/gpu-pack/gpu.tgz, the one path to carry) or the build folder holds;
#                                   logs go to $OUT (or carry/gpu/out) when set
#   scripts/gpu-check.sh            both
#
# Environment for run: DECODE_CONTEXTS (default 1024,32768) — contexts of the Llama-3.1-8B-shape
# decode bench; SKIP_8B=1 skips it (writing the 16 GB model takes a minute); SERVICE_BENCH=1 adds
# the service load bench (bench/service/run_service_bench.sh: leoam-compute on the GPU at 1, 4 and
# 16 clients); KVSTORE_BENCH=1 adds the KV store bench (bench/kvstore/run_kvstore_bench.sh);
# ENGINE_BENCH=1 adds the tiered engine on the GPU (leoam-bench-decode --backend cuda against a
# leoam-kvstore, structured llama-124m, ENGINE_CONTEXTS default 32768).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
BUILD=${BUILD:-build-gpu}
CARRY=carry/gpu
BINARIES=(cuda_backend_test cuda_model_test leoam-bench-cuda leoam-bench-runtime leoam-synth
          leoam-compute leoam-bench-service leoam-bench-decode-batch leoam-kvstore kvstore_bench leoam-bench-decode)

if [[ $MODE == build || $MODE == all ]]; then
  set -e
  cmake -S . -B "$BUILD" -G Ninja -DLEOAM_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DLEOAM_CUDA_ARCHITECTURES="${LEOAM_CUDA_ARCHITECTURES:-90}" >/dev/null
  ninja -C "$BUILD" "${BINARIES[@]}"
  rm -rf "$CARRY" && mkdir -p "$CARRY/bin" "$CARRY/lib" "$CARRY/shared/models"
  for b in "${BINARIES[@]}"; do cp "$BUILD/bin/$b" "$CARRY/bin/"; done
  strip "$CARRY"/bin/*
  # Shared libraries outside the base system (gRPC, protobuf, RocksDB, Abseil, ...), not CUDA's own.
  for bin in "$CARRY"/bin/*; do
    ldd "$bin" | awk '/=> \// {print $3}' | grep -vE '^/lib/x86_64-linux-gnu/(libc\.so|libm\.so|libstdc\+\+|libgcc_s|ld-linux)|cuda|libnvidia' |
      xargs -r -I{} cp -L -n {} "$CARRY/lib/"
  done
  strip --strip-unneeded "$CARRY"/lib/* 2>/dev/null || true
  SHARED=${LEOAM_SHARED:-../shared}
  cp "$SHARED/models/stories260K.gguf" "$SHARED/models/stories260K.greedy.jsonl" "$CARRY/shared/models/"
  # One archive to carry to the device machine (its copy of the tree is limited in size).
  mkdir -p carry/gpu-pack && tar -C carry -czf carry/gpu-pack/gpu.tgz gpu
  echo "packed $(ls "$CARRY/bin" | wc -l) binaries and $(ls "$CARRY/lib" | wc -l) libraries into $CARRY ($(du -sh "$CARRY" | cut -f1)), carry/gpu-pack/gpu.tgz ($(du -sh carry/gpu-pack/gpu.tgz | cut -f1))"
  set +e
fi

if [[ $MODE == run || $MODE == all ]]; then
  [[ -x $CARRY/bin/cuda_backend_test || ! -f carry/gpu-pack/gpu.tgz ]] || tar -C carry -xzf carry/gpu-pack/gpu.tgz
  if [[ -x $CARRY/bin/cuda_backend_test ]]; then
    BIN=$PWD/$CARRY/bin
    export LD_LIBRARY_PATH=$PWD/$CARRY/lib:${LD_LIBRARY_PATH:-}
    export LEOAM_SHARED=$PWD/$CARRY/shared
  else
    BIN=$PWD/$BUILD/bin
  fi
  LOGS=${OUT:-$CARRY/out}
  mkdir -p "$LOGS"
  export LEOAM_REQUIRE_GPU=1
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
  failed=0
  for t in cuda_backend_test cuda_model_test; do
    if timeout 300 "$BIN/$t" >"$LOGS/$t.log" 2>&1; then
      echo "$t: passed ($(grep -c '^\[       OK \]' "$LOGS/$t.log") cases)"
      grep -E '^\[ .* \] greedy|^step ' "$LOGS/$t.log" || true
    else
      failed=1
      echo "$t: FAILED"; grep -E '^\[  FAILED  \]|Failure|error' "$LOGS/$t.log" | head -40
      # A memory error shows up precisely under the sanitizer.
      if command -v compute-sanitizer >/dev/null; then
        timeout 150 compute-sanitizer --print-limit 20 "$BIN/$t" >"$LOGS/$t.sanitizer.log" 2>&1
        grep -E '^=========' "$LOGS/$t.sanitizer.log" | head -30
      fi
    fi
  done
  {
    "$BIN/leoam-bench-cuda"
    if [[ ${SKIP_8B:-0} != 1 ]]; then
      model=/tmp/llama3.1-8b-shape.gguf
      [[ -f $model ]] || "$BIN/leoam-synth" --preset llama3.1-8b --out "$model" >/dev/null
      echo
      echo "Decode step of a synthetic Llama-3.1-8B-shape model (F16 weights, fp32 KV) on the GPU:"
      "$BIN/leoam-bench-runtime" --model "$model" --label llama3.1-8b-f16 --backend cuda --noprefill \
        --prompt-tokens "${DECODE_CONTEXTS:-1024,32768}" --decode-tokens 32 --reps 2
    fi
    if [[ ${SERVICE_BENCH:-0} == 1 ]]; then
      echo
      echo "The model's batched decode step alone (leoam-bench-decode-batch, synthetic llama-124m, f16, context 64):"
      "$BIN/leoam-synth" --preset llama-124m --seed 1 --out /tmp/llama-124m.gguf >/dev/null
      "$BIN/leoam-bench-decode-batch" --model /tmp/llama-124m.gguf --context 64 --steps 16 --batches 1,4,8,16,32
      echo
      echo "Service load on the GPU (leoam-compute --backend auto):"
      MAX_TOKENS=${MAX_TOKENS:-96} PROMPT_TOKENS=${PROMPT_TOKENS:-16} REQUESTS=${REQUESTS:-2} \
        bench/service/run_service_bench.sh "$(dirname "$BIN")"
    fi
    if [[ ${ENGINE_BENCH:-0} == 1 ]]; then
      echo
      echo "Tiered engine on the GPU (structured llama-124m, token budget 10%, device budget 20% of the KV):"
      kv=/tmp/engine-kv && rm -rf "$kv" && mkdir -p "$kv"
      "$BIN/leoam-kvstore" --listen "unix://$kv/kv.sock" --data-dir "$kv/data" --arena-size 12GiB \
        --memory-limit 11GiB >"$kv/kvstore.log" 2>&1 &
      kv_pid=$!
      "$BIN/leoam-synth" --preset llama-124m-structured --out /tmp/s124.gguf >/dev/null
      for _ in $(seq 100); do [[ -S $kv/kv.sock ]] && break; sleep 0.1; done
      timeout 240 "$BIN/leoam-bench-decode" --backend cuda --model /tmp/s124.gguf --kvstore "unix://$kv/kv.sock" \
        --contexts "${ENGINE_CONTEXTS:-32768}" --generate 32 --budget 0.1 --device_fraction 0.2 --prefill_chunk 2048 \
        --modes "${ENGINE_MODES:-dense,offload-all+nopf,leoam-eq+nopf,quest+nopf,offload-all+nopf,leoam-eq+nopf}"
      kill "$kv_pid"; wait "$kv_pid" 2>/dev/null
    fi
    if [[ ${KVSTORE_BENCH:-0} == 1 ]]; then
      echo
      bench/kvstore/run_kvstore_bench.sh "$(dirname "$BIN")" /tmp/kvstore-bench
    fi
  } 2>&1 | tee "$LOGS/bench.md"
  exit $failed
fi
