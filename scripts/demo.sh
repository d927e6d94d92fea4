#!/usr/bin/env bash
# The product demo (what `scripts/dyt demo` runs, after setting up and building):
#   1. starts dyt-scheduler and one CPU dyt-worker (2 slots) on loopback, with their state,
#      work and artifact directories in a temp dir,
#   2. prepares the King James Bible as token shards with a trained BPE tokenizer (data/kjv,
#      reused when up to date),
#   3. checks examples/jobs/kjv-dyt-tiny.yaml with `dytctl submit --dry-run` (where it would
#      run), submits it with `dytctl submit` and follows it live with
#      `dytctl watch` (progress bar, loss, validation loss, tokens/s),
#   4. `dytctl pull`s the final checkpoint (sha256-verified) into data/runs/kjv-dyt-tiny-demo,
#      compares the validation loss with the unigram entropy of the validation text and
#      samples text from the pulled checkpoint with dyt-generate,
#   5. stops the worker and the scheduler (SIGTERM, then waits for them).
# Ctrl-C or any error stops everything it started the same way and removes the temp dir.
#
#   scripts/demo.sh [--steps N]     (default: the job file's 300 steps, ~2 minutes on 2 idle cores)
#
# Environment: DYT_BUILD_DIR (default <repo>/build). The trainer-only demo, without services,
# is scripts/demo_trainer.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DYT_BUILD_DIR:-$repo/build}"
bin="$build/bin"
cd "$repo"

steps=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) [ $# -ge 2 ] || { echo "usage: $0 [--steps N]" >&2; exit 2; }
             steps=(--steps "$2"); shift 2 ;;
    *) echo "usage: $0 [--steps N]" >&2; exit 2 ;;
  esac
done

programs=(dyt-scheduler dyt-worker dytctl dyt-train dyt-generate dyt-data)
missing=()
for p in "${programs[@]}"; do [ -x "$bin/$p" ] || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ ! -f "$build/build.ninja" ]; then
    DYT_BUILD_DIR="$build" "$repo/scripts/setup.sh"
  else
    echo "== building ${missing[*]}"
    cmake --build "$build" --target "${missing[@]}"
  fi
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dyt-demo.XXXXXX")"
scheduler_pid=""
worker_pid=""

# SIGTERM, then up to $3 seconds for it to exit, then SIGKILL.
stop() {
  local pid="$1" name="$2" grace="$3" i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "demo: $name did not stop within ${grace}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Live processes whose command line names the temp dir: the daemons and the trainers they ran.
leftovers() {
  local d pid
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [ "$pid" = "$$" ] && continue
    if tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF -- "$tmp"; then
      grep -q '^State:.*Z' "$d/status" 2>/dev/null || echo "$pid"
    fi
  done
}

status=0
cleanup() {
  status=$?
  trap - EXIT INT TERM HUP
  if [ "$status" -ne 0 ]; then
    for log in worker scheduler; do
      if [ -s "$tmp/$log.log" ]; then
        echo "-- last lines of the $log's log:" >&2
        tail -n 15 "$tmp/$log.log" >&2
      fi
    done
  fi
  # The worker first: it stops its trainer (SIGTERM, SIGKILL after its 5 s grace) and reports
  # to the scheduler.
  if [ -n "$worker_pid" ] || [ -n "$scheduler_pid" ]; then
    echo "demo: stopping dyt-worker and dyt-scheduler" >&2
  fi
  stop "$worker_pid" dyt-worker 45
  stop "$scheduler_pid" dyt-scheduler 15
  local left
  left="$(leftovers)"
  if [ -n "$left" ]; then
    echo "demo: processes left behind (killing them): $(echo $left)" >&2
    kill -KILL $left 2>/dev/null || true
    status=1
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Every dytctl call goes over TLS (the cluster CA made below) with the demo user's token.
ctl() { DYT_CA_FILE="$tmp/certs/ca.crt" DYT_TOKEN="$user_token" "$bin/dytctl" --server "$address" "$@"; }
admin() { DYT_CA_FILE="$tmp/certs/ca.crt" DYT_TOKEN="$(cat "$tmp/state/admin.token")" \
  "$bin/dytctl" --server "$address" "$@"; }

echo "== 1/5 starting dyt-scheduler (TLS, tokens) and one CPU dyt-worker on loopback (state in $tmp)"
# A private CA and a server certificate for this run (docs/security.md).
scripts/dyt-certs.sh "$tmp/certs" >/dev/null
# setsid: Ctrl-C in the terminal reaches only this script, whose trap stops the daemons in order.
setsid "$bin/dyt-scheduler" --listen 127.0.0.1:0 --data-dir "$tmp/state" \
  --tls-cert "$tmp/certs/server.crt" --tls-key "$tmp/certs/server.key" \
  --artifact-root "$tmp/artifacts" --log-level warn >"$tmp/scheduler.out" 2>"$tmp/scheduler.log" &
scheduler_pid=$!
address=""
for ((i = 0; i < 300; i++)); do
  address="$(sed -n 's/^listening on \(.*\)$/\1/p' "$tmp/scheduler.out")"
  [ -n "$address" ] && break
  kill -0 "$scheduler_pid" 2>/dev/null || { echo "demo: dyt-scheduler exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { echo "demo: dyt-scheduler did not start listening within 30s" >&2; exit 1; }
# The scheduler's first start wrote an admin token (mode 0600) into its data dir; with it, a
# worker token for the worker and a user token for the demo user.
admin token create --user demo-worker --role worker --expires never >"$tmp/worker.token"
user_token="$(admin token create --user "${USER:-demo}" --role user --expires 1d)"
setsid "$bin/dyt-worker" --scheduler "$address" --worker-id demo-worker --cpu-slots 2 \
  --ca-file "$tmp/certs/ca.crt" --token-file "$tmp/worker.token" \
  --work-dir "$tmp/work" --trainer "$bin/dyt-train" --stop-grace-s 5 --log-level warn \
  >"$tmp/worker.log" 2>&1 &
worker_pid=$!
for ((i = 0; i < 300; i++)); do
  admin --output json workers 2>/dev/null | grep -q '"connected": true' && break
  kill -0 "$worker_pid" 2>/dev/null || { echo "demo: dyt-worker exited" >&2; exit 1; }
  sleep 0.1
done
admin --output json workers | grep -q '"connected": true' ||
  { echo "demo: dyt-worker did not register within 30s" >&2; exit 1; }
admin workers

echo "== 2/5 preparing the King James Bible corpus (data/kjv)"
DYT_BIN_DIR="$bin" scripts/prepare_kjv.sh data/kjv

echo "== 3/5 submitting examples/jobs/kjv-dyt-tiny.yaml and watching it"
# First a dry run: the scheduler checks the spec and says where the job would run.
ctl submit --dry-run examples/jobs/kjv-dyt-tiny.yaml "${steps[@]}"
id="$(ctl submit examples/jobs/kjv-dyt-tiny.yaml "${steps[@]}")"  # owner: the token's user
echo "submitted $id"
watch_rc=0
ctl watch "$id" || watch_rc=$?
if [ "$watch_rc" -ne 0 ]; then
  echo "demo: job $id did not succeed; its last output lines:" >&2
  ctl logs "$id" --tail 20 >&2 || true
  exit 1
fi

out=data/runs/kjv-dyt-tiny-demo
echo "== 4/5 pulling the final checkpoint into $out/checkpoint"
rm -rf "$out"
mkdir -p "$out"
ctl checkpoints "$id"
ctl pull "$id" -o "$out/checkpoint"
ctl logs "$id" --tail 10000 >"$out/train.log"
unigram=$("$bin/dyt-data" stats data/kjv/val.bin |
  sed -n 's/.*bits\/token, \([0-9.]*\) nats\/token.*/\1/p' | tail -1)
val=$(ctl --output json get "$id" | sed -n 's/^ *"val_loss": \([0-9.e+-]*\).*/\1/p' | head -1)
[ -n "$val" ] && val=$(printf '%.4f' "$val")
echo "validation loss ${val:-?} nats/token; unigram entropy of the validation text" \
  "${unigram:-?} nats/token (a model that learned nothing beyond token frequencies)"
echo "trainer output in $out/train.log; checkpoint in $out/checkpoint"
echo "-- sample (dyt-generate --prompt 'And God said' --temperature 0.8 --top-k 40):"
"$bin/dyt-generate" --checkpoint "$out/checkpoint" --tokenizer data/kjv/tokenizer.model \
  --prompt "And God said" --max-tokens 120 --temperature 0.8 --top-k 40 --seed 7

echo "== 5/5 stopping the worker and the scheduler"
stop "$worker_pid" dyt-worker 45
stop "$scheduler_pid" dyt-scheduler 15
worker_pid=""
scheduler_pid=""
[ -z "$(leftovers)" ] && echo "done: both stopped, no process of the demo is left"
