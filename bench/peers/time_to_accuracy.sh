#!/usr/bin/env bash
# Time to 99% exact match on the default experiment, qkv against PyTorch, in one run.
#
# usage: bench/peers/time_to_accuracy.sh [THREADS ...]   (default: 1 2)
#
# Exports the data set of configs/dates_luong.json with `qkv data` (so both
# train on the same examples in the same splits), then for each thread count
# trains it with qkv and with bench/peers/dates_torch.py (the same model, batch,
# optimizer, learning rate and evaluation schedule), alternating the two.
# Prints one JSON line per run; train_seconds is training plus periodic
# evaluation wall-clock time. Needs a build (tools/setup.sh) and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
qkv=${QKV:-${QKV_BUILD_DIR:-build}/qkv}
config=configs/dates_luong.json
threads=("$@")
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$qkv" data "$config" --out "$work/data" >/dev/null
for t in "${threads[@]}"; do
  s=$(QKV_THREADS=$t "$qkv" train "$config" --out "$work/run$t" 2>/dev/null | tail -n 1)
  echo "{\"peer\": \"qkv\", \"threads\": $t, \"summary\": $s}"
  /usr/bin/python3 bench/peers/dates_torch.py --data "$work/data" --threads "$t" \
    --embed 32 --hidden 128 --batch 128 --lr 0.003 --target 0.99 --eval-every 50 \
    --eval-samples 500 2>/dev/null
done
