#!/usr/bin/env bash
# Data-parallel step time: each config trained STEPS steps at 1 rank x 2
# threads and at 2 ranks x 1 thread (mpirun), one JSON line per run:
#   {"bench":"dist","config":...,"layout":"2x1","ms_per_step":...,
#    "allreduce_bytes_per_step":...,"allreduce_ms_per_step":...,"allreduce_share":...,
#    "allreduce_exchange_ms_per_step":...}
# ms_per_step is the loop time between the step-10 and the last train record
# (evaluation left out: eval_every = STEPS); allreduce_* are rank 0's gradient
# all-reduce per step (the time includes waiting for the slower rank) and its
# share of the training loop; allreduce_exchange_ms_per_step is the exchange
# alone (per step the shortest time of the ranks: the last to arrive waits for
# nobody). Open MPI's MCA parameters pass through the environment, e.g.
# OMPI_MCA_coll_tuned_use_dynamic_rules=1 OMPI_MCA_coll_tuned_allreduce_algorithm=4.
#   bench/dist_step.sh [PATH/TO/qkv] [STEPS]   (default build/qkv, 110)
set -euo pipefail
qkv=${1:-build/qkv}
steps=${2:-110}
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sets=(--set train.steps="$steps" --set train.eval_every="$steps" --set train.eval_samples=128
  --set train.log_every=10)
per_step() { awk -v last="$steps" -f bench/step_ms.awk "$1/metrics.jsonl"; }
for cfg in configs/dates_luong.json configs/dates_transformer.json; do
  name=$(basename "$cfg" .json)
  QKV_THREADS=2 "$qkv" train "$cfg" --out "$tmp/$name.1x2" "${sets[@]}" >"$tmp/one.json" 2>/dev/null
  echo "{\"bench\":\"dist\",\"config\":\"$name\",\"layout\":\"1x2\",\"ms_per_step\":$(per_step "$tmp/$name.1x2")}"
  QKV_THREADS=1 mpirun --oversubscribe --bind-to core -np 2 "$qkv" train "$cfg" --out "$tmp/$name.2x1" \
    "${sets[@]}" >"$tmp/two.json" 2>/dev/null
  extra=$(grep -o '"allreduce_bytes_per_step":[^,]*,"allreduce_ms_per_step":[^,]*,"allreduce_share":[^,}]*,"allreduce_exchange_ms_per_step":[^,}]*' "$tmp/two.json")
  echo "{\"bench\":\"dist\",\"config\":\"$name\",\"layout\":\"2x1\",\"ms_per_step\":$(per_step "$tmp/$name.2x1"),$extra}"
done
