#!/usr/bin/env bash
# Sets up, builds the qkv program alone (not the test suite), and runs the main
# job: 'qkv' with no arguments (or the arguments given, e.g. tools/run.sh bench
# softmax).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh qkv
exec "${QKV_BUILD_DIR:-build}/qkv" "$@"
