#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang, AddressSanitizer and UBSan
# (in build-fuzz/) and runs each for SECONDS (default 60) on its corpus: the
# committed seeds of fuzz/corpus/NAME/ (read only) and what the runs found so
# far (build-fuzz/corpus/NAME/). Prints one line per target: inputs run and
# findings. A finding (crash, sanitizer report, uncaught exception other than
# qkv::Error, time-out, memory blow-up) leaves its input in build-fuzz/findings/
# and makes the exit status 1: fix it, then add the input to fuzz/corpus/NAME/.
#   fuzz/run.sh [SECONDS] [NAME ...]    default: every target listed in fuzz/meson.build
#   QKV_FUZZ_BUILD_DIR   build directory (default: build-fuzz)
#   QKV_FUZZ_RUNS        also stop a target after this many inputs (the long
#                        runs: QKV_FUZZ_RUNS=1000000 fuzz/run.sh 600)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift $(($# > 0 ? 1 : 0))
build=${QKV_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++ meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=plain -Dcpp_args=-O1 >&2 || exit 1
fi
ninja -C "$build" fuzz >&2 || exit 1

names=("$@")
if ((${#names[@]} == 0)); then
  mapfile -t names < <(sed -n "s/^  '\([a-z0-9_]*\)',\$/\1/p" fuzz/meson.build)
fi
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0
mkdir -p "$build/findings"
for n in "${names[@]}"; do
  mkdir -p "$build/corpus/$n" "fuzz/corpus/$n"
  log="$build/fuzz_$n.log"
  start=$SECONDS
  "$build/fuzz/fuzz_$n" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    ${QKV_FUZZ_RUNS:+-runs=$QKV_FUZZ_RUNS} \
    -print_final_stats=1 -artifact_prefix="$build/findings/$n-" \
    "$build/corpus/$n" "fuzz/corpus/$n" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if ((status == 0)); then
    echo "fuzz $n: ${runs:-?} inputs in $((SECONDS - start)) s, no finding"
  else
    echo "fuzz $n: FINDING after ${runs:-?} inputs (log: $log; input: $build/findings/$n-*)"
    grep -m 5 -E 'ERROR|runtime error|terminate|deadly' "$log" | sed 's/^/  /'
    rc=1
  fi
done
exit $rc
