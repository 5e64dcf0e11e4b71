#!/usr/bin/env bash
# The qkv command line contract: exit 0 ok, 1 runtime failure, 2 usage or
# config error (naming the JSON path), 130 after Ctrl-C; one-line errors on
# stderr that name what is wrong, --help everywhere, JSON bench lines; a tiny
# experiment trained, evaluated, predicted (SVG), interrupted and resumed, a
# classifier's confusion matrix drawn, a NaN run stopped with its checkpoint
# intact, a corrupt checkpoint refused, and `qkv forward` held against PyTorch
# (tests/fixtures/make_forward.py).
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
expect 2 "--threads: expected an integer in [1, 1024], got '0'" -- bench gemm --threads 0
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


# ---- experiments: config errors (exit 2, naming the JSON path) ----------------
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../fixtures"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/tiny.json" <<JSON
{"name": "tiny", "seed": 2, "output": "$tmp/run",
 "data": {"name": "sequence", "task": "reverse", "min_len": 2, "max_len": 5, "symbols": 4,
          "train": 256, "valid": 32, "test": 32},
 "model": {"type": "seq2seq", "embed": 8, "hidden": 16, "attention": {"type": "luong"}},
 "train": {"batch_size": 32, "steps": 8, "eval_every": 4, "log_every": 4}}
JSON
for cmd in train eval predict forward inspect; do
  "$qkv" $cmd --help | grep -q -- '--' || { echo "FAIL: $cmd --help lists no flags"; fails=$((fails + 1)); }
done
"$qkv" train --help | grep -q -- '--resume' || { echo "FAIL: train --help lacks --resume"; fails=$((fails + 1)); }
expect 2 "train.optimizer.lr: expected a number > 0, got -0.1" -- train "$tmp/tiny.json" --set train.optimizer.lr=-0.1
expect 2 "train.optimzer: unknown key" -- train "$tmp/tiny.json" --set train.optimzer.lr=0.1
expect 2 "train.batch_size: expected an integer, got \"big\"" -- train "$tmp/tiny.json" --set train.batch_size=big
expect 2 "data.symbols: expected an integer in [2, " -- train "$tmp/tiny.json" --set data.symbols=1
expect 2 "missing file '/nonexistent/fmnist/" -- train "$tmp/tiny.json" --set 'data={"name":"fashion-mnist","dir":"/nonexistent/fmnist"}'
expect 2 "--set train: expected path=value" -- train "$tmp/tiny.json" --set train
expect 2 "--set train.steps.x=1: train.steps is not an object" -- train "$tmp/tiny.json" --set train.steps.x=1
expect 2 "$tmp/nope.json: cannot open the config file" -- train "$tmp/nope.json"
expect 2 "train: unknown option '--frob'" -- train "$tmp/tiny.json" --frob
expect 2 "train: missing CONFIG.json" -- train
expect 2 "eval: missing --checkpoint" -- eval "$tmp/tiny.json"
expect 2 "train: unexpected argument 'b.json'" -- train "$tmp/tiny.json" b.json
expect 2 "unknown option '--frob' (see 'qkv --help')" -- --frob
expect 2 "--threads: expected an integer in [1, 1024], got 'abc'" -- bench gemm --threads abc
expect 2 "--split: unknown split 'train' (one of: valid test)" -- eval "$tmp/tiny.json" --checkpoint x --split train
expect 2 "--beam: expected an integer in [1, 1024], got '0'" -- predict "$tmp/tiny.json" --checkpoint x --input a --beam 0
expect 2 "--out: missing value" -- data "$tmp/tiny.json" --out
expect 2 "forward: unknown option '--set'" -- forward m.json --set a=1 --input x --output y

# ---- help: one declaration per flag, so every flag's line shows its default (or 'required') ----
"$qkv" help | grep -q -- 'bench' || { echo "FAIL: qkv help lists no commands"; fails=$((fails + 1)); }
for cmd in train eval predict forward inspect data plot bench; do
  bad=$("$qkv" $cmd --help | grep -E '^  -' | grep -v -- '--help' | grep -vE '\((.*; )?(default: [^)]+|required)\)$')
  [ -z "$bad" ] || { echo "FAIL: $cmd --help: a flag without its default: $bad"; fails=$((fails + 1)); }
done
"$qkv" predict --help | grep -qE -- '--beam K +.*\(an integer in \[1, 1024\]; default: 1\)' || { echo "FAIL: predict --help: --beam's range and default"; fails=$((fails + 1)); }
# --set is repeatable, in either spelling, before or after the config
p1=$("$qkv" inspect "$tmp/tiny.json" | grep '^parameters:')
p2=$("$qkv" inspect --set model.hidden=8 --set=model.embed=4 "$tmp/tiny.json" | grep '^parameters:')
p3=$("$qkv" inspect "$tmp/tiny.json" --set model.hidden=8 | grep '^parameters:')
[[ -n "$p1" && -n "$p2" && -n "$p3" && "$p1" != "$p2" && "$p2" != "$p3" && "$p1" != "$p3" ]] \
  || { echo "FAIL: repeated --set: '$p1' / '$p2' / '$p3'"; fails=$((fails + 1)); }

# ---- train, eval, predict, inspect ----------------------------------------------
summary=$("$qkv" train "$tmp/tiny.json" 2>"$tmp/train.log"); rc=$?
[ $rc = 0 ] || { echo "FAIL: train exit $rc: $(tail -n 3 "$tmp/train.log")"; fails=$((fails + 1)); }
for key in '"name":"tiny"' '"steps":8' '"train_seconds":' '"valid":{' '"test":{' '"exact_match":'; do
  [[ "$summary" == *"$key"* ]] || { echo "FAIL: train summary lacks $key: $summary"; fails=$((fails + 1)); }
done
for f in config.json metrics.jsonl model.safetensors best.safetensors curves.svg; do
  [ -s "$tmp/run/$f" ] || { echo "FAIL: train did not write $f"; fails=$((fails + 1)); }
done
out=$("$qkv" eval "$tmp/tiny.json" --checkpoint "$tmp/run/model.safetensors" --split valid)
[[ "$out" == *'"split":"valid"'* && "$out" == *'"token_accuracy":'* ]] || { echo "FAIL: eval: $out"; fails=$((fails + 1)); }
out=$("$qkv" predict "$tmp/tiny.json" --checkpoint "$tmp/run/best.safetensors" --input abcd --attention "$tmp/att.svg")
rc=$?
[ $rc = 0 ] && [ -n "$out" ] || { echo "FAIL: predict exit $rc, output '$out'"; fails=$((fails + 1)); }
python3 -c "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); sys.exit(0 if r.tag.endswith('svg') and len(list(r.iter())) > 10 else 1)" "$tmp/att.svg" \
  || { echo "FAIL: predict --attention did not write a well-formed SVG"; fails=$((fails + 1)); }
# many inputs: one TSV line each (input, prediction, score), equal to one --input at a time
printf 'abcd\nab\n\nbcadd\ndcb\n' >"$tmp/inputs.txt"
for beam in 1 3; do
  out=$("$qkv" predict "$tmp/tiny.json" --checkpoint "$tmp/run/best.safetensors" --input-file "$tmp/inputs.txt" --beam $beam --batch-size 3)
  [ "$(printf '%s\n' "$out" | wc -l)" = 4 ] && [ "$(printf '%s\n' "$out" | awk -F'\t' 'NF == 3' | wc -l)" = 4 ] \
    || { echo "FAIL: predict --input-file (beam $beam): '$out'"; fails=$((fails + 1)); }
  while IFS=$'\t' read -r in pred score; do
    one=$("$qkv" predict "$tmp/tiny.json" --checkpoint "$tmp/run/best.safetensors" --input "$in" --beam $beam)
    [ "$one" = "$pred" ] || { echo "FAIL: predict --input-file '$in' -> '$pred', --input -> '$one'"; fails=$((fails + 1)); }
  done <<<"$out"
done
expect 2 "predict: give --input TEXT or --input-file FILE" -- predict "$tmp/tiny.json" --checkpoint "$tmp/run/best.safetensors"
expect 1 "$tmp/none.txt: cannot read the input file" -- predict "$tmp/tiny.json" --checkpoint "$tmp/run/best.safetensors" --input-file "$tmp/none.txt"
# quality against source length: every metric per bucket, the examples of all buckets add up,
# and `qkv plot` draws several runs' curves on one SVG
out=$("$qkv" eval "$tmp/tiny.json" --checkpoint "$tmp/run/best.safetensors" --by-length --bucket-width 2)
total=$(printf '%s\n' "$out" | grep -o '"examples":[0-9]*' | awk -F: '{ s += $2 } END { print s }')
[[ "$out" == *'"by_length":[{"min_len":1,"max_len":2,"examples":'* && "$total" = 32 ]] \
  || { echo "FAIL: eval --by-length ($total examples): $out"; fails=$((fails + 1)); }
printf '%s\n' "$out" >"$tmp/len_a.json"
"$qkv" eval "$tmp/tiny.json" --checkpoint "$tmp/run/model.safetensors" --by-length >"$tmp/len_b.json"
"$qkv" plot "$tmp/len_a.json" "$tmp/len_b.json" --label "run a" --label "run b" --metric token_accuracy --out "$tmp/len.svg" \
  && python3 -c "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); t = ''.join(r.itertext()); sys.exit(0 if 'run a' in t and 'run b' in t and 'source length' in t else 1)" "$tmp/len.svg" \
  || { echo "FAIL: plot did not write a well-formed SVG with both runs"; fails=$((fails + 1)); }
expect 1 "no metric 'bleu' in by_length" -- plot "$tmp/len_a.json" --metric bleu --out "$tmp/x.svg"
# two tasks in two panels, each its own metric: G2P's word accuracy is 1 - wer
printf '{"name":"g2p run","by_length":[{"min_len":1,"max_len":2,"examples":3,"metrics":{"wer":0.25,"per":0.1}}]}\n' >"$tmp/len_g2p.json"
"$qkv" plot "$tmp/len_a.json" "$tmp/len_g2p.json" --metric exact_match --metric 1-wer --panel reversal --panel G2P --out "$tmp/len2.svg" \
  && python3 -c "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); t = '|'.join(r.itertext()); sys.exit(0 if '|reversal|' in t and '|G2P|' in t and 'g2p run: x=1.5, y=0.75' in t and 'exact_match / 1-wer' in t else 1)" "$tmp/len2.svg" \
  || { echo "FAIL: plot --panel/--metric per file did not draw both panels with 1 - wer"; fails=$((fails + 1)); }
expect 1 "no metric 'bleu' in by_length" -- plot "$tmp/len_g2p.json" --metric 1-bleu --out "$tmp/x.svg"
expect 2 "plot: 2 --metric for 3 EVAL.json files" -- plot "$tmp/len_a.json" "$tmp/len_b.json" "$tmp/len_g2p.json" --metric exact_match --metric 1-wer --out "$tmp/x.svg"
expect 2 "plot: 1 --panel for 2 EVAL.json files" -- plot "$tmp/len_a.json" "$tmp/len_g2p.json" --panel a --out "$tmp/x.svg"
expect 1 "$tmp/tiny.json: no \"by_length\" list" -- plot "$tmp/tiny.json" --out "$tmp/x.svg"
expect 2 "plot: 1 --label for 2 EVAL.json files" -- plot "$tmp/len_a.json" "$tmp/len_b.json" --label a --out "$tmp/x.svg"
# a classifier's confusion matrix: the SVG's count cells add up to the split, as the JSON's do
for i in $(seq 1 60); do [ $((i % 3)) = 0 ] && printf 'pos\tgood %d\n' $i || printf 'neg\tbad %d\n' $i; done >"$tmp/labels.tsv"
cat >"$tmp/cls.json" <<JSON
{"name": "cls", "seed": 1, "output": "$tmp/cls",
 "data": {"name": "text-classification", "file": "$tmp/labels.tsv"},
 "model": {"type": "attn_classifier", "embed": 8, "hidden": 8},
 "train": {"batch_size": 16, "steps": 2, "eval_every": 2, "log_every": 2}}
JSON
"$qkv" train "$tmp/cls.json" >/dev/null 2>"$tmp/cls.log" || { echo "FAIL: cls train: $(tail -n 2 "$tmp/cls.log")"; fails=$((fails + 1)); }
out=$("$qkv" eval "$tmp/cls.json" --checkpoint "$tmp/cls/model.safetensors" --confusion "$tmp/conf.svg")
n=$("$qkv" data "$tmp/cls.json" --out "$tmp/cls_data" >/dev/null && grep -c . "$tmp/cls_data/test.tsv")
cells=$(grep -o '<text class="count"[^>]*>[0-9]*</text>' "$tmp/conf.svg" | sed 's/.*>\([0-9]*\)<.*/\1/' | awk '{ s += $1; k++ } END { print k, s }')
json=$(printf '%s\n' "$out" | grep -o '"counts":\[\[[0-9,]*\],\[[0-9,]*\]\]' | grep -o '[0-9][0-9]*' | awk '{ s += $1 } END { print s }')
[[ "$out" == *'"confusion":{"classes":["neg","pos"],"counts":[['* && "$cells" = "4 $n" && "$json" = "$n" && "$n" -gt 0 ]] \
  || { echo "FAIL: eval --confusion: cells '$cells', JSON sum '$json', test examples '$n': $out"; fails=$((fails + 1)); }
# `qkv data`: the splits and export.json, the resolved recipe a peer script trains from
"$qkv" data "$tmp/tiny.json" --set train.steps=3 --out "$tmp/tiny_data" >/dev/null
ex=$(tr -d ' \n' <"$tmp/tiny_data/export.json")
[[ -s "$tmp/tiny_data/train.tsv" && "$ex" == *'"steps":3,'* && "$ex" == *'"source_tokens":"chars","target_tokens":"chars"}' ]] \
  || { echo "FAIL: data export.json: $ex"; fails=$((fails + 1)); }
expect 1 "eval --confusion: the sequence data set has no classes" -- eval "$tmp/tiny.json" --checkpoint "$tmp/run/model.safetensors" --confusion "$tmp/x.svg"
out=$("$qkv" inspect "$tmp/tiny.json")
[[ "$out" == *"parameters: "* && "$out" == *"flops per step: "* && "$out" == *"encoder"* ]] || { echo "FAIL: inspect: $out"; fails=$((fails + 1)); }
# a language model: --length and --temperature (sampling seeded by the config)
yes 'the cat sat on the mat; the dog ate the hat. ' | head -n 40 >"$tmp/corpus.txt"
cat >"$tmp/lm.json" <<JSON
{"name": "lm", "seed": 3, "output": "$tmp/lm",
 "data": {"name": "text-lm", "files": ["$tmp/corpus.txt"], "seq_len": 16},
 "model": {"type": "transformer_lm", "d_model": 16, "nhead": 2, "num_layers": 1,
           "dim_feedforward": 32, "max_len": 16},
 "train": {"batch_size": 8, "steps": 4, "eval_every": 4, "log_every": 4}}
JSON
"$qkv" train "$tmp/lm.json" >/dev/null 2>"$tmp/lm.log" || { echo "FAIL: lm train: $(tail -n 2 "$tmp/lm.log")"; fails=$((fails + 1)); }
s1=$("$qkv" predict "$tmp/lm.json" --checkpoint "$tmp/lm/model.safetensors" --input "the " --length 6 --temperature 0.8)
s2=$("$qkv" predict "$tmp/lm.json" --checkpoint "$tmp/lm/model.safetensors" --input "the " --length 6 --temperature 0.8)
[[ -n "$s1" && "$s1" == "the "* && "$s1" == "$s2" ]] || { echo "FAIL: lm predict --temperature: '$s1' / '$s2'"; fails=$((fails + 1)); }
expect 1 "predict: cannot add 20 tokens (--length): the input is 4 tokens and the model's max_len is 16" -- \
  predict "$tmp/lm.json" --checkpoint "$tmp/lm/model.safetensors" --input "the " --length 20
expect 2 "--temperature: expected a number >= 0, got '-1'" -- \
  predict "$tmp/lm.json" --checkpoint "$tmp/lm/model.safetensors" --input "the " --temperature -1
expect 1 "predict: --length and --temperature apply to a language model" -- \
  predict "$tmp/tiny.json" --checkpoint "$tmp/run/model.safetensors" --input abcd --length 3
out=$("$qkv" inspect "$here/../../configs/dates_transformer.json")
[[ "$out" == *"flops per step: "*"source tokens"* && "$out" != *"unknown"* ]] || { echo "FAIL: inspect transformer: $out"; fails=$((fails + 1)); }
out=$("$qkv" inspect "$fixtures/forward/bilstm.json")
[[ "$out" == *"LSTM(5, 7"* && "$out" == *"parameters: "* ]] || { echo "FAIL: inspect module: $out"; fails=$((fails + 1)); }

# ---- a corrupt checkpoint is refused (exit 1, naming the file) -------------------
head -c 1000 "$tmp/run/model.safetensors" >"$tmp/bad.safetensors"
expect 1 "$tmp/bad.safetensors: " -- eval "$tmp/tiny.json" --checkpoint "$tmp/bad.safetensors"
expect 1 "$tmp/none.safetensors: no such checkpoint file" -- eval "$tmp/tiny.json" --checkpoint "$tmp/none.safetensors"

# ---- NaN: exit 1, the checkpoint left as it was ---------------------------------------
before=$(cksum <"$tmp/run/model.safetensors")
"$qkv" train "$tmp/tiny.json" --resume --set train.steps=40 --set train.eval_every=100 --set train.optimizer.lr=1e38 >/dev/null 2>"$tmp/nan.log"; rc=$?
last=$(tail -n 1 "$tmp/nan.log")
[ $rc = 1 ] && [[ "$last" == "qkv: train: the loss is NaN at step "*"(step 8) is intact" ]] || { echo "FAIL: NaN run: exit $rc, '$last'"; fails=$((fails + 1)); }
[ "$(cksum <"$tmp/run/model.safetensors")" = "$before" ] || { echo "FAIL: the NaN run changed the checkpoint"; fails=$((fails + 1)); }

# ---- Ctrl-C: saves a checkpoint, exits 130; --resume finishes the run ------------------
"$qkv" train "$tmp/tiny.json" --out "$tmp/int" --set train.steps=100000 --set train.eval_every=0 >/dev/null 2>"$tmp/int.log" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/int.log" ] && grep -q '^step ' "$tmp/int.log" && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] || { echo "FAIL: SIGINT: exit $rc (want 130): $(tail -n 2 "$tmp/int.log")"; fails=$((fails + 1)); }
step=$(python3 -c "import json,sys; sys.path.insert(0, sys.argv[2]); import st; print(st.load(sys.argv[1])[1]['qkv.step'])" "$tmp/int/model.safetensors" "$fixtures" 2>/dev/null)
[ -n "$step" ] && [ "$step" -gt 0 ] || { echo "FAIL: SIGINT left no checkpoint with a step"; fails=$((fails + 1)); }
out=$("$qkv" train "$tmp/tiny.json" --out "$tmp/int" --resume --set train.steps=$((step + 4)) --set train.eval_every=0 2>/dev/null)
[[ "$out" == *"\"steps\":$((step + 4))"* ]] || { echo "FAIL: resume after SIGINT: $out"; fails=$((fails + 1)); }

# ---- qkv forward reproduces PyTorch (tests/fixtures/make_forward.py) ----------------------
for case in mlp bilstm mha; do
  d="$fixtures/forward"
  "$qkv" forward "$d/$case.json" --weights "$d/$case.weights.safetensors" --input "$d/$case.input.safetensors" \
    --output "$tmp/$case.out.safetensors" --grad || { echo "FAIL: forward $case exit $?"; fails=$((fails + 1)); continue; }
  python3 - "$tmp/$case.out.safetensors" "$d/$case.expected.safetensors" "$fixtures" <<'PY' || { echo "FAIL: forward $case differs from PyTorch"; fails=$((fails + 1)); }
import sys
sys.path.insert(0, sys.argv[3])
import st
got, _ = st.load(sys.argv[1])
want, _ = st.load(sys.argv[2])
bad = sorted(set(got) ^ set(want))
for name, (_, shape, w) in want.items():
    if name not in got:
        continue
    _, gshape, g = got[name]
    worst = max((abs(a - b) / max(abs(b), 1.0) for a, b in zip(g, w)), default=0.0)
    if gshape != shape or worst > 1e-4:
        bad.append(f"{name}: shape {gshape} vs {shape}, max rel diff {worst:.2e}")
if bad:
    print("  " + "\n  ".join(bad))
    sys.exit(1)
PY
done
expect 2 "forward: missing --input" -- forward "$fixtures/forward/mlp.json" --output "$tmp/x.safetensors"
expect 1 "missing float tensor 'input'" -- forward "$fixtures/forward/mlp.json" --input "$fixtures/forward/mlp.weights.safetensors" --output "$tmp/x.safetensors"

# ---- sizes checked before they are allocated: exit 2 at once, naming the key and the bytes ----
# (1 s on a quiet machine; the bound leaves room for a loaded one and the sanitizer build)
expect_fast() {  # expect_fast 'stderr substring' -- args...
  local t0=$(date +%s%N)
  expect 2 "$@"
  local ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$ms" -lt 3000 ] || { echo "FAIL: qkv ${*:3} took $ms ms to refuse"; fails=$((fails + 1)); }
}
QKV_MEMORY_LIMIT=16G expect_fast "model.embed = 100000000, model.hidden = 16) need 32000004608 bytes" -- train "$tmp/tiny.json" --set model.embed=100000000
expect_fast "model.hidden = 10000000) need 1" -- train "$tmp/tiny.json" --set model.hidden=10000000
expect_fast "data: the examples (data.train = 10000000000, data.valid = 32, data.test = 32) need 640" -- \
  train "$tmp/tiny.json" --set data.train=10000000000
QKV_MEMORY_LIMIT=1M expect_fast "more than the memory limit of 1048576 bytes" -- inspect "$tmp/tiny.json" --set model.embed=100000

# ---- an output directory that cannot be written is refused before training starts ----
# Root ignores permission bits, so the portable case is a path under a regular file.
echo x >"$tmp/plainfile"
expect 1 "train: cannot create the output directory '$tmp/plainfile/run'" -- train "$tmp/tiny.json" --out "$tmp/plainfile/run"
if [ "$(id -u)" != 0 ]; then
  mkdir -p "$tmp/ro" && chmod 555 "$tmp/ro"
  expect 1 "train: the output directory '$tmp/ro' is not writable: Permission denied" -- train "$tmp/tiny.json" --out "$tmp/ro"
  chmod 755 "$tmp/ro"
else
  echo "cli: read-only directory case not run: root writes into any directory (the regular-file case ran)"
fi
out=$("$qkv" train "$tmp/tiny.json" --out "$tmp/plainfile/run" 2>&1)
[[ "$out" != *"config:"* && "$out" != *"step"* ]] || { echo "FAIL: training started before the output directory was refused: $out"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then echo "cli: $fails failed"; exit 1; fi
echo "cli: all checks passed"
