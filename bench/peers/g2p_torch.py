#!/usr/bin/python3
"""PyTorch twin of qkv's g2p BiLSTM + Luong attention (configs/g2p_luong.json), with its own flags.

usage: /usr/bin/python3 bench/peers/g2p_torch.py --data DIR [--threads N] [--embed E]
           [--hidden H] [--batch B] [--lr LR] [--target WER] [--eval-every N]
           [--eval-samples N] [--max-steps N] [--seed S]

DIR holds train.tsv and valid.tsv written by `qkv data configs/g2p_luong.json
--out DIR`: "word<TAB>phonemes" per line, the phonemes separated by spaces; a
word with several pronunciations has one line each (all trained on; in
valid.tsv they are its references, and a prediction is correct if it equals
any of them, as qkv scores WER).

The model is seq2seq_torch.py's Seq2Seq (qkv's, layer for layer) with Luong
general attention and input feeding, over letters in and phonemes out. Adam with qkv's cosine schedule after a linear warmup, gradient norm
clipped at 5, cross entropy over non-pad tokens. Every --eval-every steps it
decodes the first --eval-samples validation words greedily (batched) and
stops once WER <= --target. Prints one JSON line:
{"peer": "torch", "threads": N, "steps": S, "train_seconds": T, "wer": W,
 "reached": true|false}; train_seconds counts training and evaluation, not
data loading or model construction.
"""
import argparse
import json
import math
import os
import sys
import time
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seq2seq_torch import EOS, BOS, UNK, Seq2Seq, pad_batch, read_tsv, training_batches  # noqa: E402
import torch  # noqa: E402


class TokenVocab:
    """Specials first, then the sorted tokens (qkv's Vocab); split by `split`."""

    def __init__(self, texts, split):
        self.split = split
        toks = sorted({t for x in texts for t in split(x)})
        self.itos = ["<pad>", "<s>", "</s>", "<unk>"] + toks
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def encode(self, text):
        return [self.stoi.get(t, UNK) for t in self.split(text)]


def wer(model, refs, sv, tv, max_len):
    """refs: OrderedDict word -> [pronunciations]; a word is right if any reference matches."""
    model.eval()
    words = list(refs)
    errors = 0
    for i in range(0, len(words), 256):
        chunk = words[i:i + 256]
        src, src_len = pad_batch([sv.encode(w) for w in chunk])
        pred = model.greedy(src, src_len, max_len).tolist()
        for row, w in zip(pred, chunk):
            row = row[:row.index(EOS)] if EOS in row else row
            errors += all(row != tv.encode(r) for r in refs[w])
    model.train()
    return errors / len(words)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--target", type=float, default=0.30)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--max-steps", type=int, default=7000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = read_tsv(os.path.join(a.data, "train.tsv"))
    refs = OrderedDict()
    for w, p in read_tsv(os.path.join(a.data, "valid.tsv")):
        refs.setdefault(w, []).append(p)
    refs = OrderedDict(list(refs.items())[:a.eval_samples])
    sv = TokenVocab([s for s, _ in train], list)  # letters, vocabulary from train as qkv
    tv = TokenVocab([t for _, t in train], str.split)
    max_len = max(len(tv.encode(t)) for _, t in train) + 1
    model = Seq2Seq(len(sv.itos), len(tv.itos), a.embed, a.hidden, bidirectional=True, attention="luong")
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    # Linear warmup, then cosine to 0 over max_steps (qkv's "cosine" schedule).
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / a.warmup if s < a.warmup else
                                              0.5 * (1 + math.cos(math.pi * (s - a.warmup) /
                                                                  max(1, a.max_steps - a.warmup))))
    src_all = [sv.encode(s) for s, _ in train]
    tgt_all = [tv.encode(t) for _, t in train]
    g = torch.Generator().manual_seed(a.seed)

    t0 = time.perf_counter()
    step, err = 0, 1.0
    batches = training_batches(src_all, tgt_all, a.batch, g)
    while step < a.max_steps:
        src, src_len, tgt_in, tgt_out = next(batches)
        loss = model.loss(src, src_len, tgt_in, tgt_out)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        if step % a.eval_every == 0:
            err = wer(model, refs, sv, tv, max_len)
            print(f"step {step} loss {loss.item():.4f} valid wer {err:.4f} "
                  f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            if err <= a.target:
                break
    seconds = time.perf_counter() - t0
    print(json.dumps({"peer": "torch", "threads": a.threads, "steps": step,
                      "train_seconds": round(seconds, 3), "wer": err, "reached": err <= a.target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
