#!/usr/bin/env bash
# Runs kvstore_bench with sizes that finish in well under 3 minutes and prints its markdown tables.
#   bench/kvstore/run_kvstore_bench.sh [build-dir] [work-dir-on-the-disk-to-measure]
# Build first: ninja -C <build-dir> kvstore_bench leoam-kvstore
# Run it when the machine is quiet: every figure is measured next to its baseline (memcpy, raw
# disk reads) in the same run, but a shared 2-core machine still moves them a lot; the load
# average is printed with each table.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
work="${2:-}"
bench="$build/bin/kvstore_bench"
[[ -x "$bench" ]] || { echo "no $bench; build kvstore_bench first" >&2; exit 1; }
args=("--kvstore_binary=$build/bin/leoam-kvstore")
[[ -n "$work" ]] && args+=("--dir=$work")
echo "# $(date -u '+%F %T UTC'), $(nproc) CPUs, uptime: $(uptime)"
# 1) 64-page requests (4 MiB): the request size compute typically uses for one layer's pages.
"$bench" "${args[@]}" --memory_pages=2048 --disk_pages=4096 --batch=64 --latency_iters=2000
# 2) 256-page requests (16 MiB): the per-request cost amortised over 4x the bytes.
"$bench" "${args[@]}" --memory_pages=4096 --disk_pages=4096 --batch=256 --latency_iters=400
