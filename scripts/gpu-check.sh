#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one go: op-by-op tests against the CPU backend, then the
# bandwidth benchmarks (table printed last).
#
#   scripts/gpu-check.sh build      on a machine with the -dev packages and nvcc: build for sm_90
#                                   (LEOAM_CUDA_ARCHITECTURES overrides) into build-gpu/ and pack the
#                                   test/bench binaries plus their non-system shared libraries into
#                                   carry/gpu/ (git-ignored) for a GPU machine without the packages
#   scripts/gpu-check.sh run        on the GPU machine: run what carry/gpu/ (or build-gpu/) holds
#   scripts/gpu-check.sh            both
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
BUILD=build-gpu
CARRY=carry/gpu

if [[ $MODE == build || $MODE == all ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DLEOAM_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DLEOAM_CUDA_ARCHITECTURES="${LEOAM_CUDA_ARCHITECTURES:-90}" >/dev/null
  ninja -C "$BUILD" cuda_backend_test leoam-bench-cuda
  rm -rf "$CARRY" && mkdir -p "$CARRY/bin" "$CARRY/lib"
  cp "$BUILD/bin/cuda_backend_test" "$BUILD/bin/leoam-bench-cuda" "$CARRY/bin/"
  # Shared libraries outside the base system (gRPC, protobuf, RocksDB, Abseil, ...), not CUDA's own.
  for bin in "$CARRY"/bin/*; do
    ldd "$bin" | awk '/=> \// {print $3}' | grep -vE '^/lib/x86_64-linux-gnu/(libc|libm|libstdc\+\+|libgcc_s|ld-linux)|cuda|libnvidia' |
      xargs -r -I{} cp -L -n {} "$CARRY/lib/"
  done
  echo "packed $(ls "$CARRY/bin" | wc -l) binaries and $(ls "$CARRY/lib" | wc -l) libraries into $CARRY"
fi

if [[ $MODE == run || $MODE == all ]]; then
  if [[ -x $CARRY/bin/cuda_backend_test ]]; then BIN=$CARRY/bin; export LD_LIBRARY_PATH=$PWD/$CARRY/lib:${LD_LIBRARY_PATH:-}
  else BIN=$BUILD/bin; fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  LEOAM_REQUIRE_GPU=1 "$BIN/cuda_backend_test"
  "$BIN/leoam-bench-cuda"
fi
