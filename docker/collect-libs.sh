#!/bin/sh
# collect-libs.sh DEST BINARY...: copies the shared libraries BINARY... load (as ldd resolves them in the
# build stage) into DEST, so the runtime stage needs no -dev packages. Left out: glibc, which the
# runtime base image has (same distribution release as the build stage), and the CUDA runtime and
# driver libraries, which come from the nvidia/cuda runtime image and the NVIDIA container toolkit.
set -eu
dest=$1
shift
mkdir -p "$dest"
ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|ld-linux*) ;;
    libcuda.so*|libnvidia-*|libcudart.so*|libcublas.so*|libcublasLt.so*|libnvrtc*) ;;
    *) cp -L "$lib" "$dest/" ;;
  esac
done
if ldd "$@" | grep "not found" | grep -qv "libcuda\.so"; then
  echo "collect-libs: unresolved libraries:" >&2
  ldd "$@" | grep "not found" >&2
  exit 1
fi
