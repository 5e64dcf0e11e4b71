#!/usr/bin/python3
"""PyTorch twin of qkv's default experiment, for time-to-accuracy.

usage: /usr/bin/python3 bench/peers/dates_torch.py --data DIR [--threads N] [--embed E]
           [--hidden H] [--batch B] [--lr LR] [--target ACC] [--eval-every N]
           [--eval-samples N] [--max-steps N] [--seed S]

DIR holds train.tsv and valid.tsv ("source<TAB>target" per line), written by
`qkv data CONFIG.json --out DIR` from the very config qkv trains on, so both
see the same examples in the same splits.

The model is qkv's Seq2Seq with Luong attention, layer for layer: a character
embedding and a bidirectional LSTM encoder (lengths respected), the final
states of both directions bridged to the decoder (h = tanh(W_h [h_f; h_b]),
c = W_c [c_f; c_b]), an LSTMCell decoder fed [embedding; h~_{t-1}] (input
feeding), the general score h . (W k), h~ = tanh(W_c [context; h]), logits =
out(h~). Adam, cross entropy over non-pad tokens, teacher forcing.

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
import torch.nn as nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

PAD, BOS, EOS, UNK = 0, 1, 2, 3


def read_tsv(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                src, tgt = line.split("\t")
                pairs.append((src, tgt))
    return pairs


class Vocab:
    def __init__(self, texts):
        chars = sorted({c for t in texts for c in t})
        self.itos = ["<pad>", "<s>", "</s>", "<unk>"] + chars
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def encode(self, text):
        return [self.stoi.get(c, UNK) for c in text]


def pad_batch(seqs, prefix=(), suffix=()):
    seqs = [list(prefix) + s + list(suffix) for s in seqs]
    n = max(len(s) for s in seqs)
    out = torch.full((len(seqs), n), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s)
    return out, torch.tensor([len(s) for s in seqs])


class LuongSeq2Seq(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, E, H):
        super().__init__()
        self.H = H
        self.src_emb = nn.Embedding(src_vocab, E, padding_idx=PAD)
        self.enc = nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.bridge_h = nn.Linear(2 * H, H)
        self.bridge_c = nn.Linear(2 * H, H)
        self.tgt_emb = nn.Embedding(tgt_vocab, E, padding_idx=PAD)
        self.cell = nn.LSTMCell(E + H, H)
        self.W = nn.Linear(2 * H, H, bias=False)  # general score: h . (W k)
        self.combine = nn.Linear(3 * H, H, bias=False)
        self.out = nn.Linear(H, tgt_vocab)

    def encode(self, src, src_len):
        packed = pack_padded_sequence(self.src_emb(src), src_len, batch_first=True,
                                      enforce_sorted=False)
        out, (h, c) = self.enc(packed)
        enc, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h = torch.tanh(self.bridge_h(torch.cat([h[0], h[1]], 1)))
        c = self.bridge_c(torch.cat([c[0], c[1]], 1))
        keys = self.W(enc)  # [B,S,H]
        mask = torch.arange(src.shape[1])[None, :] >= src_len[:, None]  # [B,S]
        return enc, keys, mask, h, c

    def step(self, tok, h, c, feed, enc, keys, mask):
        h, c = self.cell(torch.cat([self.tgt_emb(tok), feed], 1), (h, c))
        scores = torch.bmm(keys, h.unsqueeze(2)).squeeze(2).masked_fill(mask, float("-inf"))
        a = torch.softmax(scores, 1)
        ctx = torch.bmm(a.unsqueeze(1), enc).squeeze(1)
        ht = torch.tanh(self.combine(torch.cat([ctx, h], 1)))
        return self.out(ht), h, c, ht

    def loss(self, src, src_len, tgt_in, tgt_out):
        enc, keys, mask, h, c = self.encode(src, src_len)
        feed = torch.zeros(src.shape[0], self.H)
        logits = []
        for t in range(tgt_in.shape[1]):
            lg, h, c, feed = self.step(tgt_in[:, t], h, c, feed, enc, keys, mask)
            logits.append(lg)
        logits = torch.stack(logits, 1)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           tgt_out.reshape(-1), ignore_index=PAD)

    @torch.no_grad()
    def greedy(self, src, src_len, max_len):
        enc, keys, mask, h, c = self.encode(src, src_len)
        B = src.shape[0]
        feed = torch.zeros(B, self.H)
        tok = torch.full((B,), BOS, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        out = []
        for _ in range(max_len):
            lg, h, c, feed = self.step(tok, h, c, feed, enc, keys, mask)
            tok = lg.argmax(1)
            out.append(tok)
            done |= tok == EOS
            if bool(done.all()):
                break
        return torch.stack(out, 1)


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
    model = LuongSeq2Seq(len(sv.itos), len(tv.itos), a.embed, a.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    src_all = [sv.encode(s) for s, _ in train]
    tgt_all = [tv.encode(t) for _, t in train]
    g = torch.Generator().manual_seed(a.seed)

    t0 = time.perf_counter()
    step, acc, order, pos = 0, 0.0, torch.randperm(len(train), generator=g).tolist(), 0
    while step < a.max_steps:
        if pos + a.batch > len(order):
            order, pos = torch.randperm(len(train), generator=g).tolist(), 0
        idx = order[pos:pos + a.batch]
        pos += a.batch
        src, src_len = pad_batch([src_all[i] for i in idx])
        tgt_in, _ = pad_batch([tgt_all[i] for i in idx], prefix=(BOS,))
        tgt_out, _ = pad_batch([tgt_all[i] for i in idx], suffix=(EOS,))
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
