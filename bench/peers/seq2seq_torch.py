#!/usr/bin/python3
"""PyTorch twin of qkv's seq2seq experiments, trained on what `qkv data` exports.

usage: /usr/bin/python3 bench/peers/seq2seq_torch.py --data DIR [--threads N] [--test]

DIR is written by `qkv data CONFIG.json [--set PATH=VALUE ...] --out DIR`:
train.tsv, valid.tsv, test.tsv ("source<TAB>target", one line per reference,
a source's references on consecutive lines) and export.json (the resolved
experiment and whether sources and targets are characters or space-separated
words). Everything comes from there, so the twin runs the recipe qkv runs:

- the model: qkv's Seq2Seq layer for layer (Seq2Seq below), an LSTM encoder
  (bidirectional or not) with Luong general attention and input feeding, or
  none (optionally peeky), source reversal by the model if it asks, dropout
  where qkv drops;
- Adam (lr, betas, eps), the schedule (constant, step, cosine; linear warmup
  in front) with qkv's formulas, gradient norm clipping, batch size, steps;
- every train.eval_every steps, greedy decoding (batched) of the first
  train.eval_samples valid sources, scored as qkv scores them: a prediction is
  right if it equals any of its references (exact_match; wer / ser = 1 -
  exact_match); it stops at train.target when the config sets one.

What it cannot mirror (GRU, Bahdanau, several layers, other scores and
optimizers, beam search) it refuses by name. With --test it then decodes the
whole test split. Prints one JSON line:
{"peer": "torch", "name": ..., "threads": N, "steps": S, "train_seconds": T,
 "valid": {...}, "target_step": S or null (with a target), "test": {...}};
train_seconds counts training and periodic evaluation, not data loading,
model construction or the test.
"""
import argparse
import json
import math
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


def group_references(pairs):
    """[(source, [references])]: consecutive lines of one source are one example."""
    out = []
    for s, t in pairs:
        if out and out[-1][0] == s:
            out[-1][1].append(t)
        else:
            out.append((s, [t]))
    return out


class TokenVocab:
    """Specials first, then the sorted tokens (qkv's Vocab); tokens are characters or words."""

    def __init__(self, texts, level):
        self.split = list if level == "chars" else str.split
        toks = sorted({t for x in texts for t in self.split(x)})
        self.itos = ["<pad>", "<s>", "</s>", "<unk>"] + toks
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def encode(self, text):
        return [self.stoi.get(t, UNK) for t in self.split(text)]


def pad_batch(seqs, prefix=(), suffix=()):
    seqs = [list(prefix) + s + list(suffix) for s in seqs]
    n = max(len(s) for s in seqs)
    out = torch.full((len(seqs), n), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s)
    return out, torch.tensor([len(s) for s in seqs])


class Seq2Seq(nn.Module):
    """qkv's Seq2Seq (nn/seq2seq.h) with an LSTM: a source embedding and an LSTM
    encoder (lengths respected, bidirectional or not), the final states of the
    directions bridged to the decoder (h = tanh(W_h [h_f; h_b]), c = W_c [c_f; c_b]),
    an LSTMCell decoder. Luong: fed [embedding; h~_{t-1}] (input feeding), the
    general score h . (W k), h~ = tanh(W_c [context; h]), logits = out(h~).
    None: fed the embedding (and the encoder's final h when peeky), logits = out(h).
    Dropout p, in training only, where qkv drops: both embeddings, the encoder
    outputs the attention reads, and the output layer's input (not the fed h~)."""

    def __init__(self, src_vocab, tgt_vocab, E, H, bidirectional=True, attention="luong",
                 input_feeding=True, peeky=False, dropout=0.0):
        super().__init__()
        K = H * (2 if bidirectional else 1)  # encoder output (key) size
        self.H, self.luong, self.feeding, self.peeky = H, attention == "luong", input_feeding, peeky
        self.p = dropout
        self.src_emb = nn.Embedding(src_vocab, E, padding_idx=PAD)
        self.enc = nn.LSTM(E, H, batch_first=True, bidirectional=bidirectional)
        self.bridge_h = nn.Linear(K, H)
        self.bridge_c = nn.Linear(K, H)
        self.tgt_emb = nn.Embedding(tgt_vocab, E, padding_idx=PAD)
        inputs = E + (H if self.luong and input_feeding else 0) + (K if peeky else 0)
        self.cell = nn.LSTMCell(inputs, H)
        if self.luong:
            self.W = nn.Linear(K, H, bias=False)  # general score: h . (W k)
            self.combine = nn.Linear(K + H, H, bias=False)
        self.out = nn.Linear(H, tgt_vocab)

    def drop(self, x):
        return nn.functional.dropout(x, self.p, self.training)

    def encode(self, src, src_len):
        packed = pack_padded_sequence(self.drop(self.src_emb(src)), src_len, batch_first=True,
                                      enforce_sorted=False)
        out, (h, c) = self.enc(packed)
        enc, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h_last = torch.cat(list(h), 1)  # [B,K] the directions' final states
        c_last = torch.cat(list(c), 1)
        enc = self.drop(enc)  # what the attention reads
        mem = {"enc": enc, "summary": h_last}
        if self.luong:
            mem["keys"] = self.W(enc)  # [B,S,H]
            mem["mask"] = torch.arange(src.shape[1])[None, :] >= src_len[:, None]  # [B,S]
        h0 = torch.tanh(self.bridge_h(h_last))
        feed = torch.zeros(src.shape[0], self.H)
        return mem, (h0, self.bridge_c(c_last), feed)

    def step(self, tok, state, mem):
        h, c, feed = state
        x = [self.drop(self.tgt_emb(tok))]
        if self.luong and self.feeding:
            x.append(feed)
        if self.peeky:
            x.append(mem["summary"])
        h, c = self.cell(torch.cat(x, 1), (h, c))
        if not self.luong:
            return self.out(self.drop(h)), (h, c, feed)
        scores = torch.bmm(mem["keys"], h.unsqueeze(2)).squeeze(2)
        a = torch.softmax(scores.masked_fill(mem["mask"], float("-inf")), 1)
        ctx = torch.bmm(a.unsqueeze(1), mem["enc"]).squeeze(1)
        ht = torch.tanh(self.combine(torch.cat([ctx, h], 1)))
        return self.out(self.drop(ht)), (h, c, ht)

    def loss(self, src, src_len, tgt_in, tgt_out):
        mem, state = self.encode(src, src_len)
        logits = []
        for t in range(tgt_in.shape[1]):
            lg, state = self.step(tgt_in[:, t], state, mem)
            logits.append(lg)
        logits = torch.stack(logits, 1)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           tgt_out.reshape(-1), ignore_index=PAD)

    @torch.no_grad()
    def greedy(self, src, src_len, max_len):
        mem, state = self.encode(src, src_len)
        tok = torch.full((src.shape[0],), BOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        out = []
        for _ in range(max_len):
            lg, state = self.step(tok, state, mem)
            tok = lg.argmax(1)
            out.append(tok)
            done |= tok == EOS
            if bool(done.all()):
                break
        return torch.stack(out, 1)


def exact_match(model, examples, sv, tv, max_len, reverse):
    """examples: [(source, [references])]; right if the greedy output equals any reference."""
    model.eval()
    hits = 0
    for i in range(0, len(examples), 256):
        chunk = examples[i:i + 256]
        src, src_len = pad_batch([encode_source(sv, s, reverse) for s, _ in chunk])
        pred = model.greedy(src, src_len, max_len).tolist()
        for row, (_, refs) in zip(pred, chunk):
            row = row[:row.index(EOS)] if EOS in row else row
            hits += any(row == tv.encode(r) for r in refs)
    model.train()
    return hits / max(1, len(examples))


def training_batches(src_all, tgt_all, batch, g):
    """Endless training batches (src, src_len, tgt_in, tgt_out) of `batch` examples:
    a permutation drawn from g, walked in order, redrawn when fewer than a batch remain."""
    order, pos = torch.randperm(len(src_all), generator=g).tolist(), 0
    while True:
        if pos + batch > len(order):
            order, pos = torch.randperm(len(src_all), generator=g).tolist(), 0
        idx = order[pos:pos + batch]
        pos += batch
        src, src_len = pad_batch([src_all[i] for i in idx])
        tgt_in, _ = pad_batch([tgt_all[i] for i in idx], prefix=(BOS,))
        tgt_out, _ = pad_batch([tgt_all[i] for i in idx], suffix=(EOS,))
        yield src, src_len, tgt_in, tgt_out


def encode_source(sv, s, reverse):
    ids = sv.encode(s)
    return ids[::-1] if reverse else ids


def lr_factor(sched, lr, steps):
    """qkv's Schedule::lr_at(t) / lr (nn/schedule.cpp), for torch's LambdaLR."""
    kind, W = sched["type"], sched.get("warmup", 0)

    def base(t):
        if kind == "constant":
            return 1.0
        if kind == "step":
            return sched["gamma"] ** (t // sched["step_size"])
        t_max = sched.get("t_max", 0) or max(1, steps - W)
        eta = sched.get("eta_min", 0.0)
        return (eta + (lr - eta) * (1 + math.cos(math.pi * t / t_max)) / 2) / lr

    start = sched.get("warmup_start", 0.0)
    return lambda t: base(0) * (start + (1 - start) * t / W) if t < W else base(t - W)


def refuse(what):
    sys.exit(f"seq2seq_torch.py: the twin does not do {what}")


def check_recipe(cfg):
    m, t = cfg["model"], cfg["train"]
    att = m.get("attention", {}).get("type", "none")
    if m["type"] != "seq2seq":
        refuse(f"model type '{m['type']}'")
    if m.get("rnn", "lstm") != "lstm" or m.get("layers", 1) != 1:
        refuse(f"rnn '{m.get('rnn')}' with {m.get('layers')} layers (one LSTM layer only)")
    if att not in ("luong", "none"):
        refuse(f"attention '{att}'")
    if att == "luong" and m["attention"].get("score", "general") != "general":
        refuse(f"the score '{m['attention']['score']}' (general only)")
    opt = t["optimizer"]
    if opt["type"] != "adam" or opt.get("weight_decay", 0) != 0:
        refuse(f"optimizer '{opt['type']}' with weight decay {opt.get('weight_decay')}")
    if t.get("schedule", {"type": "constant"})["type"] not in ("constant", "step", "cosine"):
        refuse(f"schedule '{t['schedule']['type']}'")
    if t.get("beam", 1) != 1:
        refuse("beam search (greedy only)")
    if t.get("steps", 0) <= 0:
        refuse("epochs (set train.steps)")
    return att


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a directory written by qkv data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--test", action="store_true", help="decode the test split after training")
    a = ap.parse_args()
    with open(os.path.join(a.data, "export.json"), encoding="utf-8") as f:
        export = json.load(f)
    cfg = export["config"]
    att = check_recipe(cfg)
    m, t = cfg["model"], cfg["train"]
    reverse = m.get("reverse_source", False)

    torch.set_num_threads(a.threads)
    torch.manual_seed(cfg["seed"])
    train = read_tsv(os.path.join(a.data, "train.tsv"))
    valid = group_references(read_tsv(os.path.join(a.data, "valid.tsv")))
    test = group_references(read_tsv(os.path.join(a.data, "test.tsv")))
    if t.get("eval_samples", 0) > 0:
        valid_eval = valid[:t["eval_samples"]]
    else:
        valid_eval = valid
    sv = TokenVocab([s for s, _ in train], export["source_tokens"])
    tv = TokenVocab([y for _, y in train], export["target_tokens"])
    max_len = max(len(tv.encode(r)) for _, refs in valid + test for r in refs)
    max_len = max(max_len, max(len(tv.encode(y)) for _, y in train)) + 1  # eos
    model = Seq2Seq(len(sv.itos), len(tv.itos), m["embed"], m["hidden"], m.get("bidirectional"),
                    att, m.get("attention", {}).get("input_feeding", True), m.get("peeky", False),
                    m.get("dropout", 0.0))
    opt_cfg, steps = t["optimizer"], t["steps"]
    lr = opt_cfg["lr"]
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(opt_cfg.get("beta1", 0.9),
                           opt_cfg.get("beta2", 0.999)), eps=opt_cfg.get("eps", 1e-8))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_factor(t.get("schedule", {"type": "constant"}), lr, steps))
    target = t.get("target", {}).get("metric", "")
    if target not in ("", "exact_match", "wer", "ser"):
        refuse(f"the target metric '{target}' (exact_match, wer or ser)")
    src_all = [encode_source(sv, s, reverse) for s, _ in train]
    tgt_all = [tv.encode(y) for _, y in train]
    g = torch.Generator().manual_seed(cfg["seed"])
    batch, clip, every = t["batch_size"], t.get("clip_norm", 0.0), t.get("eval_every", 0)

    def valid_metrics():
        em = exact_match(model, valid_eval, sv, tv, max_len, reverse)
        return {"exact_match": em, "wer": 1 - em, "ser": 1 - em}

    t0 = time.perf_counter()
    step, target_step, metrics = 0, None, {}
    batches = training_batches(src_all, tgt_all, batch, g)
    while step < steps:
        src, src_len, tgt_in, tgt_out = next(batches)
        loss = model.loss(src, src_len, tgt_in, tgt_out)
        opt.zero_grad()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        step += 1
        if (every > 0 and step % every == 0) or step == steps:
            metrics = valid_metrics()
            print(f"step {step} loss {loss.item():.4f} valid exact_match "
                  f"{metrics['exact_match']:.4f} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            if target:
                v, want = metrics[target], t["target"]["value"]
                if (v >= want) if target == "exact_match" else (v <= want):
                    target_step = step
                    break
    seconds = time.perf_counter() - t0
    out = {"peer": "torch", "name": cfg["name"], "threads": a.threads, "steps": step,
           "train_seconds": round(seconds, 3), "valid": metrics}
    if target:
        out["target_step"] = target_step
    if a.test:
        em = exact_match(model, test, sv, tv, max_len, reverse)
        out["test"] = {"exact_match": em, "error_rate": 1 - em, "examples": len(test)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
