#!/usr/bin/env bash
# THE one script for a GPU machine (H100/H200): every GPU check of trainer/cuda and
# trainer/dist, then the layer benchmarks, in under 4 minutes. Run from anywhere:
#
#   bench/gpu/run.sh [BIN_DIR]        (default: <repo>/build-cuda/bin)
#
# Needs the binaries built on the dev machine (carried in BIN_DIR) and, for the libraries a
# bare GPU machine lacks, <repo>/.carry/lib.tar.gz from bench/gpu/bundle_libs.sh. Writes its
# logs to $OUT (or /tmp/dyt-gpu-run) - at most 8 files, the device tool's limit: summary.txt,
# 6 logs and csv.tar (every CSV) - and prints a summary table last. Steps, each under `timeout`:
#   1. environment: nvidia-smi -L, driver, clocks; which libraries resolve
#   2. dist_tests (CPU; proves the carried binaries load)
#   3. cuda_tests, all of them (kernels vs CPU twins, NCCL at world size 1)
#   4. dyt-gpu-layer-bench --sweep (every compiled-in DyT kernel variant, checked and timed)
#   5. dyt-gpu-layer-bench (copy bandwidth, DyT / RMSNorm kernels with the defaults)
#   6. torch_dyt_layer.py (eager vs torch.compile, same table)
#   7. compute-sanitizer memcheck and racecheck on small cuda_tests cases, if time is left
# Exit status: 0 when every step that ran passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin_dir=$(cd "${1:-$repo/build-cuda/bin}" 2>/dev/null && pwd) || {
  echo "run.sh: binary dir ${1:-$repo/build-cuda/bin} not found" >&2
  exit 2
}
out=${OUT:-/tmp/dyt-gpu-run}
mkdir -p "$out"
csv_dir=$(mktemp -d /tmp/dyt-csv.XXXXXX)  # tarred into $out/csv.tar at the end
budget_s=225  # whole script; the optional sanitizer steps use what is left
t_start=$(date +%s)
elapsed() { echo $(($(date +%s) - t_start)); }
summary="$out/summary.txt"
: >"$summary"
say() { echo "$@" | tee -a "$summary"; }

# ---- 1. environment -------------------------------------------------------------------------
say "== dyt GPU run: $(date -u +%FT%TZ) on $(hostname), repo $repo, binaries $bin_dir"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi -L 2>&1 | tee -a "$summary"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,power.limit \
    --format=csv 2>&1 | tee -a "$summary"
else
  say "nvidia-smi: not found"
fi

# Libraries for OUR binaries only (PyTorch keeps its own environment): the carried bundle,
# the CUDA toolkit, and NCCL wherever this machine has it (the toolkit or PyTorch's wheel).
libdir=$(mktemp -d /tmp/dyt-carry-lib.XXXXXX)
if [ -f "$repo/.carry/lib.tar.gz" ]; then
  tar -C "$libdir" -xzf "$repo/.carry/lib.tar.gz" && say "carried libraries: $(ls "$libdir" | tr '\n' ' ')"
elif [ -d "$repo/.carry/lib" ]; then
  libdir="$repo/.carry/lib"
else
  say "warning: no .carry/lib.tar.gz (bench/gpu/bundle_libs.sh): relying on system libraries"
fi
find_nccl() {
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
           /usr/lib/x86_64-linux-gnu /usr/lib64; do
    [ -e "$d/libnccl.so.2" ] && { echo "$d"; return; }
  done
  python3 - 2>/dev/null <<'PY'
import os
try:
    import nvidia.nccl as m
    for p in m.__path__:
        d = os.path.join(p, "lib")
        if os.path.exists(os.path.join(d, "libnccl.so.2")):
            print(d)
            break
except Exception:
    pass
PY
}
nccl_dir=$(find_nccl)
[ -n "$nccl_dir" ] || nccl_dir=$(dirname "$(timeout 20 find / -xdev -name libnccl.so.2 2>/dev/null | head -1)" 2>/dev/null)
say "libnccl.so.2: ${nccl_dir:-NOT FOUND}"
dyt_ld="$libdir:${nccl_dir:+$nccl_dir:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# A world of one rank on one machine: NCCL's bootstrap on loopback needs no network.
ours=(env LD_LIBRARY_PATH="$dyt_ld" NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
      NCCL_SOCKET_IFNAME="${NCCL_SOCKET_IFNAME:-lo}")
for b in dist_tests cuda_tests dyt-gpu-layer-bench; do
  if [ ! -x "$bin_dir/$b" ]; then
    say "missing binary: $bin_dir/$b"
  elif unresolved=$("${ours[@]}" ldd "$bin_dir/$b" | grep "not found"); then
    say "$b: unresolved libraries:"; say "$unresolved"
  fi
done

# ---- step runner ------------------------------------------------------------------------------
declare -a rows
# step NAME LIMIT_S LOG COMMAND...: runs COMMAND under timeout, output to LOG, records a row.
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local t0=$(date +%s)
  echo ">> $name (limit ${limit}s): $*"
  timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  local t=$(($(date +%s) - t0)) status
  case $rc in
    0) status=ok ;;
    124 | 137) status="TIMEOUT" ;;
    *) status="FAILED rc=$rc" ;;
  esac
  rows+=("$(printf '%-26s %-14s %5ss  %s' "$name" "$status" "$t" "$(basename "$log")")")
  if [ $rc -ne 0 ]; then
    echo "   $name: $status; the end of $(basename "$log"):"
    tail -n 8 "$log" | sed 's/^/   | /'
  fi
  return $rc
}
gtest_counts() {  # a gtest log's totals and the names of failed tests
  grep -E '^\[==========\] [0-9]+ tests? from .* ran|^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?' \
    "$1" | sed 's/^/   /'
  grep -E '^\[  FAILED  \] [A-Za-z]' "$1" | head -20 | sed 's/^/   /'
}

# ---- 2-3. tests -------------------------------------------------------------------------------
step "dist_tests" 30 "$out/dist_tests.log" "${ours[@]}" "$bin_dir/dist_tests"
gtest_counts "$out/dist_tests.log"
step "cuda_tests (all)" 100 "$out/cuda_tests.log" "${ours[@]}" "$bin_dir/cuda_tests"
tests_rc=$?
gtest_counts "$out/cuda_tests.log"
if [ $tests_rc -ne 0 ]; then  # the first failure messages, for a quick look
  grep -B2 -A8 -m6 -E "Failure|error:|Expected" "$out/cuda_tests.log" | head -60
fi

# ---- 4-6. benchmarks --------------------------------------------------------------------------
step "DyT variant sweep" 60 "$out/sweep.log" \
  "${ours[@]}" "$bin_dir/dyt-gpu-layer-bench" --sweep --csv "$csv_dir/sweep.csv"
sed -n '/^config = /,$p' "$out/sweep.log"
step "dyt-gpu-layer-bench" 45 "$out/layer_bench.log" \
  "${ours[@]}" "$bin_dir/dyt-gpu-layer-bench" --csv "$csv_dir/layer_bench.csv"
sed -n '/^kernel/,$p' "$out/layer_bench.log"
torch_left=$((budget_s - $(elapsed) - 25))  # keep ~25 s for the sanitizer
torch_limit=$((torch_left < 100 ? (torch_left < 30 ? 30 : torch_left) : 100))
step "torch_dyt_layer.py" "$torch_limit" "$out/torch_bench.log" \
  env PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/dyt-inductor python3 \
  "$repo/bench/gpu/torch_dyt_layer.py" --csv "$csv_dir/torch_bench.csv" --budget-s $((torch_limit - 25))
sed -n '/^kernel/,$p' "$out/torch_bench.log"

# ---- 7. compute-sanitizer on small cases ------------------------------------------------------
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
  /usr/local/cuda/compute-sanitizer/compute-sanitizer /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)
small='*N1_D768*:*N7_D1000*:*N5_D77*:*N33_D1001*'
left=$((budget_s - $(elapsed)))
if [ -z "$sanitizer" ]; then
  rows+=("$(printf '%-26s %-14s' "compute-sanitizer" "not found")")
elif [ $left -lt 15 ]; then
  rows+=("$(printf '%-26s %-14s' "compute-sanitizer" "skipped: ${left}s left")")
else
  mem_limit=$((left * 2 / 3))
  step "sanitizer memcheck" "$mem_limit" "$out/sanitizer.log" "${ours[@]}" "$sanitizer" \
    --tool memcheck --error-exitcode 1 --print-limit 20 \
    "$bin_dir/cuda_tests" --gtest_filter="$small"
  grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)" "$out/sanitizer.log" | sed 's/^/   /'
  left=$((budget_s - $(elapsed)))
  if [ $left -ge 10 ]; then
    echo "== racecheck" >>"$out/sanitizer.log"
    step "sanitizer racecheck" "$left" "$out/racecheck.tmp" "${ours[@]}" "$sanitizer" \
      --tool racecheck --error-exitcode 1 --print-limit 20 \
      "$bin_dir/cuda_tests" --gtest_filter='*Backward*N7_D1000*:*Backward*N33_D1001*:*RmsNormForward*N7_D1000*'
    cat "$out/racecheck.tmp" >>"$out/sanitizer.log"
    rm -f "$out/racecheck.tmp"
    grep -E "RACECHECK SUMMARY|ERROR SUMMARY|^\[  (PASSED|FAILED)" "$out/sanitizer.log" | tail -3 | sed 's/^/   /'
  fi
fi

# ---- summary (printed last) -------------------------------------------------------------------
{
  echo
  echo "================================ dyt GPU run summary ($(elapsed) s) ================================"
  nvidia-smi -L 2>/dev/null | head -1
  printf '%-26s %-14s %6s  %s\n' "step" "status" "time" "log (in \$OUT)"
  printf '%s\n' "${rows[@]}"
  echo "-- cuda_tests:"
  gtest_counts "$out/cuda_tests.log"
  if [ -f "$out/sanitizer.log" ]; then
    echo "-- compute-sanitizer (memcheck, then racecheck):"
    grep -h -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitizer.log" | sed 's/^/   /'
  fi
  echo "-- DyT variant sweep (sweep.log; every row in csv.tar:sweep.csv):"
  sed -n '/^-- /,$p' "$out/sweep.log" 2>/dev/null | grep -v '^$'
  echo "-- ours (dyt-gpu-layer-bench):"
  sed -n '/^kernel/,$p' "$out/layer_bench.log" 2>/dev/null
  echo "-- PyTorch (torch_dyt_layer.py):"
  sed -n '/^kernel/,/^total/p' "$out/torch_bench.log" 2>/dev/null
} | tee -a "$summary"
tar -C "$csv_dir" -cf "$out/csv.tar" . 2>/dev/null && rm -rf "$csv_dir"
failed=0
for r in "${rows[@]}"; do
  case $r in *FAILED* | *TIMEOUT*) failed=1 ;; esac
done
exit $failed
