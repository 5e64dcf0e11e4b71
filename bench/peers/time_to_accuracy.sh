#!/usr/bin/env bash
# Time to 99% exact match on the default experiment, qkv against PyTorch, in one run.
#
# usage: bench/peers/time_to_accuracy.sh [--seeds 1,2,3] [THREADS ...]   (default: 1 2)
#
# Exports the data set of configs/dates_luong.json with `qkv data` (so both
# train on the same examples in the same splits), then for each seed and
# thread count trains it with qkv and with bench/peers/dates_torch.py (the
# same model, batch, optimizer, learning rate and evaluation schedule, read
# from the config), alternating the two. Prints one JSON line per run
# (train_seconds: training plus periodic evaluation, wall clock), then a table
# of medians over the seeds. The seed moves the step count to the target
# (150-350 steps for either engine), so one seed measures the seed as much as
# the engine: the medians are the figures to quote.
# Needs a build (tools/setup.sh) and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
qkv=${QKV:-${QKV_BUILD_DIR:-build}/qkv}
config=configs/dates_luong.json
seeds=1,2,3
if [ "${1:-}" = --seeds ]; then
  seeds=${2:?--seeds needs a list such as 1,2,3}
  shift 2
fi
threads=("$@")
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$qkv" data "$config" --out "$work/data" >/dev/null
recipe=$(/usr/bin/python3 - "$config" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
m, t = c["model"], c["train"]
print(f"--embed {m['embed']} --hidden {m['hidden']} --batch {t['batch_size']} "
      f"--lr {t['optimizer']['lr']} --target {t['target']['value']} "
      f"--eval-every {t['eval_every']} --eval-samples {t['eval_samples']}")
EOF
)
for seed in ${seeds//,/ }; do
  for t in "${threads[@]}"; do
    s=$(QKV_THREADS=$t "$qkv" train "$config" --set seed="$seed" --out "$work/run$t" 2>/dev/null |
      tail -n 1)
    echo "{\"peer\": \"qkv\", \"threads\": $t, \"seed\": $seed, \"summary\": $s}" | tee -a "$work/runs"
    # shellcheck disable=SC2086
    /usr/bin/python3 bench/peers/dates_torch.py --data "$work/data" --threads "$t" --seed "$seed" \
      $recipe 2>/dev/null | sed "s/^{/{\"seed\": $seed, /" | tee -a "$work/runs"
  done
done
/usr/bin/python3 - "$work/runs" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = {}
for r in runs:
    s = r.get("summary", r)  # qkv's summary line, or the twin's own line
    steps = s.get("target_step", s["steps"])
    rows.setdefault((r["peer"], r["threads"]), []).append((s["train_seconds"], steps))
med = {k: (statistics.median(s for s, _ in v), statistics.median(n for _, n in v), len(v))
       for k, v in rows.items()}
threads = sorted({t for _, t in med})
best_torch = min(med[("torch", t)][0] for t in threads if ("torch", t) in med)
print("| threads | qkv | PyTorch | qkv faster | qkv against PyTorch's best |")
print("| ---: | ---: | ---: | ---: | ---: |")
for t in threads:
    q, p = med.get(("qkv", t)), med.get(("torch", t))
    if not q or not p:
        continue
    print(f"| {t} | {q[0]:.1f} s ({q[1]:.0f} steps) | {p[0]:.1f} s ({p[1]:.0f} steps) | "
          f"{p[0] / q[0]:.2f}x | {best_torch / q[0]:.2f}x |")
print(f"medians over {max(n for *_, n in med.values())} seeds")
EOF
