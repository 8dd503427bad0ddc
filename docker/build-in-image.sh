#!/bin/sh
# build-in-image.sh OUT TARGET...: the build stage of the Dockerfiles.
# Configures $LEOAM_SRC (default /src) into $LEOAM_BUILD (default /build): Release, Ninja, CUDA per
# $LEOAM_CUDA (default OFF), no tests, no benchmarks. Builds TARGET... (a trailing "?" marks a target
# built only when the tree defines it) and the health probe, then installs the binaries to OUT/bin and
# the shared libraries they need to OUT/lib.
set -eu
out=$1
src=${LEOAM_SRC:-/src}
build=${LEOAM_BUILD:-/build}
shift
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLEOAM_CUDA="${LEOAM_CUDA:-OFF}" -DLEOAM_CUDA_ARCHITECTURES="${LEOAM_CUDA_ARCHITECTURES:-75;80;86;89;90}" \
  -DLEOAM_BUILD_TESTS=OFF -DLEOAM_BUILD_BENCH=OFF
known=$(ninja -C "$build" -t targets all | sed -n 's/^\([^:]*\): phony$/\1/p')
targets=""
for t in "$@"; do
  name=${t%\?}
  if printf '%s\n' "$known" | grep -qx "$name"; then
    targets="$targets $name"
  elif [ "$name" = "$t" ]; then
    echo "build-in-image: target $name is not defined by this tree" >&2
    exit 1
  else
    echo "build-in-image: optional target $name not defined; skipped" >&2
  fi
done
# shellcheck disable=SC2086  # word splitting of the target list is intended
ninja -C "$build" -j "${LEOAM_BUILD_JOBS:-$(nproc)}" $targets
mkdir -p "$out/bin"
for t in $targets; do cp "$build/bin/$t" "$out/bin/"; done
# shellcheck disable=SC2046  # pkg-config output is a flag list
g++ -O2 -std=c++17 "$src"/docker/health_probe.cc $(pkg-config --cflags --libs grpc++) -o "$out/bin/leoam-health-probe"
strip "$out"/bin/*
"$src"/docker/collect-libs.sh "$out/lib" "$out"/bin/*
