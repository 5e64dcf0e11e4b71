#!/usr/bin/env bash
# Time to a validation WER on G2P (CMUdict), qkv against its PyTorch twin, in one run.
#
# usage: bench/peers/g2p_time_to_wer.sh [--config FILE] [--target WER] [--set PATH=VALUE ...]
#            [--peer-threads N,...] [THREADS ...]
#        (defaults: configs/g2p_luong.json, WER 0.45, threads 1 2, the twin at every one of them)
#
# Exports the data set with `qkv data CONFIG --set ... --out DIR` (the splits as TSV and
# DIR/export.json, the resolved recipe with the target train.target = {wer <= WER} added),
# then for each thread count trains qkv on CONFIG with the same --set (the trainer stops
# at the target) and bench/peers/seq2seq_torch.py on DIR, which reads the same recipe from
# export.json: the same model, batch, optimizer, schedule and clipping, and the same
# evaluation (greedy decoding, train.beam=1, of the first train.eval_samples valid words every
# train.eval_every steps, right if equal to any reference). Alternates the two; one JSON
# line per run; train_seconds is training plus periodic evaluation wall-clock time.
# --peer-threads limits the twin to those thread counts (PyTorch's two-thread runs are
# slower than its one-thread runs here, and a G2P run takes it many minutes).
# Needs a build (tools/setup.sh) and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
qkv=${QKV:-${QKV_BUILD_DIR:-build}/qkv}
config=configs/g2p_luong.json
target=0.45
sets=()
threads=()
peer_threads=
while [ $# -gt 0 ]; do
  case $1 in
    --config) config=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --peer-threads) peer_threads=",$2,"; shift 2 ;;
    *) threads+=("$1"); shift ;;
  esac
done
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
sets+=(--set train.beam=1 --set train.target.metric=wer --set "train.target.value=$target")  # greedy, both
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$qkv" data "$config" "${sets[@]}" --out "$work/data" >/dev/null
for t in "${threads[@]}"; do
  s=$(QKV_THREADS=$t "$qkv" train "$config" "${sets[@]}" --out "$work/run$t" 2>/dev/null | tail -n 1)
  echo "{\"peer\": \"qkv\", \"threads\": $t, \"summary\": $s}"
  if [ -z "$peer_threads" ] || [[ $peer_threads == *",$t,"* ]]; then
    /usr/bin/python3 bench/peers/seq2seq_torch.py --data "$work/data" --threads "$t" 2>/dev/null
  fi
done
