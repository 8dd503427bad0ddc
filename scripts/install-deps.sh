#!/usr/bin/env bash
# Installs every system package LeoAM's build, tests, benchmarks and clients need (Debian 12).
# Idempotent: packages already present are left alone; safe to run again.
set -euo pipefail

DEB_PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  # libraries
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  librocksdb-dev libzstd-dev libabsl-dev libopenblas-dev libopenblas0-pthread
  libgtest-dev libgmock-dev libbenchmark-dev
  # reference checks and client examples
  python3 python3-grpcio python3-numpy python3-torch python3-yaml
  # docker compose validation (client only, no engine needed)
  docker-compose
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js (for the Node client example) may come from another repository that bundles npm;
# install Debian's only when no node is on the machine.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

# The Node client example's npm packages (client/node/package-lock.json) into client/node/node_modules.
# Skipped when node_modules is newer than the lock file (npm writes node_modules/.package-lock.json).
NODE_CLIENT_DIR="$(cd "$(dirname "$0")/.." && pwd)/client/node"
if [ -f "$NODE_CLIENT_DIR/package-lock.json" ]; then
  if [ -f "$NODE_CLIENT_DIR/node_modules/.package-lock.json" ] &&
     [ "$NODE_CLIENT_DIR/node_modules/.package-lock.json" -nt "$NODE_CLIENT_DIR/package-lock.json" ]; then
    echo "install-deps: client/node npm packages present"
  else
    echo "install-deps: npm ci in client/node"
    (cd "$NODE_CLIENT_DIR" && npm ci --no-audit --no-fund)
  fi
fi
