#!/usr/bin/env bash
# The qkv command line contract: exit 0 ok, 2 usage error, one-line errors on
# stderr that name what is wrong, --help everywhere, JSON bench lines.
set -u
qkv=${1:?usage: test_cli.sh PATH/TO/qkv}
fails=0
expect() {  # expect CODE 'stderr substring' -- args...
  local code=$1 want=$2; shift 3
  local err rc
  err=$("$qkv" "$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" != "$code" ] || [[ "$err" != *"$want"* ]]; then
    echo "FAIL: qkv $* -> exit $rc, stderr '$err' (want exit $code, '$want')"; fails=$((fails + 1))
  elif [ -n "$err" ] && [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ]; then
    echo "FAIL: qkv $* -> error is not one line: '$err'"; fails=$((fails + 1))
  fi
}
expect 0 '' -- --version
expect 0 '' -- --help
expect 0 '' -- bench --help
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "unknown suite 'nope'" -- bench nope
expect 2 "--threads: expected a count >= 1, got '0'" -- bench gemm --threads 0
expect 2 "--threads: missing value" -- bench gemm --threads
expect 2 "unknown option '--jsn'" -- bench --jsn
QKV_THREADS=abc expect 1 "QKV_THREADS: expected a thread count >= 1, got 'abc'" -- info

"$qkv" --help | grep -q -- '--version' || { echo "FAIL: --help lacks --version"; fails=$((fails + 1)); }
"$qkv" bench --help | grep -q -- '--threads N' || { echo "FAIL: bench --help lacks --threads"; fails=$((fails + 1)); }
out=$("$qkv" bench gemm --quick --json --threads 1)
first=$(printf '%s\n' "$out" | head -n 1)
for key in '"suite":"gemm"' '"case":"fma_peak"' '"threads":1' '"ms":' '"gflops":' '"gbps":'; do
  [[ "$first" == *"$key"* ]] || { echo "FAIL: bench json line lacks $key: $first"; fails=$((fails + 1)); }
done
info=$(QKV_THREADS=3 "$qkv" info)
[[ "$info" == *"threads: 3"* && "$info" == *"simd: "* ]] || { echo "FAIL: info: $info"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then echo "cli: $fails failed"; exit 1; fi
echo "cli: all checks passed"
