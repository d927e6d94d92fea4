#!/usr/bin/env bash
# The trainer-only demo: dyt-train alone, without the scheduler and workers (useful on a GPU
# machine, or to look at the trainer by itself). After `scripts/setup.sh` (or any build of
# dyt-train, dyt-data and dyt-generate), run:  scripts/demo_trainer.sh [--steps N]
#   1. prepares the King James Bible as token shards with a trained BPE tokenizer (data/kjv),
#   2. trains a small DyT LLaMA on it with the standalone trainer, logging loss, tokens/s,
#      each DyT layer's alpha and the validation loss,
#   3. reports the validation loss against the unigram entropy of the validation text, and
#      samples text from the final checkpoint with dyt-generate (KV-cached decoding).
# Options: --steps N (default from examples/kjv-dyt-tiny.yaml).
# `scripts/dyt demo` (scripts/demo.sh) is the product demo: the same training as a job.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${DYT_BUILD_DIR:-$repo/build}/bin"
cd "$repo"
steps=()
if [ "${1:-}" = "--steps" ]; then steps=(--steps "$2"); fi

echo "== 1/3 preparing the King James Bible corpus (data/kjv)"
DYT_BIN_DIR="$bin" scripts/prepare_kjv.sh data/kjv

rm -rf data/runs/kjv-dyt-tiny  # a fresh run each time (its checkpoints live there)
echo "== 2/3 training a DyT LLaMA on it (examples/kjv-dyt-tiny.yaml)"
mkdir -p data/runs
events=data/runs/kjv-dyt-tiny.events.jsonl
"$bin/dyt-train" --config examples/kjv-dyt-tiny.yaml --events-fd 3 "${steps[@]}" 3>"$events"

echo "== 3/3 result"
unigram=$("$bin/dyt-data" stats data/kjv/val.bin | sed -n 's/.*bits\/token, \([0-9.]*\) nats\/token.*/\1/p' | tail -1)
val=$(grep '"event":"eval"' "$events" | tail -1 | sed 's/.*"val_loss":\([0-9.e+-]*\).*/\1/')
echo "validation loss ${val} nats/token; unigram entropy of the validation text ${unigram:-?} nats/token"
echo "events (JSON lines) in $events; checkpoints in data/runs/kjv-dyt-tiny/checkpoints"
echo "-- sample (dyt-generate --prompt 'And God said' --temperature 0.8 --top-k 40):"
"$bin/dyt-generate" --store data/runs/kjv-dyt-tiny/checkpoints \
  --tokenizer data/kjv/tokenizer.model --prompt "And God said" --max-tokens 120 \
  --temperature 0.8 --top-k 40 --seed 7
