#!/usr/bin/env bash
# Builds the sample corpus: the King James Bible (Debian package bible-kjv, ~4.4 MB of text,
# one verse per line with its reference, e.g. "Ge1:1 In the beginning ...") as token shards.
#
#   scripts/prepare_kjv.sh OUTDIR [--vocab-size N] [--val-fraction F]
#
# Writes into OUTDIR:
#   kjv.txt                     the text, from `bible -f Gen1:1-Rev22:21`
#   tokenizer.model, .vocab     a sentencepiece BPE tokenizer trained on it (default 4096)
#   train.bin, val.bin          dyt token shards; val.bin is the last F of the tokens (0.02)
#   prepare.stamp               what the outputs were made from (text hash, options)
# then prints the shards' statistics. Idempotent: when every output exists and the text and
# options match the stamp, it skips straight to the statistics (delete the stamp to force).
#
# Environment:
#   DYT_BIN_DIR  directory holding dyt-data (default: <repo>/build/bin)
set -euo pipefail

usage() {
  echo "usage: $0 OUTDIR [--vocab-size N] [--val-fraction F]" >&2
  exit 2
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vocab_size=4096
val_fraction=0.02
outdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --vocab-size) [ $# -ge 2 ] || usage; vocab_size="$2"; shift 2 ;;
    --val-fraction) [ $# -ge 2 ] || usage; val_fraction="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) [ -z "$outdir" ] || usage; outdir="$1"; shift ;;
  esac
done
[ -n "$outdir" ] || usage

dyt_data="${DYT_BIN_DIR:-$repo/build/bin}/dyt-data"
if [ ! -x "$dyt_data" ]; then
  echo "prepare_kjv: $dyt_data not found: build it (cmake --build build --target dyt-data)" \
       "or point DYT_BIN_DIR at the directory that holds it" >&2
  exit 1
fi
if ! command -v bible >/dev/null 2>&1; then
  echo "prepare_kjv: 'bible' not found: install the Debian package bible-kjv" \
       "(scripts/setup.sh does)" >&2
  exit 1
fi

mkdir -p "$outdir"
text="$outdir/kjv.txt"
bible -f Gen1:1-Rev22:21 > "$text.new"
if [ "$(wc -c < "$text.new")" -lt 1000000 ]; then
  echo "prepare_kjv: 'bible -f Gen1:1-Rev22:21' printed only $(wc -c < "$text.new") bytes;" \
       "expected about 4.4 MB" >&2
  rm -f "$text.new"
  exit 1
fi
# Replace the text only when it changed, so its timestamp (and the stamp) stay meaningful.
if cmp -s "$text.new" "$text"; then rm -f "$text.new"; else mv "$text.new" "$text"; fi

stamp="$outdir/prepare.stamp"
want="text_sha256=$(sha256sum "$text" | cut -d' ' -f1) vocab_size=$vocab_size"
want="$want val_fraction=$val_fraction tokenizer=bpe shards=dyt-v1"
outputs=("$outdir/tokenizer.model" "$outdir/train.bin" "$outdir/val.bin")
up_to_date=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || up_to_date=0
for f in "${outputs[@]}"; do [ -f "$f" ] || up_to_date=0; done

if [ "$up_to_date" = 1 ]; then
  echo "prepare_kjv: $outdir is up to date ($want)"
else
  rm -f "$stamp"  # written again only after every output is complete
  echo "prepare_kjv: training a BPE tokenizer (vocab $vocab_size) on $text"
  "$dyt_data" train-tokenizer --input "$text" --model-prefix "$outdir/tokenizer" \
    --vocab-size "$vocab_size"
  echo "prepare_kjv: encoding (last $val_fraction of the tokens -> val.bin)"
  "$dyt_data" encode --tokenizer "$outdir/tokenizer.model" --input "$text" \
    --output "$outdir/train.bin" --val-output "$outdir/val.bin" --val-fraction "$val_fraction"
  echo "$want" > "$stamp"
fi
"$dyt_data" stats "$outdir/train.bin" "$outdir/val.bin"
