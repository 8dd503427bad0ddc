#!/usr/bin/env bash
# The whole test suite on a fresh machine: install dependencies, build, run every test.
#   LEOAM_SHARED  shared test data (default: ../shared beside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# CI compiles the CUDA code for one architecture to save time; the default build targets several.
export LEOAM_CUDA_ARCHITECTURES=${LEOAM_CUDA_ARCHITECTURES:-90}
./scripts/build.sh
BUILD_DIR=${LEOAM_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j 2 --timeout 1200
