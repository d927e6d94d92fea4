#!/usr/bin/env bash
# Builds what bench/gpu/run.sh needs on a GPU machine and packs it into .carry/ (git-ignored),
# small enough for the device tool's 64 MiB:
#   .carry/bin.tar.gz   stripped cuda_tests, dist_tests, dyt-gpu-layer-bench, dyt-gpu-train-bench,
#                       dyt-gpu-attention-bench
#   .carry/lib.tar.gz   the shared libraries they need that a bare GPU machine lacks
# Then, through the device tool: run(command="bench/gpu/run.sh", carry=[".carry"], timeout_s=540).
#
#   bench/gpu/prepare_carry.sh [BUILD_DIR]     (default: <repo>/build-cuda)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build-cuda}
bins=(cuda_tests dist_tests dyt-gpu-layer-bench dyt-gpu-train-bench dyt-gpu-attention-bench)
# Trainer-only (no gRPC/RocksDB on the GPU machine) and a CPU baseline any x86-64 host runs.
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYT_TRAINER_ONLY=ON \
  -DDYT_CPU_ARCH=x86-64-v3 >/dev/null
ninja -C "$build" -j"$(nproc)" "${bins[@]}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$repo/.carry"
for b in "${bins[@]}"; do strip -o "$stage/bin/$b" "$build/bin/$b"; done
tar -C "$stage/bin" -czf "$repo/.carry/bin.tar.gz" .
"$repo/bench/gpu/bundle_libs.sh" "$stage"
du -ch "$repo/.carry"/*.tar.gz | sed 's/^/prepare_carry: /'
