# ms per training step from a run's metrics.jsonl: the "seconds" of the train
# records at step 10 and at step `last`, so start-up and the first steps'
# allocations are left out (evaluation too when eval_every = last).
#   awk -v last=STEPS -f bench/step_ms.awk DIR/metrics.jsonl
BEGIN { FS = "\"seconds\":" }
/"split":"train"/ {
  split($0, a, "\"step\":"); split(a[2], b, ","); split($2, c, /[,}]/)
  if (b[1] == 10) t0 = c[1]
  if (b[1] == last) t1 = c[1]
}
END { printf "%.2f", (t1 - t0) / (last - 10) * 1000 }
