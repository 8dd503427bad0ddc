#!/usr/bin/env bash
# Configures and builds LeoAM into build/ (Release, Ninja). Extra arguments go to cmake.
#   LEOAM_BUILD_DIR         build directory (default: build)
#   LEOAM_CUDA              AUTO | ON | OFF (default AUTO: CUDA code is compiled when nvcc exists)
#   LEOAM_CUDA_ARCHITECTURES  e.g. "90" or "75;80;86;89;90" (default: the CMake default list)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${LEOAM_BUILD_DIR:-build}
args=(-S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLEOAM_CUDA="${LEOAM_CUDA:-AUTO}")
if [ -n "${LEOAM_CUDA_ARCHITECTURES:-}" ]; then args+=(-DLEOAM_CUDA_ARCHITECTURES="${LEOAM_CUDA_ARCHITECTURES}"); fi
if [ -n "${LEOAM_SHARED:-}" ]; then args+=(-DLEOAM_SHARED_DIR="$(cd "$LEOAM_SHARED" && pwd)"); fi
cmake "${args[@]}" "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
