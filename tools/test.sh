#!/usr/bin/env bash
# Sets up, builds, and runs every test (meson test: the doctest suites and the
# CLI checks); then builds the same suites with AddressSanitizer + UBSan in a
# second build directory and runs them again; then runs each fuzz target
# briefly on its corpus (fuzz/run.sh). Prints a line per stage with its time
# and one closing line "tests: N passed, N failed" (doctest cases, both builds).
#   QKV_SANITIZE=0         skip the sanitizer build (a quick local run)
#   QKV_FUZZ_SECONDS=N     seconds per fuzz target (default 20; 0 skips fuzzing)
#   QKV_BUILD_DIR / QKV_ASAN_BUILD_DIR   build directories (build, build-asan)
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || exit 1
build=${QKV_BUILD_DIR:-build}
asan_build=${QKV_ASAN_BUILD_DIR:-build-asan}
rc=0
passed=0
failed=0
stage_start=$SECONDS

# doctest's own summary ("[doctest] test cases: 40 | 40 passed | 0 failed | ...") of a build.
count() {
  local line
  line=$(grep -h '^\[doctest\] test cases:' "$1/meson-logs/testlog.txt" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$1: the doctest binary did not report: counted as a failure"
    failed=$((failed + 1))
    rc=1
    return
  fi
  echo "$1: $line"
  passed=$((passed + $(sed -n 's/.*| *\([0-9]*\) passed.*/\1/p' <<<"$line")))
  failed=$((failed + $(sed -n 's/.*| *\([0-9]*\) failed.*/\1/p' <<<"$line")))
}
stage_done() {
  echo "stage $1: $((SECONDS - stage_start)) s"
  stage_start=$SECONDS
}

meson test -C "$build" --print-errorlogs "$@" || rc=1
count "$build"
stage_done "plain build and tests"

if [ "${QKV_SANITIZE:-1}" != 0 ]; then
  # -O1 without -g: the fastest sanitizer build that still finds what -O2 -g does
  # (about 10 minutes on two cores against well over 30 at -O2 -g).
  if [ ! -f "$asan_build/build.ninja" ]; then
    meson setup "$asan_build" -Db_sanitize=address,undefined -Db_lundef=false --buildtype=plain \
      -Dcpp_args=-O1 >&2 || exit 1
  fi
  ninja -C "$asan_build" qkv qkv_tests >&2 || exit 1
  # The install test is not run here: it builds outside programs against the
  # installed libraries, which would need the sanitizer runtimes linked in too;
  # the plain build runs it.
  echo "$asan_build: not run: install (an outside program does not link the sanitizer runtimes)"
  echo "$asan_build: not run: dist (ranks under mpirun with the sanitizers are not set up yet; the plain build runs it)"
  echo "$asan_build: not run: concepts (it reads docs/concepts.md, no compiled code)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C "$asan_build" --print-errorlogs --timeout-multiplier 3 doctest cli || rc=1
  count "$asan_build"
  stage_done "sanitizer build and tests"
fi

fuzz_secs=${QKV_FUZZ_SECONDS:-20}
if [ "$fuzz_secs" != 0 ]; then
  fuzz/run.sh "$fuzz_secs" || rc=1
  stage_done "fuzzing (${fuzz_secs} s a target)"
fi

echo "tests: $passed passed, $failed failed"
exit $rc
