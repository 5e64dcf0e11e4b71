#!/usr/bin/env bash
# Installs the Debian packages qkv builds with (only the missing ones, through
# sudo when not root), then configures and builds it. Idempotent: with
# everything present it only runs an incremental build.
#   tools/setup.sh [TARGET ...]   build only these ninja targets (default: all),
#                                 e.g. 'tools/setup.sh qkv' for the program alone
#   QKV_BUILD_DIR   build directory (default: build)
#   QKV_MESON_ARGS  extra 'meson setup' arguments, e.g. -Dnative=false
#   QKV_EXTRA_PKGS  more packages to ensure
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(g++ meson ninja-build pkg-config libxsimd-dev libcli11-dev doctest-dev nlohmann-json3-dev
  zlib1g-dev)
# The Fashion-MNIST experiments read its gzip'd IDX files from /usr/share/datasets/fashion-mnist/.
pkgs+=(dataset-fashion-mnist)
# Data-parallel training (mpirun -np N qkv train): Open MPI, found by meson's MPI dependency.
pkgs+=(openmpi-bin libopenmpi-dev)
# g2p reads CMUdict (festlex-cmu); language-id reads the word lists under /usr/share/dict/.
pkgs+=(festlex-cmu wamerican wngerman wfrench wspanish witalian wdutch wportuguese wswedish)
# fuzz/run.sh (called by tools/test.sh): clang's libFuzzer, and OpenMP for clang.
pkgs+=(clang libfuzzer-14-dev libomp-14-dev)
# shellcheck disable=SC2206
pkgs+=(${QKV_EXTRA_PKGS:-})
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "setup: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

build=${QKV_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  # shellcheck disable=SC2086
  meson setup "$build" ${QKV_MESON_ARGS:-} >&2
fi
ninja -C "$build" "$@" >&2
