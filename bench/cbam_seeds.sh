#!/usr/bin/env bash
# Fashion-MNIST with and without CBAM over several seeds: is CBAM's difference larger than
# the spread between seeds? Trains configs/fmnist_cnn.json and configs/fmnist_cnn_cbam.json
# once per seed (--set seed=N: the initial weights, the order of the batches, dropout and
# the 5,000 validation images drawn from the training set; the test set is always the
# same 10,000 images), alternating the two, one JSON line per run, then a table of test
# accuracy per config: mean, sample standard deviation, min and max.
#
# usage: bench/cbam_seeds.sh [SEEDS] [--set PATH=VALUE ...]
#   SEEDS: "1 2 3" or 1,2,3 (default 1 2 3);  e.g. bench/cbam_seeds.sh 1,2,3,4,5
#   --set train.steps=N trains N steps instead of the configs' 5 epochs (a smoke test:
#   bench/cbam_seeds.sh 1,2 --set train.steps=5)
#   environment: QKV (the binary, default build/qkv), QKV_THREADS (as for qkv train)
set -euo pipefail
cd "$(dirname "$0")/.."
qkv=${QKV:-${QKV_BUILD_DIR:-build}/qkv}
seeds="1 2 3"
if [ $# -gt 0 ] && [[ $1 != --* ]]; then seeds=${1//,/ }; shift; fi
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "cbam_seeds.sh: unknown argument '$1' (usage: cbam_seeds.sh [SEEDS] [--set PATH=VALUE ...])" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for cfg in fmnist_cnn fmnist_cnn_cbam; do
  cp "configs/$cfg.json" "$work/$cfg.json"
  if [[ " ${sets[*]-} " == *" train.steps="* ]]; then  # steps replace the epochs (qkv takes one)
    /usr/bin/python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); del c["train"]["epochs"]; json.dump(c, open(sys.argv[1], "w"))' "$work/$cfg.json"
  fi
done
for seed in $seeds; do
  for cfg in fmnist_cnn fmnist_cnn_cbam; do
    s=$("$qkv" train "$work/$cfg.json" --set "seed=$seed" "${sets[@]}" --out "$work/$cfg.$seed" 2>"$work/log" \
        | tail -n 1) || { echo "cbam_seeds.sh: $cfg seed $seed failed: $(tail -n 1 "$work/log")" >&2; exit 1; }
    echo "{\"config\": \"$cfg\", \"seed\": $seed, \"summary\": $s}" | tee -a "$work/runs.jsonl"
  done
done
# The test accuracy of each run: the "accuracy" inside the summary's "test" object.
sed 's/.*"config": "\([^"]*\)".*"test":{[^}]*"accuracy":\([-0-9.e]*\).*/\1 \2/' "$work/runs.jsonl" | awk '
  { n[$1]++; s[$1] += $2; q[$1] += $2 * $2
    if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2
    if (!($1 in hi) || $2 > hi[$1]) hi[$1] = $2 }
  END {
    print "| config | seeds | test accuracy mean | std | min | max |"
    print "| --- | --- | --- | --- | --- | --- |"
    split("fmnist_cnn fmnist_cnn_cbam", order, " ")
    for (i = 1; i <= 2; i++) {
      c = order[i]; if (!(c in n)) continue
      m = s[c] / n[c]; v = n[c] > 1 ? (q[c] - n[c] * m * m) / (n[c] - 1) : 0
      printf "| %s | %d | %.4f | %.4f | %.4f | %.4f |\n", c, n[c], m, sqrt(v > 0 ? v : 0), lo[c], hi[c]
    }
  }'
