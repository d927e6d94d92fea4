#!/usr/bin/env bash
# Packs the shared libraries that the built binaries need but a bare GPU machine (Ubuntu 24.04,
# glibc 2.39, CUDA 13 + PyTorch) lacks: gtest/spdlog/fmt/yaml-cpp/OpenBLAS/sentencepiece and
# what they pull in. Found with ldd; the C runtime (libc, libm, libstdc++, libgcc_s, the
# loader, ...) and every CUDA library (driver, runtime, cuBLAS, NCCL, ...) are left out: the
# GPU machine has its own, matched to its driver.
#
# Writes <repo>/.carry/lib.tar.gz (gzip: OpenBLAS alone is 35 MB unpacked, and a device call
# carries at most 64 MiB) plus .carry/lib.txt listing what is inside. bench/gpu/run.sh unpacks
# it to a temp dir and puts that on LD_LIBRARY_PATH for our binaries only.
#
# Usage: bench/gpu/bundle_libs.sh BUILD_DIR        (binaries in BUILD_DIR/bin)
set -euo pipefail

build=${1:?usage: bundle_libs.sh BUILD_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
carry=$repo/.carry
[ -d "$build/bin" ] || { echo "bundle_libs: $build/bin does not exist" >&2; exit 1; }

# Left out: the C/C++ runtime every Linux has, and CUDA's own libraries.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libmvec|libstdc\+\+|libgcc_s|libpthread|libdl\.so|'
skip+='librt\.so|libresolv|libutil\.so|libcuda\.so|libcudart|libcublas|libnccl|libnvrtc|'
skip+='libnvJitLink|libcufft|libcurand|libcusolver|libcusparse|libcudnn|libcupti|libnvidia)'

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
missing=0
for bin in "$build"/bin/*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    [[ $name =~ $skip ]] && continue
    [[ $path == /usr/local/cuda* ]] && continue
    if [ ! -f "$path" ]; then
      echo "bundle_libs: $(basename "$bin") needs $name, which is not found here" >&2
      missing=1
      continue
    fi
    cp -L "$path" "$stage/$name"
  done < <(ldd "$bin")
done

mkdir -p "$carry"
rm -rf "$carry/lib" "$carry/lib.tar.gz"
tar -C "$stage" -czf "$carry/lib.tar.gz" .
(cd "$stage" && ls -l --block-size=K | tail -n +2 | awk '{print $5, $9}') > "$carry/lib.txt"
echo "bundle_libs: $(wc -l < "$carry/lib.txt") libraries -> $carry/lib.tar.gz" \
     "($(du -h "$carry/lib.tar.gz" | cut -f1)):"
sed 's/^/  /' "$carry/lib.txt"
bins=$(du -sh "$build/bin" | cut -f1)
echo "bundle_libs: carry '.carry' and '${build#"$repo"/}/bin' ($bins) with the device call"
exit $missing
