#!/usr/bin/env python3
"""PyTorch peer of `qkv bench`: times the same cases with the same method.

usage: python3 bench/peers/torch_bench.py [SUITE ...] [CASE ...] [--threads N] [--json]

Suites: gemm softmax layernorm (default: all). Any other positional argument
restricts the run to the cases of that name (e.g. 512x512x512 or
"softmax 4096x1024"). Output is always JSON, one object per line, with the
schema of `qkv bench --json` plus "peer":"torch"; --json is accepted for
symmetry with qkv. Method as qkv's: one warm-up call, then repeats until
>= 0.3 s and >= 5 repeats; the median is reported.

The torch version, its CPU capability (the ATen kernel set: AVX2, AVX512...)
and the BLAS core type go to stderr, and a warning when torch.mm is too slow
to be OpenBLAS (see blas_check). Exit 2: torch is not installed, or bad
arguments; exit 1: a result check failed.
"""
import importlib.util
import os
import sys

SUITES = ("gemm", "softmax", "layernorm", "lstm", "attention", "transformer", "conv", "cbam")
GEMM_CASES = ("128x128x128", "256x256x256", "512x512x512", "1024x1024x1024",
              "2048x2048x2048", "8192x2048x512", "64x1024x256", "4096x64x64")
ROWS, COLS = 4096, 1024
SOFTMAX_CASES = (f"softmax {ROWS}x{COLS}", f"log_softmax {ROWS}x{COLS}", f"copy {ROWS}x{COLS}")
LAYERNORM_CASES = (f"layernorm {ROWS}x{COLS}", f"copy {ROWS}x{COLS}")
MIN_SECONDS, MIN_REPEATS, MAX_REPEATS = 0.3, 5, 10000


def usage_exit(msg):
    print(f"torch_bench: {msg}", file=sys.stderr)
    print(__doc__.strip().splitlines()[2], file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    threads, suites, filters = None, [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(__doc__.strip())
            sys.exit(0)
        elif a == "--json":
            pass
        elif a == "--threads" or a.startswith("--threads="):
            if a == "--threads":
                if i + 1 >= len(argv):
                    usage_exit("--threads: missing value")
                i += 1
                v = argv[i]
            else:
                v = a.split("=", 1)[1]
            if not v.isdigit() or not 1 <= int(v) <= 1024:
                usage_exit(f"--threads: expected a count >= 1, got '{v}'")
            threads = int(v)
        elif a.startswith("--"):
            usage_exit(f"unknown option '{a}'")
        elif a in SUITES:
            suites.append(a)
        else:
            filters.append(a)
        i += 1
    if threads is None:  # the same fallback chain as qkv
        v = os.environ.get("QKV_THREADS") or os.environ.get("OMP_NUM_THREADS") or ""
        v = v.split(",")[0]
        threads = int(v) if v.isdigit() and int(v) >= 1 else (os.cpu_count() or 1)
    return threads, suites or list(SUITES), filters


THREADS, RUN_SUITES, FILTERS = parse_args(sys.argv[1:])

# A python3 from a version manager or venv may lack Debian's python3-torch,
# which lives in the system interpreter: retry there once, before touching
# the environment.
if importlib.util.find_spec("torch") is None:
    system_python = "/usr/bin/python3"
    if (os.environ.get("QKV_TORCH_BENCH_REEXEC") != "1" and os.path.exists(system_python)
            and os.path.realpath(sys.executable) != os.path.realpath(system_python)):
        os.environ["QKV_TORCH_BENCH_REEXEC"] = "1"
        print(f"torch_bench: no torch in {sys.executable}; retrying with {system_python}",
              file=sys.stderr, flush=True)
        os.execv(system_python, [system_python, os.path.abspath(__file__)] + sys.argv[1:])
    print("torch_bench: PyTorch not found; install it with: apt-get install python3-torch",
          file=sys.stderr)
    sys.exit(2)

# Thread counts must be in the environment before torch (and its OpenMP and
# BLAS) load: OMP_NUM_THREADS for ATen's OpenMP pool, OPENBLAS_NUM_THREADS for
# the system OpenBLAS that Debian's torch calls for torch.mm.
os.environ["OMP_NUM_THREADS"] = str(THREADS)
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
# Debian's torch calls the system OpenBLAS (0.3.21) for torch.mm, which
# misdetects some newer CPUs and falls back to AVX2 or SSE3 kernels;
# SkylakeX selects its AVX-512 kernels (as bench/peers/openblas.sh does).
# A value set by the caller is kept; "auto" leaves it to OpenBLAS's detection.
if os.environ.get("OPENBLAS_CORETYPE") == "auto":
    del os.environ["OPENBLAS_CORETYPE"]
elif not os.environ.get("OPENBLAS_CORETYPE"):
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"

# ATen's own vectorised kernels (softmax, layer_norm, copy) default to AVX2 in
# Debian's build; on an AVX-512 machine give the peer its widest kernels, so
# qkv is compared against PyTorch at its best. A value set by the caller is kept.
if not os.environ.get("ATEN_CPU_CAPABILITY") and "avx512f" in open("/proc/cpuinfo").read():
    os.environ["ATEN_CPU_CAPABILITY"] = "avx512"

import torch  # noqa: E402

import json  # noqa: E402
import time  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def cpu_capability():
    try:
        return torch.backends.cpu.get_cpu_capability()  # torch >= 2.0
    except AttributeError:
        pass
    for line in torch.__config__.show().splitlines():  # torch 1.x
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def median_ms(fn):
    """qkv's method: one warm-up, then >= MIN_REPEATS and >= MIN_SECONDS; the median."""
    fn()
    ms, spent = [], 0.0
    while (len(ms) < MIN_REPEATS or spent < MIN_SECONDS) and len(ms) < MAX_REPEATS:
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        ms.append(t * 1e3)
        spent += t
    ms.sort()
    return ms[len(ms) // 2]  # the upper median, as qkv


def report(suite, case, ms, gflops=0.0, gbps=0.0):
    row = {"suite": suite, "case": case, "threads": THREADS, "ms": round(ms, 6),
           "gflops": round(gflops, 4), "gbps": round(gbps, 4), "peer": "torch"}
    print(json.dumps(row, separators=(",", ":")), flush=True)


class CheckFailed(Exception):
    pass


def check(what, got, want, tol):
    err = ((got.double() - want).abs() / want.abs().clamp(min=1.0)).max().item()
    if not err <= tol:
        raise CheckFailed(f"{what}: relative error {err:.3g} exceeds {tol:.3g}")


def gemm_cases():
    g = torch.Generator().manual_seed(1234)
    for name in GEMM_CASES:
        if FILTERS and name not in FILTERS:
            continue
        M, N, K = (int(v) for v in name.split("x"))
        A = torch.rand(M, K, generator=g) * 2 - 1
        B = torch.rand(K, N, generator=g) * 2 - 1
        C = torch.empty(M, N)

        def run():
            torch.mm(A, B, out=C)

        run()
        rows = torch.arange(0, M, max(1, M // 8))
        check(f"gemm {name}", C[rows], A[rows].double() @ B.double(), 1e-5 * K ** 0.5 * 4)
        ms = median_ms(run)
        report("gemm", name, ms, gflops=2.0 * M * N * K / (ms * 1e6))


def rowwise_cases(suite, names):
    g = torch.Generator().manual_seed(4321)
    x = torch.randn(ROWS, COLS, generator=g)
    y = torch.empty_like(x)
    w = torch.rand(COLS, generator=g) + 0.5
    b = torch.randn(COLS, generator=g)
    bytes_moved = 2 * ROWS * COLS * 4  # read x, write y
    head = x[:16].double()
    for name in names:
        if FILTERS and name not in FILTERS:
            continue
        op = name.split()[0]
        if op == "softmax":
            # aten::_softmax.out: the fused, vectorised last-dim CPU kernel,
            # writing into a preallocated output.
            def run():
                torch._softmax(x, -1, False, out=y)
            want = torch.softmax(head, -1)
        elif op == "log_softmax":
            def run():
                torch._log_softmax(x, -1, False, out=y)
            want = torch.log_softmax(head, -1)
        elif op == "copy":
            def run():
                y.copy_(x)
            want = head
        elif op == "layernorm":
            # F.layer_norm, as a model calls it: it returns a new tensor on
            # each call (malloc hands back the block freed by the last one).
            out = {}

            def run():
                out["y"] = F.layer_norm(x, (COLS,), w, b, 1e-5)
            want = F.layer_norm(head, (COLS,), w.double(), b.double(), 1e-5)
        else:
            raise AssertionError(name)
        run()
        got = out["y"] if op == "layernorm" else y
        check(f"{suite} {name}", got[:16], want, 1e-5)
        ms = median_ms(run)
        report(suite, name, ms, gbps=bytes_moved / (ms * 1e6))


LSTM_SHAPES = [(64, 50, 128, 256), (32, 100, 256, 512)]  # B, T, I, H
LSTM_CASES = [f"B{B} T{T} I{I} H{H} {kind}" for (B, T, I, H) in LSTM_SHAPES
              for kind in ("fwd", "fwd+bwd")]


def lstm_cases():
    # torch.nn.LSTM, one layer, time-major, as qkv's bench: forward without
    # autograd, and forward + backward of sum(output * upstream) into every
    # weight (the input needs no gradient on either side).
    for (B, T, I, H) in LSTM_SHAPES:
        torch.manual_seed(11)
        lstm = torch.nn.LSTM(I, H)
        x = torch.rand(T, B, I) * 2 - 1
        up = torch.rand(T, B, H) * 2 - 1
        flops = 2.0 * T * B * 4 * H * (I + H)
        for kind in ("fwd", "fwd+bwd"):
            name = f"B{B} T{T} I{I} H{H} {kind}"
            if FILTERS and name not in FILTERS:
                continue
            if kind == "fwd":
                def run():
                    with torch.no_grad():
                        lstm(x)
            else:
                def run():
                    with torch.enable_grad():
                        out, _ = lstm(x)
                        out.backward(up)
                    lstm.zero_grad(set_to_none=True)
            run()
            ms = median_ms(run)
            report("lstm", name, ms, gflops=(flops if kind == "fwd" else 3 * flops) / (ms * 1e6))


ATT = dict(B=64, S=30, T=30, E=128, H=256, V=512)
ATT_DIMS = f"B{ATT['B']} S{ATT['S']} T{ATT['T']} H{ATT['H']}"
ATTENTION_CASES = [f"{k} {what} {ATT_DIMS}" for k in ("luong", "bahdanau")
                   for what in ("step", "teacher fwd+bwd")]


def transformer_peer():
    """bench/peers/torch_transformer.py: also holds the fused-SDPA cases of this suite."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return importlib.import_module("torch_transformer")


ATTENTION_CASES += transformer_peer().CASES["attention"]


class Seq2SeqAtt(torch.nn.Module):
    """The same model as qkv's Seq2Seq with attention: LSTM encoder, a tanh
    bridge to the decoder's initial state, an LSTMCell decoder; Luong (general
    score, input feeding, h~ = tanh(W_c [c; h])) or Bahdanau (additive score
    from the previous state, context fed to the cell and to the output)."""

    def __init__(self, kind, B, S, T, E, H, V):
        super().__init__()
        nn = torch.nn
        self.kind, self.H = kind, H
        self.src_emb, self.tgt_emb = nn.Embedding(V, E), nn.Embedding(V, E)
        self.enc = nn.LSTM(E, H, batch_first=True)
        self.bridge_h, self.bridge_c = nn.Linear(H, H), nn.Linear(H, H)
        self.cell = nn.LSTMCell(E + H, H)
        if kind == "luong":
            self.W = nn.Linear(H, H, bias=False)
            self.combine = nn.Linear(2 * H, H, bias=False)
            self.out = nn.Linear(H, V)
        else:
            self.W, self.U = nn.Linear(H, H, bias=False), nn.Linear(H, H, bias=False)
            self.v = nn.Linear(H, 1, bias=False)
            self.out = nn.Linear(2 * H, V)

    def encode(self, src, mask):
        enc, (h, c) = self.enc(self.src_emb(src))
        keys = self.W(enc) if self.kind == "luong" else self.U(enc)
        return enc, keys, torch.tanh(self.bridge_h(h[0])), self.bridge_c(c[0])

    def step(self, tok, h, c, feed, enc, keys, mask):
        x = self.tgt_emb(tok)
        if self.kind == "luong":
            h, c = self.cell(torch.cat([x, feed], 1), (h, c))
            a = torch.softmax((keys @ h.unsqueeze(2)).squeeze(2).masked_fill(mask, float("-inf")), 1)
            ctx = (a.unsqueeze(1) @ enc).squeeze(1)
            feed = torch.tanh(self.combine(torch.cat([ctx, h], 1)))
            return self.out(feed), h, c, feed
        e = self.v(torch.tanh(self.W(h).unsqueeze(1) + keys)).squeeze(2)
        a = torch.softmax(e.masked_fill(mask, float("-inf")), 1)
        ctx = (a.unsqueeze(1) @ enc).squeeze(1)
        h, c = self.cell(torch.cat([x, ctx], 1), (h, c))
        return self.out(torch.cat([h, ctx], 1)), h, c, feed


def attention_cases():
    B, S, T, E, H, V = (ATT[k] for k in ("B", "S", "T", "E", "H", "V"))
    for kind in ("luong", "bahdanau"):
        torch.manual_seed(5)
        m = Seq2SeqAtt(kind, B, S, T, E, H, V)
        src = torch.randint(3, V, (B, S))
        tgt_in, tgt_out = torch.randint(3, V, (B, T)), torch.randint(3, V, (B, T))
        lengths = torch.tensor([S - (b % 4) for b in range(B)])
        mask = torch.arange(S)[None, :] >= lengths[:, None]
        with torch.no_grad():
            enc, keys, h0, c0 = m.encode(src, mask)
        tok, zeros = torch.randint(3, V, (B,)), torch.zeros(B, H)
        name = f"{kind} step {ATT_DIMS}"
        if not FILTERS or name in FILTERS:
            def run_step():
                with torch.no_grad():
                    m.step(tok, zeros, zeros, zeros, enc, keys, mask)
            run_step()
            report("attention", name, median_ms(run_step))
        name = f"{kind} teacher fwd+bwd {ATT_DIMS}"
        if not FILTERS or name in FILTERS:
            def run_teacher():
                with torch.enable_grad():
                    enc, keys, h, c = m.encode(src, mask)
                    feed, logits = torch.zeros(B, H), []
                    for t in range(T):
                        lo, h, c, feed = m.step(tgt_in[:, t], h, c, feed, enc, keys, mask)
                        logits.append(lo)
                    loss = F.cross_entropy(torch.stack(logits, 1).reshape(B * T, V),
                                           tgt_out.reshape(-1))
                    loss.backward()
                m.zero_grad(set_to_none=True)
            run_teacher()
            report("attention", name, median_ms(run_teacher))
    transformer_peer().run("attention", sys.modules[__name__])


# Suites whose cases live in a module of their own beside this file. Each module
# has CASES {suite: (case names...)} and run(suite, tb), where tb is this module
# (tb.report, tb.median_ms, tb.check, tb.FILTERS, tb.CheckFailed).
EXTERNAL = {"transformer": "torch_transformer", "conv": "torch_vision", "cbam": "torch_vision"}


def external(suite):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return importlib.import_module(EXTERNAL[suite])


def blas_check():
    """Debian's torch calls whatever libblas.so.3 the system's alternatives
    select. Without libopenblas that is the reference BLAS, whose products run
    some 30x slower than OpenBLAS's (measured: 6 against 230 GFLOP/s at 512^3,
    one thread), and every ratio against torch would measure that. Warns (one
    line, which compare.py repeats in its notes) when the best of ten 256^3
    torch.mm calls runs under 20 GFLOP/s; any vectorised BLAS is several times
    faster. The best, not the mean: a mean over a few calls at two threads
    was once 16 GFLOP/s with OpenBLAS (a slow thread wake-up)."""
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    gflops = 2 * 256 ** 3 / best / 1e9
    if gflops < 20:
        print(f"torch_bench: warning: torch.mm runs at {gflops:.1f} GFLOP/s at 256^3: its BLAS "
              "(libblas.so.3) is probably the reference one; apt-get install libopenblas-dev",
              file=sys.stderr)


def main():
    torch.set_num_threads(THREADS)
    torch.set_grad_enabled(False)
    print(f"torch_bench: torch {torch.__version__}, CPU capability {cpu_capability()}, "
          f"{torch.get_num_threads()} thread(s), "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", file=sys.stderr)
    blas_check()
    known = set()
    for s in RUN_SUITES:
        if s in EXTERNAL:
            known.update(external(s).CASES[s])
        else:
            known.update({"gemm": GEMM_CASES, "softmax": SOFTMAX_CASES,
                          "layernorm": LAYERNORM_CASES, "lstm": LSTM_CASES,
                          "attention": ATTENTION_CASES}[s])
    unknown = [f for f in FILTERS if f not in known]
    if unknown:
        usage_exit(f"unknown suite or case {', '.join(repr(u) for u in unknown)} "
                   f"(suites: {' '.join(SUITES)})")
    try:
        for s in RUN_SUITES:
            if s == "gemm":
                gemm_cases()
            elif s == "softmax":
                rowwise_cases("softmax", SOFTMAX_CASES)
            elif s == "layernorm":
                rowwise_cases("layernorm", LAYERNORM_CASES)
            elif s == "lstm":
                lstm_cases()
            elif s == "attention":
                attention_cases()
            elif s in EXTERNAL:
                external(s).run(s, sys.modules[__name__])
    except CheckFailed as e:
        print(f"torch_bench: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
