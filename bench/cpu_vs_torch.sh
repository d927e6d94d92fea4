#!/usr/bin/env bash
# CPU training-step throughput of dyt against PyTorch (Debian's python3-torch) on the same
# machine, in the same run, with the same thread count: presets tiny and small, DyT and
# RMSNorm. Each row is the median step of --steps timed steps after --warmup steps.
#
#   bench/cpu_vs_torch.sh [--threads 2] [--steps 5] [--warmup 2]
#
# Run it on a quiet machine: other processes on the cores distort both columns.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${DYT_BUILD_DIR:-$repo/build}/bin"
threads=2 steps=5 warmup=2
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# Passive OpenMP waiting for both: spinning idle threads only steal cycles on a shared box.
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$threads"

# preset: vocab dim layers heads ffn seq batch
declare -A shapes=(
  [tiny]="4096 256 4 4 688 256 8"
  [small]="8192 384 6 6 1024 256 8"
)
printf '%-6s %-8s %14s %14s %8s\n' preset norm "dyt tok/s" "torch tok/s" ratio
for preset in tiny small; do
  read -r vocab dim layers heads ffn seq batch <<<"${shapes[$preset]}"
  for norm in dyt rmsnorm; do
    ours=$("$bin/dyt-bench-train-step" --preset "$preset" --norm "$norm" --batch "$batch" \
      --seq "$seq" --threads "$threads" --steps "$steps" --warmup "$warmup")
    torch=$(/usr/bin/python3 "$repo/bench/torch_train_step.py" --vocab "$vocab" --dim "$dim" \
      --layers "$layers" --heads "$heads" --ffn "$ffn" --seq "$seq" --batch "$batch" \
      --norm "$norm" --threads "$threads" --steps "$steps" --warmup "$warmup" --json | tail -1)
    a=$(sed 's/.*"tokens_per_s": *\([0-9.e+]*\).*/\1/' <<<"$ours")
    b=$(sed 's/.*"tokens_per_s": *\([0-9.e+]*\).*/\1/' <<<"$torch")
    printf '%-6s %-8s %14.0f %14.0f %7.2fx\n' "$preset" "$norm" "$a" "$b" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
  done
done
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "threads $threads; torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)');" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
