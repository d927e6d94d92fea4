#!/usr/bin/env bash
# THE one script for a GPU machine (H100/H200): every GPU check of trainer/cuda and
# trainer/dist, then the training benchmark against torch.compile, in about 8 minutes. Run
# from anywhere:
#
#   bench/gpu/run.sh [BIN_DIR]   (default: .carry/bin.tar.gz if present, else build-cuda/bin)
#
# Needs the binaries built on the dev machine and, for the libraries a bare GPU machine lacks,
# <repo>/.carry/lib.tar.gz: bench/gpu/prepare_carry.sh makes both (carry ".carry"). Writes its
# logs to $OUT (or /tmp/dyt-gpu-run) - at most 8 files, the device tool's limit: summary.txt,
# cuda_tests.log, bench.jsonl, bench.log, layer_bench.log, sanitizer.log - and prints a summary
# table last. Steps, each under `timeout`, most important first (a run may be cut short):
#   1. environment: nvidia-smi -L, driver, clocks; which libraries resolve
#   2. dist_tests (CPU; proves the carried binaries load)
#   3. cuda_tests, all of them, in five groups (one process each): every kernel vs its CPU
#      twin, the CUDA model vs the CPU model, and the 200-step loss curve of the CUDA backend
#      vs the CPU fp32 backend (within 2%)
#   4. dyt-gpu-train-bench and torch_train.py (torch.compile, bf16 autocast, SDPA, fused AdamW)
#      on gpt-small and 1b, DyT then RMSNorm: tokens/s, model TFLOP/s, MFU, memory, ratio
#      and, after the DyT runs, dyt-gpu-attention-bench and torch_attention.py: the attention
#      kernels alone, forward and backward TFLOP/s at both configs' shapes (ours vs PyTorch
#      SDPA: default, cuDNN, flash)
#   5. dyt-gpu-layer-bench (copy bandwidth vs the fused DyT kernels)
#   6. compute-sanitizer memcheck, then racecheck, on small cuda_tests cases, if time is left
# Exit status: 0 when every step that ran passed.
#
# A rerun after a fix (device time is short) can run only part of it:
#   DYT_GPU_ONLY=tests,bench,attention,layer,sanitizer   steps to run (default all; dist_tests
#                                              and the environment always run)
#   DYT_GPU_GROUPS=layers,elementwise,attention,attention-ordered,model,nccl   cuda_tests groups
#     (default all; attention-ordered: the backward whose blocks wait for each other)
#   DYT_GPU_BENCH=gpt-small:dyt,1b:dyt,gpt-small:dyt:atomic,1b:dyt:atomic,gpt-small:rmsnorm,1b:rmsnorm
#     benchmark runs, in order (CONFIG:NORM, each with its torch.compile peer; CONFIG:NORM:atomic
#     runs dyt alone with train.deterministic: false, against the same peer)
# e.g. DYT_GPU_ONLY=tests,bench DYT_GPU_GROUPS=attention DYT_GPU_BENCH=gpt-small:dyt bench/gpu/run.sh
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The binaries: BIN_DIR, else .carry/bin.tar.gz (bench/gpu/prepare_carry.sh), else build-cuda/bin.
if [ -z "${1:-}" ] && [ -f "$repo/.carry/bin.tar.gz" ]; then
  bin_dir=$(mktemp -d /tmp/dyt-carry-bin.XXXXXX)
  tar -C "$bin_dir" -xzf "$repo/.carry/bin.tar.gz"
else
  bin_dir=$(cd "${1:-$repo/build-cuda/bin}" 2>/dev/null && pwd) || {
    echo "run.sh: binary dir ${1:-$repo/build-cuda/bin} not found" >&2
    exit 2
  }
fi
out=${OUT:-/tmp/dyt-gpu-run}
mkdir -p "$out"
csv_dir=$(mktemp -d /tmp/dyt-csv.XXXXXX)  # tarred into $out/csv.tar at the end
budget_s=${DYT_GPU_BUDGET_S:-480}  # whole script; the optional steps use what is left
only=${DYT_GPU_ONLY:-tests,bench,attention,layer,sanitizer}
only_groups=${DYT_GPU_GROUPS:-layers,elementwise,attention,attention-ordered,model,nccl}
bench_runs=${DYT_GPU_BENCH:-gpt-small:dyt,1b:dyt,gpt-small:dyt:atomic,1b:dyt:atomic,gpt-small:rmsnorm,1b:rmsnorm}
listed() { [[ ",$2," == *",$1,"* ]]; }  # listed WORD COMMA_LIST
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
for b in dist_tests cuda_tests dyt-gpu-layer-bench dyt-gpu-train-bench dyt-gpu-attention-bench; do
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
step "dist_tests" 30 "$out/dist_tests.tmp" "${ours[@]}" "$bin_dir/dist_tests"
rows[${#rows[@]}-1]=${rows[${#rows[@]}-1]/dist_tests.tmp/summary.txt}
gtest_counts "$out/dist_tests.tmp" | tee -a "$summary"
rm -f "$out/dist_tests.tmp"
# In groups, each its own process: a kernel that faults (an illegal address ends the process's
# CUDA context) then hides only its own group's results. Every test is in exactly one group.
groups=(
  "layers|Sizes/Dyt*:Dyt*:Sizes/RmsNorm*:RmsNorm*:Tanh*:*Gemm*:Cast*:DeviceBuffer*:PhaseProfiler*"
  "elementwise|*RopeKernel*:*Swiglu*:*Embedding*:*CrossEntropy*:*Reduce*:*AdamW*:*ZeroRanges*"
  "attention|*Attention*:-*OrderedDq*"
  "attention-ordered|*OrderedDq*"
  "model|*LlamaCuda*:CudaBackendTest.*"
  "nccl|Nccl*:*CudaBackendMultiGpu*"
)
: >"$out/cuda_tests.log"
tests_rc=0
for g in "${groups[@]}"; do
  name=${g%%|*}
  filter=${g#*|}
  if ! listed tests "$only" || ! listed "$name" "$only_groups"; then
    rows+=("$(printf '%-26s %-14s' "cuda_tests $name" "not selected")")
    continue
  fi
  echo "======== cuda_tests: $name ($filter)" >>"$out/cuda_tests.log"
  step "cuda_tests $name" 150 "$out/group.tmp" "${ours[@]}" "$bin_dir/cuda_tests" \
    --gtest_filter="$filter"
  rc=$?
  [ $rc -ne 0 ] && tests_rc=$rc
  rows[${#rows[@]}-1]=${rows[${#rows[@]}-1]/group.tmp/cuda_tests.log}
  cat "$out/group.tmp" >>"$out/cuda_tests.log"
  rm -f "$out/group.tmp"
done
gtest_counts "$out/cuda_tests.log"
if [ $tests_rc -ne 0 ]; then  # the first failure messages, for a quick look
  grep -B2 -A8 -m6 -E "Failure|error:|Expected" "$out/cuda_tests.log" | head -60
fi

# ---- 4. training benchmark: dyt vs torch.compile, same card, same run --------------------------
jsonl="$out/bench.jsonl"
: >"$jsonl"
bench_log="$out/bench.log"
: >"$bench_log"
# bench NAME LIMIT COMMAND...: appends the command's JSON line (its last stdout line) to jsonl;
# with BENCH_JSON=all, every line of its output that starts with "{".
bench() {
  local name=$1 limit=$2
  shift 2
  step "$name" "$limit" "$out/one.tmp" "$@"
  local rc=$?
  rows[${#rows[@]}-1]=${rows[${#rows[@]}-1]/one.tmp/bench.log}
  cat "$out/one.tmp" >>"$bench_log"
  if [ "${BENCH_JSON:-last}" = all ]; then
    grep '^{' "$out/one.tmp" >>"$jsonl"
  else
    grep '^{' "$out/one.tmp" | tail -1 >>"$jsonl"
  fi
  rm -f "$out/one.tmp"
  return $rc
}
torch=(env PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/dyt-inductor python3
       "$repo/bench/gpu/torch_train.py")
# Attention alone: ours vs PyTorch SDPA (rows with "op": "attention" in bench.jsonl). Run after
# the DyT training runs and before the RMSNorm ones (the baseline matters least if time is short).
attention_done=0
attention_bench() {
  [ $attention_done -eq 1 ] && return
  attention_done=1
  if listed attention "$only" && [ $((budget_s - $(elapsed))) -ge 60 ]; then
    BENCH_JSON=all bench "dyt attention" 60 "${ours[@]}" "$bin_dir/dyt-gpu-attention-bench"
    BENCH_JSON=all bench "torch sdpa attention" 120 env PYTHONUNBUFFERED=1 python3 \
      "$repo/bench/gpu/torch_attention.py"
  else
    rows+=("$(printf '%-26s %-14s' "attention bench" "not selected or no time")")
  fi
}
IFS=, read -r -a runs <<<"$bench_runs"
listed bench "$only" || runs=()
for run in "${runs[@]}"; do
  IFS=: read -r cfg norm variant <<<"$run"
  [ "$norm" != dyt ] && attention_bench
  left=$((budget_s - $(elapsed)))
  if [ "$variant" = atomic ]; then
    if [ $left -lt 60 ]; then
      rows+=("$(printf '%-26s %-14s' "bench $cfg $norm atomic" "skipped: ${left}s left")")
      continue
    fi
    bench "dyt $cfg $norm atomic-dq" 60 "${ours[@]}" "$bin_dir/dyt-gpu-train-bench" \
      --preset "$cfg" --norm "$norm" --warmup 5 --steps 20 --nondeterministic
    continue
  fi
  if [ $left -lt 150 ]; then
    rows+=("$(printf '%-26s %-14s' "bench $cfg $norm" "skipped: ${left}s left")")
    continue
  fi
  bench "dyt $cfg $norm" 60 "${ours[@]}" "$bin_dir/dyt-gpu-train-bench" --preset "$cfg" \
    --norm "$norm" --warmup 5 --steps 20
  bench "torch.compile $cfg $norm" 180 "${torch[@]}" --config "$cfg" --norm "$norm" \
    --warmup 5 --steps 20
done

attention_bench

# ---- 5. the fused DyT kernels vs the copy bandwidth --------------------------------------------
if listed layer "$only"; then
  step "dyt-gpu-layer-bench" 45 "$out/layer_bench.log" \
    "${ours[@]}" "$bin_dir/dyt-gpu-layer-bench" --csv "$csv_dir/layer_bench.csv"
  sed -n '/^kernel/,$p' "$out/layer_bench.log"
else
  rows+=("$(printf '%-26s %-14s' "dyt-gpu-layer-bench" "not selected")")
fi

# ---- 6. compute-sanitizer on small cases ------------------------------------------------------
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
  /usr/local/cuda/compute-sanitizer/compute-sanitizer /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)
small='*N1_D768*:*N7_D1000*:*N5_D77*:*N33_D1001*:*Attention*T17*:*LlamaCudaTest.Forward*Dyt:*RopeKernel*:*Swiglu*:*Embedding*:*CrossEntropy*:*AdamW*:*Sum*:*ZeroRanges*'
left=$((budget_s - $(elapsed)))
if ! listed sanitizer "$only"; then
  rows+=("$(printf '%-26s %-14s' "compute-sanitizer" "not selected")")
elif [ -z "$sanitizer" ]; then
  rows+=("$(printf '%-26s %-14s' "compute-sanitizer" "not found")")
elif [ $left -lt 20 ]; then
  rows+=("$(printf '%-26s %-14s' "compute-sanitizer" "skipped: ${left}s left")")
else
  step "sanitizer memcheck" "$left" "$out/sanitizer.log" "${ours[@]}" "$sanitizer" \
    --tool memcheck --error-exitcode 1 --print-limit 20 \
    "$bin_dir/cuda_tests" --gtest_filter="$small"
  grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)" "$out/sanitizer.log" | sed 's/^/   /'
  # Shared-memory races: the attention kernels' cp.async double buffering is the main risk.
  left=$((budget_s - $(elapsed)))
  if [ $left -ge 20 ]; then
    echo "== racecheck" >>"$out/sanitizer.log"
    step "sanitizer racecheck" "$left" "$out/racecheck.tmp" "${ours[@]}" "$sanitizer" \
      --tool racecheck --error-exitcode 1 --print-limit 20 \
      "$bin_dir/cuda_tests" --gtest_filter='*Attention*T100*:*Backward*N7_D1000*:*CrossEntropy*'
    cat "$out/racecheck.tmp" >>"$out/sanitizer.log"
    rm -f "$out/racecheck.tmp"
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
  echo "-- loss curve, CUDA backend vs CPU fp32 backend (CudaBackendTest.TwoHundredStep...):"
  grep -E "^  step +[0-9]+ loss cpu|worst relative loss" "$out/cuda_tests.log" | sed 's/^/ /'
  if [ -f "$out/sanitizer.log" ]; then
    echo "-- compute-sanitizer (memcheck, then racecheck):"
    grep -h -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitizer.log" | sed 's/^/   /'
  fi
  echo "-- training step, dyt vs torch.compile (bench.jsonl):"
  python3 "$repo/bench/gpu/train_table.py" "$jsonl" 2>&1
  echo "-- fused DyT kernels vs copy bandwidth (dyt-gpu-layer-bench):"
  sed -n '/^kernel/,$p' "$out/layer_bench.log" 2>/dev/null
} | tee -a "$summary"
rm -rf "$csv_dir"
failed=0
for r in "${rows[@]}"; do
  case $r in *FAILED* | *TIMEOUT*) failed=1 ;; esac
done
exit $failed
