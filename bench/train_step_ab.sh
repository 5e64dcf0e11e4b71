#!/usr/bin/env bash
# The single-process train step of two qkv binaries, A (an older build) against
# B (default build/qkv): the default experiment and the Transformer on dates,
# STEPS steps each, ROUNDS rounds with A and B interleaved (alternating which
# goes first), so machine load falls on both alike. One JSON line per config:
#   {"bench":"train_step_ab","config":...,"threads":...,"a_ms":...,"b_ms":...,
#    "ratio_b_over_a":...,"a_runs":[...],"b_runs":[...]}
# a_ms / b_ms are the medians of the rounds' ms per step (bench/step_ms.awk:
# between step 10 and the last; evaluation left out); ratio < 1: B is faster.
#   bench/train_step_ab.sh PATH/TO/OLD_qkv [PATH/TO/NEW_qkv] [ROUNDS] [STEPS]
# (defaults build/qkv, 5, 110; threads from QKV_THREADS, else all cores)
set -euo pipefail
a=$(realpath "${1:?usage: train_step_ab.sh OLD_QKV [NEW_QKV] [ROUNDS] [STEPS]}")
b=$(realpath "${2:-build/qkv}")
rounds=${3:-5}
steps=${4:-110}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sets=(--set train.steps="$steps" --set train.eval_every="$steps" --set train.eval_samples=128
  --set train.log_every=10)
threads=${QKV_THREADS:-$(nproc)}
ms() {  # ms BINARY CONFIG: one run's ms per step
  rm -rf "$tmp/run"
  QKV_THREADS=$threads "$1" train "$2" --out "$tmp/run" "${sets[@]}" >/dev/null 2>"$tmp/err" ||
    { echo "train_step_ab: $1 failed on $2: $(tail -n 1 "$tmp/err")" >&2; exit 1; }
  awk -v last="$steps" -f bench/step_ms.awk "$tmp/run/metrics.jsonl"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for cfg in configs/dates_luong.json configs/dates_transformer.json; do
  ra=() rb=()
  for ((i = 0; i < rounds; i++)); do
    if ((i % 2 == 0)); then ra+=("$(ms "$a" "$cfg")"); rb+=("$(ms "$b" "$cfg")")
    else rb+=("$(ms "$b" "$cfg")"); ra+=("$(ms "$a" "$cfg")"); fi
  done
  ma=$(median "${ra[@]}") mb=$(median "${rb[@]}")
  join() { local IFS=,; echo "$*"; }
  printf '{"bench":"train_step_ab","config":"%s","threads":%s,"a_ms":%s,"b_ms":%s,"ratio_b_over_a":%.3f,"a_runs":[%s],"b_runs":[%s]}\n' \
    "$(basename "$cfg" .json)" "$threads" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')" \
    "$(join "${ra[@]}")" "$(join "${rb[@]}")"
done
