#!/usr/bin/env bash
# OpenBLAS peer of `qkv bench gemm`: builds bench/peers/openblas_gemm.c against
# the system OpenBLAS (Debian's libopenblas-dev) and runs it.
#
# usage: bench/peers/openblas.sh [--threads N] [MxNxK ...]
#   Prints one JSON line per case (same schema as `qkv bench --json`, plus
#   "peer":"openblas" and the "coretype" OpenBLAS runs). Exit 2: OpenBLAS or a
#   C compiler is missing, or bad arguments.
#
# Environment:
#   OPENBLAS_CORETYPE   default SkylakeX (see below); set it to override, or
#                       to "auto" to let OpenBLAS detect the CPU itself.
#   QKV_PEERS_BUILD     where the binary goes (default: $TMPDIR/qkv-peers-$USER,
#                       never inside the repository).
#   CC                  C compiler (default: cc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/openblas_gemm.c"

threads=""
args=()
while (($#)); do
  case "$1" in
    --threads)
      [[ $# -ge 2 ]] || { echo "openblas.sh: --threads: missing value" >&2; exit 2; }
      threads="$2"; shift 2 ;;
    --threads=*) threads="${1#--threads=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [[ -z "$threads" ]]; then
  threads="${QKV_THREADS:-${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 1)}}"
  threads="${threads%%,*}"
fi
if ! [[ "$threads" =~ ^[1-9][0-9]*$ ]]; then
  echo "openblas.sh: --threads: expected a count >= 1, got '$threads'" >&2
  exit 2
fi

# Is OpenBLAS's development package there? (dpkg when available, else the files.)
have_openblas=0
if command -v dpkg-query >/dev/null 2>&1; then
  if dpkg-query -W -f='${Status}' libopenblas-dev 2>/dev/null | grep -q "install ok installed"; then
    have_openblas=1
  fi
elif pkg-config --exists openblas 2>/dev/null; then
  have_openblas=1
fi
if ((have_openblas == 0)); then
  echo "openblas.sh: OpenBLAS not found; install it with: apt-get install libopenblas-dev" >&2
  exit 2
fi
cc="${CC:-cc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "openblas.sh: no C compiler '$cc'; install it with: apt-get install gcc" >&2
  exit 2
fi

if pkg-config --exists openblas 2>/dev/null; then
  read -r -a blas_flags <<<"$(pkg-config --cflags --libs openblas)"
  libdir="$(pkg-config --variable=libdir openblas)"
  [[ -n "$libdir" ]] && blas_flags+=("-Wl,-rpath,$libdir")
else
  blas_flags=(-lopenblas)
fi

build="${QKV_PEERS_BUILD:-${TMPDIR:-/tmp}/qkv-peers-$(id -un 2>/dev/null || echo user)}"
mkdir -p "$build"
bin="$build/openblas_gemm"
if [[ ! -x "$bin" || "$src" -nt "$bin" || "$0" -nt "$bin" ]]; then
  tmp="$bin.tmp.$$"
  if ! "$cc" -O2 -std=c11 -o "$tmp" "$src" "${blas_flags[@]}" -lm; then
    rm -f "$tmp"
    echo "openblas.sh: compiling $src failed" >&2
    exit 2
  fi
  mv -f "$tmp" "$bin"
fi

# Threads: pinned the way qkv pins its own (an explicit count, also exported
# to OpenMP), so that every tool in a comparison runs at the same count.
export OPENBLAS_NUM_THREADS="$threads"
export OMP_NUM_THREADS="$threads"

# OpenBLAS 0.3.21 (Debian 12) misdetects some newer CPUs (e.g. AMD Zen 5, and
# recent Xeons it has no entry for) and falls back to its Haswell (AVX2) or
# even its SSE3 "Prescott" kernels, at half the machine's FP32 peak or far less.
# OPENBLAS_CORETYPE=SkylakeX selects its AVX-512 kernels instead. A value set
# by the caller is kept; "auto" leaves the choice to OpenBLAS's own detection.
if [[ "${OPENBLAS_CORETYPE:-}" == auto ]]; then
  unset OPENBLAS_CORETYPE
else
  export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
fi

exec "$bin" --threads "$threads" ${args[@]+"${args[@]}"}
