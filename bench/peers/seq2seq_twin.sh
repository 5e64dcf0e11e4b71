#!/usr/bin/env bash
# One seq2seq experiment trained by qkv and by its PyTorch twin on the same data with the
# same recipe: is a result the model's or qkv's? Prints each run's JSON line, then a table
# of test exact match and training time.
#
# usage: bench/peers/seq2seq_twin.sh CONFIG [--threads N] [--set PATH=VALUE ...]
#   e.g. bench/peers/seq2seq_twin.sh configs/addition_reversed.json
#
# Exports the data set with `qkv data CONFIG --set ... --out DIR` (the splits as TSV and
# DIR/export.json, the resolved recipe), trains qkv on CONFIG with the same --set, then
# bench/peers/seq2seq_torch.py on DIR (the same model, batch, optimizer, schedule,
# clipping, steps and evaluation, read from export.json), which decodes the test split
# greedily at the end as qkv's final evaluation does. train_seconds: training plus periodic
# evaluation. Needs a build (tools/setup.sh) and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
qkv=${QKV:-${QKV_BUILD_DIR:-build}/qkv}
config=${1:?usage: seq2seq_twin.sh CONFIG [--threads N] [--set PATH=VALUE ...]}
shift
threads=1
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "seq2seq_twin.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$qkv" data "$config" "${sets[@]}" --out "$work/data" >/dev/null
s=$(QKV_THREADS=$threads "$qkv" train "$config" "${sets[@]}" --out "$work/run" 2>/dev/null | tail -n 1)
echo "{\"peer\": \"qkv\", \"threads\": $threads, \"summary\": $s}" | tee "$work/runs.jsonl"
/usr/bin/python3 bench/peers/seq2seq_torch.py --data "$work/data" --threads "$threads" --test \
  2>/dev/null | tee -a "$work/runs.jsonl"
/usr/bin/python3 - "$work/runs.jsonl" <<'PY'
import json, sys
print("| run | test exact match | train seconds | steps |\n| --- | --- | --- | --- |")
for line in open(sys.argv[1]):
    r = json.loads(line)
    s = r.get("summary", r)
    test = s["test"]
    # qkv's lexicon sets report wer / ser, the share of sources matching no reference
    em = test["exact_match"] if "exact_match" in test else 1 - test.get("wer", test.get("ser"))
    print(f"| {s['name']} ({r['peer']}, {r['threads']} thread(s)) | {em:.3f} | "
          f"{s['train_seconds']:.1f} | {s['steps']} |")
PY
