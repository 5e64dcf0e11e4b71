#!/usr/bin/env bash
# Writes the seed corpora of fuzz/corpus/ (committed; rerun only to change
# them): small valid inputs of each reader, from which libFuzzer mutates.
# Needs python3 and a built build/qkv (the checkpoint seeds are real checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
mkdir -p $c/{safetensors,checkpoint,idx,config,module,text,predict,lexicon}

python3 - "$c" <<'PY'
import gzip, json, struct, sys
c = sys.argv[1]

def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

f32 = lambda *v: struct.pack("<%df" % len(v), *v)
i64 = lambda *v: struct.pack("<%dq" % len(v), *v)
i32 = lambda *v: struct.pack("<%di" % len(v), *v)
seeds = {
    "weights": safetensors({"weight": ("F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), "bias": ("F32", [2], f32(0.5, -0.5))}),
    "inputs": safetensors({"input": ("F32", [1, 2, 2], f32(1, 2, 3, 4)), "src": ("I64", [1, 3], i64(4, 5, 6)),
                           "lengths": ("I32", [1], i32(3))}, {"format": "pt"}),
    "empty": safetensors({}),
    "scalar": safetensors({"s": ("F32", [], f32(7)), "none": ("F32", [0, 4], b"")}),
}
for name, b in seeds.items():
    open(f"{c}/safetensors/{name}.safetensors", "wb").write(b)

def idx(dims):
    magic = struct.pack(">I", 0x800 | len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    n = 1
    for d in dims: n *= d
    return magic + bytes(i % 256 for i in range(n))
for name, b in {"images": idx([2, 3, 2]), "labels": idx([5])}.items():
    open(f"{c}/idx/{name}", "wb").write(b)
    open(f"{c}/idx/{name}.gz", "wb").write(gzip.compress(b, mtime=0))

modules = {
    "linear": {"type": "linear", "in_features": 4, "out_features": 3},
    "lstm": {"type": "lstm", "input_size": 4, "hidden_size": 8, "num_layers": 2, "bidirectional": True},
    "seq2seq": {"type": "seq2seq", "src_vocab": 20, "tgt_vocab": 12, "embed": 8, "hidden": 8,
                "attention": {"type": "luong", "score": "general"}},
    "transformer_lm": {"type": "transformer_lm", "vocab": 30, "d_model": 16, "nhead": 2,
                       "num_layers": 1, "dim_feedforward": 32, "max_len": 64},
    "transformer": {"type": "transformer", "src_vocab": 20, "tgt_vocab": 20, "d_model": 16, "nhead": 2,
                    "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 32},
    "cnn": {"type": "sequential", "layers": [
        {"type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "batch_norm2d", "num_features": 4}, {"type": "relu"},
        {"type": "cbam", "channels": 4, "ratio": 2}, {"type": "adaptive_avg_pool2d", "output_size": 1},
        {"type": "flatten"}, {"type": "linear", "in_features": 4, "out_features": 10}]},
    "attn_classifier": {"type": "attn_classifier", "vocab": 50, "embed": 8, "hidden": 8, "classes": 2},
    "multihead_attention": {"type": "multihead_attention", "embed_dim": 8, "num_heads": 2},
}
for name, m in modules.items():
    open(f"{c}/module/{name}.json", "w").write(json.dumps(m, indent=1))

open(f"{c}/text/lines.txt", "w").write("the quick brown fox\njumps over\n\nthe lazy dog. " * 3)
open(f"{c}/text/classes.txt", "wb").write(b"good film\nfine acting\n\0bad plot\nnot good\n\0meh\nso so\n")
open(f"{c}/text/utf8.txt", "w").write("Abbaugerät abaissâmes\nMär 3, 2021\n" * 4)
for i, s in enumerate(["27/09/94", "Tuesday, September 27, 1994", "12+34", "This program is ",
                       "not a good film", "Mär 3, 2021", ""]):
    open(f"{c}/predict/{i}.txt", "w").write(s)
open(f"{c}/lexicon/cmudict", "w").write('("aardvark" nil (((aa r d) 1) ((v aa r k) 1)))\n("a" dt (((ah) 0)))\n')
open(f"{c}/lexicon/pairs", "w").write("abc\tcba\nhello\tolleh\nabc\tcab\n")
open(f"{c}/lexicon/words", "w").write("Abbaugerät\nabaissâmes\nStraße\n")
open(f"{c}/lexicon/latin1", "wb").write("olé\nsmörgås\n".encode("latin-1"))
PY

for f in dates_luong dates_transformer lm_transformer fmnist_cnn polarity_attn; do
  cp "configs/$f.json" "$c/config/$f.json"
done
printf '{"data": {"name": "dates"}, "model": {"type": "seq2seq"}}\0train.steps=5\0model.hidden=16\0train.optimizer={"type": "sgd", "lr": 0.1}' \
  >"$c/config/with_sets"

# Real checkpoints of fuzz_checkpoint.cpp's config: with the optimizer and the training state.
tmp=$(mktemp -d)
python3 - "$tmp/c.json" <<'PY'
import json, re, sys
src = open("fuzz/fuzz_checkpoint.cpp").read()
cfg = re.search(r'kConfig = R"\((.*?)\)";', src, re.S).group(1)
open(sys.argv[1], "w").write(cfg)
PY
build/qkv train "$tmp/c.json" --out "$tmp/run" >/dev/null 2>&1
cp "$tmp/run/model.safetensors" "$c/checkpoint/model.safetensors"
rm -rf "$tmp"
du -sh "$c"
