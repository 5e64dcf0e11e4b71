#!/usr/bin/python3
"""PyTorch twin of qkv's default experiment, for time-to-accuracy.

usage: /usr/bin/python3 bench/peers/dates_torch.py --data DIR [--threads N] [--embed E]
           [--hidden H] [--batch B] [--lr LR] [--target ACC] [--eval-every N]
           [--eval-samples N] [--max-steps N] [--seed S]

DIR holds train.tsv and valid.tsv ("source<TAB>target" per line), written by
`qkv data CONFIG.json --out DIR` from the very config qkv trains on, so both
see the same examples in the same splits.

The model is seq2seq_torch.py's Seq2Seq (qkv's, layer for layer) with a
bidirectional LSTM encoder and Luong general attention with input feeding.
Adam, cross entropy over non-pad tokens, teacher forcing. (seq2seq_torch.py
trains any exported seq2seq experiment from its own config; this script keeps
its flags for bench/peers/time_to_accuracy.sh.)

Every --eval-every steps it decodes --eval-samples validation sources greedily
(batched) and stops once exact match >= --target. Prints one JSON line:
{"peer": "torch", "threads": N, "steps": S, "train_seconds": T,
 "exact_match": A, "reached": true|false}; train_seconds counts training and
evaluation wall-clock time, not data loading or model construction.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx512")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seq2seq_torch import BOS, EOS, UNK, Seq2Seq, pad_batch, read_tsv, training_batches  # noqa: E402


class Vocab:
    def __init__(self, texts):
        chars = sorted({c for t in texts for c in t})
        self.itos = ["<pad>", "<s>", "</s>", "<unk>"] + chars
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def encode(self, text):
        return [self.stoi.get(c, UNK) for c in text]


def exact_match(model, pairs, sv, tv, max_len):
    model.eval()
    hits = 0
    for i in range(0, len(pairs), 256):
        chunk = pairs[i:i + 256]
        src, src_len = pad_batch([sv.encode(s) for s, _ in chunk])
        pred = model.greedy(src, src_len, max_len)
        for row, (_, tgt) in zip(pred.tolist(), chunk):
            want = tv.encode(tgt) + [EOS]
            hits += row[:len(want)] == want
    model.train()
    return hits / len(pairs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embed", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = read_tsv(os.path.join(a.data, "train.tsv"))
    valid = read_tsv(os.path.join(a.data, "valid.tsv"))[:a.eval_samples]
    sv = Vocab([s for s, _ in train + valid])
    tv = Vocab([t for _, t in train + valid])
    max_len = max(len(t) for _, t in train + valid) + 1
    model = Seq2Seq(len(sv.itos), len(tv.itos), a.embed, a.hidden, bidirectional=True, attention="luong")
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    src_all = [sv.encode(s) for s, _ in train]
    tgt_all = [tv.encode(t) for _, t in train]
    g = torch.Generator().manual_seed(a.seed)

    t0 = time.perf_counter()
    step, acc = 0, 0.0
    batches = training_batches(src_all, tgt_all, a.batch, g)
    while step < a.max_steps:
        src, src_len, tgt_in, tgt_out = next(batches)
        loss = model.loss(src, src_len, tgt_in, tgt_out)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % a.eval_every == 0:
            acc = exact_match(model, valid, sv, tv, max_len)
            print(f"step {step} loss {loss.item():.4f} valid exact_match {acc:.4f} "
                  f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            if acc >= a.target:
                break
    seconds = time.perf_counter() - t0
    print(json.dumps({"peer": "torch", "threads": a.threads, "steps": step,
                      "train_seconds": round(seconds, 3), "exact_match": acc,
                      "reached": acc >= a.target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
