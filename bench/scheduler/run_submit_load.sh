#!/usr/bin/env bash
# Starts dyt-scheduler on a fresh temp RocksDB dir (port chosen by the OS, learned from its
# log), runs dyt-bench-submit against it with the given arguments, then stops the scheduler
# (SIGTERM) and removes the temp dir.
#
#   bench/scheduler/run_submit_load.sh [--build DIR] [dyt-bench-submit args...]
#   e.g. bench/scheduler/run_submit_load.sh --threads 2 --channels 4 --in-flight 256 --duration-s 10
#
# SCHEDULER=path runs another server binary with the same flags (e.g. an older dyt-scheduler
# to compare with), SCHEDULER_ARGS="..." adds flags to it. At the end the scheduler is stopped
# and the last lines of its log are shown.
set -euo pipefail

build=build
if [[ "${1:-}" == "--build" ]]; then
  build=$2
  shift 2
fi
scheduler="${SCHEDULER:-$build/bin/dyt-scheduler}"
bench="$build/bin/dyt-bench-submit"
for b in "$scheduler" "$bench"; do
  [[ -x "$b" ]] || { echo "missing $b (ninja -C $build dyt-scheduler dyt-bench-submit)" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/dyt-submit-load.XXXXXX)
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# One owner submits everything: lift the per-user queued-jobs limit (a quota, not the path
# being measured).
"$scheduler" --listen 127.0.0.1:0 --data-dir "$tmp/state" --insecure --max-queued-per-user 0 \
  --log-level "${DYT_LOG_LEVEL:-info}" ${SCHEDULER_ARGS:-} >"$tmp/scheduler.log" 2>&1 &
pid=$!

# The scheduler logs "serving on 127.0.0.1:0 (port N)" at info level and prints "listening on
# 127.0.0.1:N" on stdout at any level; else we ask the kernel which port it listens on.
port=""
for _ in $(seq 1 200); do
  port=$(sed -n -e 's/.*serving on .* (port \([0-9]\+\)).*/\1/p' \
    -e 's/^listening on 127\.0\.0\.1:\([0-9]\+\)$/\1/p' "$tmp/scheduler.log" | head -1 || true)
  if [[ -z "$port" ]] && command -v ss >/dev/null; then
    port=$(ss -ltnpH 2>/dev/null | grep "pid=$pid," | sed -n 's/.*127\.0\.0\.1:\([0-9]\+\).*/\1/p' |
      head -1 || true)
  fi
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/scheduler.log" >&2; exit 1; }
  sleep 0.05
done
[[ -n "$port" ]] || { echo "could not learn the scheduler's port" >&2; cat "$tmp/scheduler.log" >&2; exit 1; }

echo "dyt-scheduler pid $pid on 127.0.0.1:$port, state in $tmp/state"
# The scheduler's CPU time (utime + stime, clock ticks) and threads, before and after the run.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks0=$(cpu_ticks)
start_ns=$(date +%s%N)
status=0
"$bench" --target "127.0.0.1:$port" "$@" || status=$?
ticks1=$(cpu_ticks)
wall=$(awk -v a="$start_ns" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
hz=$(getconf CLK_TCK)
awk -v t=$((ticks1 - ticks0)) -v hz="$hz" -v w="$wall" -v th="$(ls /proc/$pid/task | wc -l)" \
  'BEGIN {printf "scheduler cpu: %.1f s over %.1f s wall (%.2f cores), %d threads\n", t / hz, w, t / hz / w, th}'
echo "state dir after the run: $(du -sh "$tmp/state" | cut -f1)"
kill -TERM "$pid"
wait "$pid" || true
pid=""
grep -E "store:|error" "$tmp/scheduler.log" | tail -3 || true
exit $status
