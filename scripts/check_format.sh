#!/usr/bin/env bash
# Checks that our C++ and CUDA sources follow .clang-format (Google style, 100 columns).
#   scripts/check_format.sh         list files that need formatting; exit 1 if any
#   scripts/check_format.sh --fix   rewrite them in place
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cu' '*.cuh')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "needs formatting: $f"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "format: ${#files[@]} files clean"
exit "$bad"
