#!/usr/bin/env bash
# Sets up, builds, and runs every test (meson test: the doctest suites and the
# CLI checks), then prints one closing line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || exit 1
build=${QKV_BUILD_DIR:-build}
meson test -C "$build" --print-errorlogs "$@"
rc=$?
# doctest's own summary ("[doctest] test cases: 40 | 40 passed | 0 failed | ...").
line=$(grep -h '^\[doctest\] test cases:' "$build/meson-logs/testlog.txt" | tail -n 1)
passed=$(sed -n 's/.*| *\([0-9]*\) passed.*/\1/p' <<<"$line")
failed=$(sed -n 's/.*| *\([0-9]*\) failed.*/\1/p' <<<"$line")
if [ -n "$line" ]; then
  echo "$line"
  echo "tests: ${passed:-0} passed, ${failed:-0} failed"
else
  echo "tests: 0 passed, 1 failed"  # the doctest binary did not report: count it as a failure
  rc=1
fi
exit $rc
