#!/usr/bin/env bash
# Data-parallel training against the single process (mpirun -np 2 on this
# machine). For a seq2seq with attention (odd batch: uneven slices), a
# Transformer with dropout (example-keyed masks) and a CNN with BatchNorm
# (synchronised statistics): 50 steps at 2 ranks match the 1-process run
# (per-step losses and final weights within 1e-5 relative), and two 2-rank
# runs are bit-identical. Resume: stopped at step 20 under 2 ranks and resumed
# under 1 (and the reverse) matches the uninterrupted run. Faults: a rank
# killed mid-run, a rank failing on bad input, and a NaN loss on one rank end
# the job within 30 s, naming the rank; the last checkpoint still loads.
#   test_dist.sh PATH/TO/qkv PATH/TO/compare_runs mpi|nompi
set -u
qkv=${1:?usage: test_dist.sh QKV COMPARE_RUNS mpi|nompi}
compare=${2:?}
if [ "${3:-}" != mpi ]; then
  echo "SKIP: this build has no MPI (libopenmpi-dev not found by meson)"
  # Built without MPI: a launch as several processes is refused, naming the cause.
  err=$(OMPI_COMM_WORLD_SIZE=2 "$qkv" train /nonexistent.json 2>&1 >/dev/null); rc=$?
  if [ $rc = 0 ] || [[ "$err" != *"built without MPI"* ]]; then
    echo "FAIL: no-MPI build under a launcher: exit $rc, '$err'"; exit 1
  fi
  exit 77
fi
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export QKV_THREADS=1
mpi() { mpirun --oversubscribe --bind-to none -np "$@"; }
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- the three models, tiny: 50 steps each, a loss logged per step ----------------------
train='"train": {"batch_size": 33, "steps": 50, "eval_every": 50, "eval_samples": 66, "log_every": 1,
                 "optimizer": {"type": "adam", "lr": 0.003}, "clip_norm": 1.0}'
cat >"$tmp/s2s.json" <<JSON
{"name": "s2s", "seed": 3,
 "data": {"name": "sequence", "task": "reverse", "min_len": 2, "max_len": 6, "symbols": 5,
          "train": 300, "valid": 66, "test": 33},
 "model": {"type": "seq2seq", "embed": 8, "hidden": 16, "attention": {"type": "luong"}},
 $train}
JSON
# SGD for the Transformer: the key part of in_proj_bias has an exact zero
# gradient (softmax ignores a shift shared by all keys), so it moves on rounding
# noise alone, which Adam scales up to full-size steps: no two summation orders
# (1 process, 2 ranks) agree on it, in qkv or anywhere.
cat >"$tmp/transformer.json" <<JSON
{"name": "transformer", "seed": 4,
 "data": {"name": "sequence", "task": "reverse", "min_len": 2, "max_len": 6, "symbols": 5,
          "train": 300, "valid": 66, "test": 33},
 "model": {"type": "transformer", "d_model": 16, "nhead": 2, "num_encoder_layers": 1,
           "num_decoder_layers": 1, "dim_feedforward": 32, "dropout": 0.1, "max_len": 16},
 ${train/\"adam\", \"lr\": 0.003/\"sgd\", \"lr\": 0.1, \"momentum\": 0.9}}
JSON
cat >"$tmp/cnn.json" <<JSON
{"name": "cnn", "seed": 5, "data": {"name": "fashion-mnist", "limit": 400, "valid": 66},
 "model": {"type": "sequential", "layers": [
   {"type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": false},
   {"type": "batch_norm2d", "num_features": 4}, {"type": "relu"}, {"type": "max_pool2d", "kernel_size": 4},
   {"type": "flatten"}, {"type": "linear", "in_features": 196, "out_features": 10}]},
 $train}
JSON

run1() { "$qkv" train "$1" --out "$2" "${@:3}" >/dev/null 2>"$2.err" || fail "1 process: $1 $(tail -n 3 "$2.err")"; }
run2() { mpi 2 "$qkv" train "$1" --out "$2" "${@:3}" >/dev/null 2>"$2.err" || fail "2 ranks: $1 $(tail -n 3 "$2.err")"; }
same() {  # same A B TOL WHAT
  local out
  out=$("$compare" "$1" "$2" "$3") || fail "$4: $(printf '%s\n' "$out" | grep -m 5 -E 'FAIL|losses')"
}

for m in s2s transformer cnn; do
  run1 "$tmp/$m.json" "$tmp/$m.one"
  run2 "$tmp/$m.json" "$tmp/$m.two"
  run2 "$tmp/$m.json" "$tmp/$m.two_again"
  same "$tmp/$m.two" "$tmp/$m.one" 1e-5 "$m: 2 ranks against 1 process"
  same "$tmp/$m.two_again" "$tmp/$m.two" 0 "$m: two 2-rank runs not bit-identical"
done
grep -q "layout: 2 ranks x 1 thread" "$tmp/s2s.two.err" || fail "the layout line: $(cat "$tmp/s2s.two.err")"
[ "$(grep -c '"split":"train"' "$tmp/s2s.two/metrics.jsonl")" = 50 ] || fail "rank 0 alone writes metrics"

# ---- resume with another rank count: steps 20 under one, then on to 50 under the other ----
for m in s2s cnn; do
  run2 "$tmp/$m.json" "$tmp/$m.r21" --set train.steps=20
  run1 "$tmp/$m.json" "$tmp/$m.r21" --resume
  same "$tmp/$m.r21" "$tmp/$m.one" 1e-5 "$m: 2 ranks to step 20, resumed under 1"
  run1 "$tmp/$m.json" "$tmp/$m.r12" --set train.steps=20
  run2 "$tmp/$m.json" "$tmp/$m.r12" --resume
  same "$tmp/$m.r12" "$tmp/$m.one" 1e-5 "$m: 1 process to step 20, resumed under 2 ranks"
done

# ---- a batch that cannot give every rank an example is refused at start ----------------
err=$(mpi 2 "$qkv" train "$tmp/s2s.json" --out "$tmp/tiny" --set train.batch_size=1 2>&1 >/dev/null)
[[ "$err" == *"cannot be split over 2 ranks"* ]] || fail "batch of 1 over 2 ranks: '$err'"

# ---- faults: a killed rank, a rank with bad input ---------------------------------------
long="$tmp/s2s.json --set train.steps=100000 --set train.eval_every=10 --set train.log_every=10"
mpi 2 "$qkv" train $long --out "$tmp/killed" >/dev/null 2>"$tmp/killed.err" &
job=$!
for _ in $(seq 300); do [ -f "$tmp/killed/model.safetensors" ] && break; sleep 0.1; done
victim=""
for p in $(pgrep -f "train $tmp/s2s.json"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
if [ -z "$victim" ]; then
  fail "no rank 1 process to kill"; kill "$job"
else
  kill -9 "$victim"
  start=$(date +%s)
  wait "$job"; rc=$?
  took=$(($(date +%s) - start))
  [ $rc != 0 ] || fail "killed rank: the job exited 0"
  [ $took -le 30 ] || fail "killed rank: the job took ${took}s to end"
  grep -q "rank 1" "$tmp/killed.err" || fail "killed rank: no message naming rank 1: $(cat "$tmp/killed.err")"
  "$qkv" eval "$tmp/s2s.json" --checkpoint "$tmp/killed/model.safetensors" >/dev/null 2>&1 ||
    fail "killed rank: the last checkpoint does not load"
fi
start=$(date +%s)
mpirun --oversubscribe --bind-to none -np 1 "$qkv" train $long --out "$tmp/bad" : \
  -np 1 env QKV_THREADS=abc "$qkv" train $long --out "$tmp/bad" >/dev/null 2>"$tmp/bad.err"
rc=$?
took=$(($(date +%s) - start))
[ $rc != 0 ] || fail "bad input on rank 1: the job exited 0"
[ $took -le 30 ] || fail "bad input on rank 1: the job took ${took}s to end"
grep -q "qkv: rank 1 of 2: QKV_THREADS: expected a thread count" "$tmp/bad.err" ||
  fail "bad input on rank 1: no one-line message naming the rank: $(head -n 3 "$tmp/bad.err")"

# NaN on one rank: resumed from a 2-rank checkpoint at step 10, rank 1 alone is
# launched with a learning rate of 3e38 (as a rank given another config would
# be). Its first update overflows its weights, so its loss is NaN at step 12
# while rank 0's is finite. The ranks agree on the fault in the step's status
# exchange and stop together: exit 1 within 30 s, one line from rank 0 naming
# rank 1, the cause and the step, no MPI_Abort, the step-10 checkpoint untouched.
# (A rank raising the fault alone would leave rank 0 in the all-reduce: the
# timeout turns that hang into a failure.)
run2 "$tmp/s2s.json" "$tmp/nan" --set train.steps=10
cp "$tmp/nan/model.safetensors" "$tmp/nan.step10"
start=$(date +%s)
timeout -k 5 60 mpirun --oversubscribe --bind-to none -np 1 "$qkv" train $long --out "$tmp/nan" --resume : \
  -np 1 "$qkv" train $long --out "$tmp/nan" --resume --set train.optimizer.lr=3e38 \
  >/dev/null 2>"$tmp/nan.err"
rc=$?
took=$(($(date +%s) - start))
[ $rc = 1 ] || fail "NaN on rank 1: the job exited $rc, not 1"
[ $took -le 30 ] || fail "NaN on rank 1: the job took ${took}s to end"
lines=$(grep '^qkv:' "$tmp/nan.err")
[[ "$lines" == "qkv: rank 1 of 2: train: the loss is NaN at step 12 (epoch 1); stopped."* ]] ||
  fail "NaN on rank 1: not one line naming rank 1 and step 12: '$lines'"
! grep -q MPI_ABORT "$tmp/nan.err" || fail "NaN on rank 1: the job was aborted, not stopped in agreement"
cmp -s "$tmp/nan/model.safetensors" "$tmp/nan.step10" || fail "NaN on rank 1: the step-10 checkpoint changed"
"$qkv" eval "$tmp/s2s.json" --checkpoint "$tmp/nan/model.safetensors" >/dev/null 2>&1 ||
  fail "NaN on rank 1: the last checkpoint does not load"

[ $fails = 0 ] && echo "dist: all passed" || echo "dist: $fails failed"
[ $fails = 0 ]
