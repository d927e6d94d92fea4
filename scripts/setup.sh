#!/usr/bin/env bash
# Idempotent set-up: installs the Debian packages dyt needs (only the missing ones, with one
# `apt-get update` at most), then configures CMake with Ninja into build/ and builds.
# A second run on a set-up machine checks the package list and does an incremental build.
#
# Environment:
#   DYT_BUILD_DIR   build directory (default: <repo>/build)
#   DYT_BUILD_TYPE  CMake build type (default: Release)
#   DYT_SKIP_BUILD  if set to 1, install packages only
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${DYT_BUILD_DIR:-$repo/build}"
build_type="${DYT_BUILD_TYPE:-Release}"

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev prometheus-cpp-dev libgloo-dev libsentencepiece-dev sentencepiece
  libopenblas-dev libopenblas-openmp-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  prometheus python3 python3-torch python3-numpy python3-yaml systemd
  bible-kjv clang-format openssl
  clang libclang-rt-14-dev  # tests/fuzz: libFuzzer + ASan/UBSan
)

missing=()
for p in "${packages[@]}"; do
  # dpkg-query prints "install ok installed" only for fully installed packages.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "dyt setup: installing ${#missing[@]} missing package(s): ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "dyt setup: all ${#packages[@]} packages present"
fi

[ "${DYT_SKIP_BUILD:-0}" = "1" ] && exit 0

if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
fi
cmake --build "$build_dir"
