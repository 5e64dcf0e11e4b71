#!/usr/bin/env python3
"""Runs `qkv bench` and its peers (OpenBLAS, PyTorch) on the same cases,
interleaved in one run so that they share machine conditions, and prints one
Markdown table per suite.

usage: python3 bench/peers/compare.py [--qkv PATH] [--qkv-before PATH] [--threads 1 2]
           [--suites gemm softmax] [--rounds R] [--json-out FILE] [--timeout S]

--qkv-before runs a second qkv binary (an earlier build) as one more peer,
named "before", so a change is measured before and after in the same run.

For each round, thread count and suite, qkv runs first, then the peers (the
order rotates between rounds). Every tool gets the same thread count through
its flag and through QKV_THREADS, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS.
With --rounds R the whole sequence repeats R times and the best (lowest)
median per tool, case and thread count is kept: the machine is noisy.

Ratios are qkv speed / peer speed (> 1: qkv is faster). Peers that are not
installed are skipped with a note. Exit status: 0, or 1 if qkv itself fails
(missing binary, non-zero exit, timeout, unparsable output); 2 for bad
arguments. Standard library only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SUITES = ("gemm", "softmax", "layernorm", "lstm", "attention", "transformer", "conv", "cbam")
GEMM_ONLY_PEERS = {"openblas"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Tool:
    """One benchmark program: how to invoke it, and whether it still runs."""

    def __init__(self, name, argv_fn, suites=SUITES, required=False):
        self.name = name
        self.argv_fn = argv_fn  # (suite, threads) -> argv
        self.suites = suites
        self.required = required
        self.skipped = None  # reason, once the tool is found missing
        self.info = set()  # distinct stderr info lines (versions, core types)


def run_tool(tool, suite, threads, rnd, timeout, notes):
    """Runs one tool on one suite; returns (rows, ok)."""
    argv = tool.argv_fn(suite, threads)
    env = dict(os.environ)
    for var in ("QKV_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    t0 = time.monotonic()
    timed_out = False
    try:
        p = subprocess.run(argv, env=env, cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout or None)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except FileNotFoundError as e:
        out, err, rc = "", str(e), 127
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        out, err, rc, timed_out = text(e.stdout), text(e.stderr), None, True
    secs = time.monotonic() - t0

    rows, bad_lines = [], 0
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
            row["ms"] = float(row["ms"])
            row["gflops"] = float(row.get("gflops") or 0)
            row["gbps"] = float(row.get("gbps") or 0)
            row["threads"] = int(row["threads"])
            row["suite"], row["case"] = str(row["suite"]), str(row["case"])
        except (ValueError, KeyError, TypeError, AttributeError):
            bad_lines += 1
            continue
        if row["suite"] != suite:
            continue
        row["tool"] = tool.name
        row["round"] = rnd
        rows.append(row)
    err_lines = [ln for ln in err.splitlines() if ln.strip()]

    ok = rc == 0 and bad_lines == 0
    status = "ok" if ok else ("timed out" if timed_out else f"exit {rc}")
    log(f"  round {rnd} threads {threads} {suite:<9} {tool.name:<8} {len(rows)} rows, "
        f"{secs:6.1f} s, {status}")
    if tool.name != "qkv" and rc in (2, 127):
        # The peers exit 2 when their library is missing (or on bad arguments);
        # 127: the interpreter or shell itself is missing.
        tool.skipped = err_lines[-1] if err_lines else "exit 2"
        notes.append(f"{tool.name}: skipped: {tool.skipped}")
        return rows, True
    for ln in err_lines:
        if ok and ln.startswith(("openblas_gemm: core ", "torch_bench: torch ")):
            tool.info.add(re.sub(r"[,;] \d+ thread\(s\)", "", ln))
        if ln.startswith("torch_bench: warning: ") and ln not in notes:
            notes.append(ln)
    if not ok:
        what = f"timed out after {timeout} s" if timed_out else f"exited with status {rc}"
        if bad_lines:
            what += f", {bad_lines} unparsable JSON line(s)"
        detail = " | ".join(err_lines[-3:])
        notes.append(f"{tool.name} {suite} --threads {threads} (round {rnd}) {what}; "
                     f"kept {len(rows)} row(s)" + (f": {detail}" if detail else ""))
    return rows, ok


def best_rows(rows):
    """(tool, suite, case, threads) -> the row with the lowest median ms."""
    best = {}
    for r in rows:
        key = (r["tool"], r["suite"], r["case"], r["threads"])
        if r["case"] == "fma_peak":  # a rate, not a time: keep the highest
            if key not in best or r["gflops"] > best[key]["gflops"]:
                best[key] = r
        elif key not in best or r["ms"] < best[key]["ms"]:
            best[key] = r
    return best


def fmt(x, digits=1):
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}" if digits <= 1 else f"{x:.{digits - 1}f}"
    return f"{x:.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "–"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def ratio(a, b):
    return a / b if a and b else None


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}x"


def table(header, rows, left=1):
    """A Markdown table; the first `left` columns are left-aligned, the rest right."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(" --- " if i < left else " ---: " for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def case_order(best, suite, tools):
    """Cases of a suite in the tools' own order, merged: a case that only some
    tool has goes right after the case that precedes it in that tool's run."""
    order = []
    for t in tools:
        cases = [k[2] for k in best if k[0] == t and k[1] == suite and k[2] != "fma_peak"]
        prev = None
        for case in cases:
            if case not in order:
                order.insert(order.index(prev) + 1 if prev is not None else 0, case)
            prev = case
    return order


def gemm_tables(best, threads_list, peers):
    get = best.get
    cases = case_order(best, "gemm", ["qkv"] + peers)
    out = []
    peaks = [f"{fmt(get(('qkv', 'gemm', 'fma_peak', t), {}).get('gflops'))} GFLOP/s at "
             f"{t} thread{'s' if t > 1 else ''}" for t in threads_list
             if ("qkv", "gemm", "fma_peak", t) in best]
    if peaks:
        out.append("qkv's measured FMA peak: " + ", ".join(peaks) + ".\n")
    header = ["case", "threads", "qkv ms", "qkv GFLOP/s", "qkv % of peak"]
    header += [f"{p} GFLOP/s" for p in peers] + [f"qkv/{p}" for p in peers]
    body = []
    for case in cases:
        for t in threads_list:
            q = get(("qkv", "gemm", case, t))
            ps = [get((p, "gemm", case, t)) for p in peers]
            if q is None and not any(ps):
                continue
            # Against the best FMA peak over all rounds: a row's own
            # peak_fraction uses the peak of its process, which a contended
            # moment can make absurd.
            peak = get(("qkv", "gemm", "fma_peak", t), {}).get("gflops")
            pf = (q["gflops"] / peak if peak and q["gflops"] else q.get("peak_fraction")) if q else None
            row = [case, str(t), fmt_ms(q and q["ms"]), fmt(q and q["gflops"]),
                   "–" if pf is None else f"{100 * pf:.0f}%"]
            row += [fmt(p and p["gflops"]) for p in ps]
            row += [fmt_ratio(ratio(p and p["ms"], q and q["ms"])) for p in ps]
            body.append(row)
    out.append(table(header, body, left=2))

    base = 1 if 1 in threads_list else None
    multi = [t for t in threads_list if t != 1]
    if base and multi:
        header = ["case"]
        for t in multi:
            header += [f"qkv {t}T/1T"] + [f"{p} {t}T/1T" for p in peers]
        body = []
        for case in cases:
            row, any_val = [case], False
            for t in multi:
                for tool in ["qkv"] + peers:
                    one, many = get((tool, "gemm", case, 1)), get((tool, "gemm", case, t))
                    s = ratio(one and one["ms"], many and many["ms"])
                    any_val |= s is not None
                    row.append(fmt_ratio(s))
            if any_val:
                body.append(row)
        if body:
            out.append("\nThread speedup (time at 1 thread / time at T threads):\n")
            out.append(table(header, body))
    return "\n".join(out)


def copy_case_for(case, cases):
    copies = [c for c in cases if c.split()[0] == "copy"]
    size = case.split()[-1]
    same = [c for c in copies if c.split()[-1] == size]
    return (same or copies or [None])[0]


def rowwise_table(best, suite, threads_list, peers):
    get = best.get
    peers = [p for p in peers if p not in GEMM_ONLY_PEERS]
    cases = case_order(best, suite, ["qkv"] + peers)
    header = ["case", "threads", "qkv ms", "qkv GB/s", "qkv vs copy"]
    header += [f"{p} GB/s" for p in peers] + [f"{p} vs copy" for p in peers]
    header += [f"qkv/{p}" for p in peers]
    body = []

    def vs_copy(tool, case, t):
        copy = copy_case_for(case, cases)
        if copy is None or copy == case:
            return None
        r, c = get((tool, suite, case, t)), get((tool, suite, copy, t))
        if not r or not c:
            return None
        if r.get("gbps") and c.get("gbps"):
            return r["gbps"] / c["gbps"]
        return c["ms"] / r["ms"]

    for case in cases:
        for t in threads_list:
            q = get(("qkv", suite, case, t))
            ps = [get((p, suite, case, t)) for p in peers]
            if q is None and not any(ps):
                continue
            row = [case, str(t), fmt_ms(q and q["ms"]), fmt(q and q.get("gbps") or None),
                   fmt_ratio(vs_copy("qkv", case, t))]
            row += [fmt(p and p.get("gbps") or None) for p in ps]
            row += [fmt_ratio(vs_copy(p, case, t)) for p in peers]
            row += [fmt_ratio(ratio(p and p["ms"], q and q["ms"])) for p in ps]
            body.append(row)
    return table(header, body, left=2)


def compute_table(best, suite, threads_list, peers):
    """Compute-bound suites other than gemm (lstm): times, GFLOP/s and ratios."""
    get = best.get
    cases = case_order(best, suite, ["qkv"] + peers)
    header = ["case", "threads", "qkv ms", "qkv GFLOP/s"]
    header += [f"{p} ms" for p in peers] + [f"qkv/{p}" for p in peers]
    body = []
    for case in cases:
        for t in threads_list:
            q = get(("qkv", suite, case, t))
            ps = [get((p, suite, case, t)) for p in peers]
            if q is None and not any(ps):
                continue
            row = [case, str(t), fmt_ms(q and q["ms"]), fmt(q and q["gflops"] or None)]
            row += [fmt_ms(p and p["ms"]) for p in ps]
            row += [fmt_ratio(ratio(p and p["ms"], q and q["ms"])) for p in ps]
            body.append(row)
    return table(header, body, left=2)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(
        description="Compare `qkv bench` with OpenBLAS and PyTorch on the same cases.",
        epilog="example: python3 bench/peers/compare.py --threads 1 2 --rounds 3")
    ap.add_argument("--qkv", default="build/qkv",
                    help="the qkv binary (default: build/qkv; relative to the current "
                         "directory, else to the repository root)")
    ap.add_argument("--qkv-before", metavar="PATH",
                    help="an earlier qkv binary, run as the peer 'before' (same cases, "
                         "same run: a change's before and after side by side)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], metavar="N",
                    help="thread counts (default: 1 2)")
    ap.add_argument("--suites", nargs="+", default=["gemm", "softmax"], choices=SUITES,
                    metavar="SUITE", help="suites: " + " ".join(SUITES) + " (default: gemm softmax)")
    ap.add_argument("--rounds", type=int, default=1, metavar="R",
                    help="repeat the interleaved sequence R times, keep the best median "
                         "(default: 1)")
    ap.add_argument("--json-out", metavar="FILE",
                    help="write every raw row (JSON lines, with 'tool' and 'round') to FILE")
    ap.add_argument("--timeout", type=float, default=0, metavar="S",
                    help="per tool and suite invocation, in seconds (default: 0, none)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for the torch peer (default: this one; the peer "
                         "retries with the system python3 when torch is missing)")
    ap.add_argument("--no-openblas", action="store_true", help="skip the OpenBLAS peer")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    args = ap.parse_args()
    if args.rounds < 1 or any(t < 1 for t in args.threads) or args.timeout < 0:
        ap.error("--rounds and --threads need counts >= 1, --timeout a value >= 0")
    threads_list = list(dict.fromkeys(args.threads))
    suites = list(dict.fromkeys(args.suites))

    qkv = Path(args.qkv)
    if not qkv.exists() and not qkv.is_absolute() and (REPO / qkv).exists():
        qkv = REPO / qkv
    if not qkv.exists() and shutil.which(args.qkv):
        qkv = Path(shutil.which(args.qkv))
    if not qkv.exists():
        log(f"compare: qkv binary '{args.qkv}' not found (build it: meson setup build && "
            f"ninja -C build, or pass --qkv PATH)")
        return 1
    qkv = qkv.resolve()

    tools = [Tool("qkv", lambda s, t: [str(qkv), "bench", s, "--json", "--threads", str(t)],
                  required=True)]
    notes = []
    if args.qkv_before:
        before = Path(args.qkv_before).resolve()
        if not before.exists():
            log(f"compare: --qkv-before binary '{args.qkv_before}' not found")
            return 2
        tools.append(Tool("before", lambda s, t: [str(before), "bench", s, "--json",
                                                  "--threads", str(t)]))
    if args.no_openblas:
        notes.append("openblas: skipped (--no-openblas)")
    elif "gemm" in suites:
        tools.append(Tool("openblas", lambda s, t: ["bash", str(HERE / "openblas.sh"),
                                                    "--threads", str(t)], suites=("gemm",)))
    if args.no_torch:
        notes.append("torch: skipped (--no-torch)")
    else:
        tools.append(Tool("torch", lambda s, t: [args.python, str(HERE / "torch_bench.py"), s,
                                                 "--json", "--threads", str(t)]))
    peers = [t.name for t in tools if t.name != "qkv"]

    all_rows, qkv_ok = [], True
    log(f"compare: {args.rounds} round(s), threads {threads_list}, suites {suites}, "
        f"tools {[t.name for t in tools]}")
    for rnd in range(1, args.rounds + 1):
        for t in threads_list:
            for s in suites:
                # qkv first in round 1; then rotate the order so that no tool
                # always runs right after another one.
                k = (rnd - 1) % len(tools)
                for tool in tools[k:] + tools[:k]:
                    if tool.skipped or s not in tool.suites:
                        continue
                    rows, ok = run_tool(tool, s, t, rnd, args.timeout, notes)
                    all_rows += rows
                    if tool.required and not ok:
                        qkv_ok = False

    if args.json_out:
        with open(args.json_out, "w") as f:
            for r in all_rows:
                f.write(json.dumps(r) + "\n")
        log(f"compare: {len(all_rows)} raw rows written to {args.json_out}")

    best = best_rows(all_rows)
    # Peers found missing get no columns (a note says why).
    peers = [p for p in peers if any(r["tool"] == p for r in all_rows)
             or not next(t for t in tools if t.name == p).skipped]
    print(f"# qkv vs peers\n\nCPU: {cpu_name()}, {os.cpu_count()} logical CPUs; "
          f"best median of {args.rounds} round(s). Ratios are qkv speed / peer speed "
          f"(> 1: qkv faster).\n")
    for tool in tools:
        for ln in sorted(tool.info):
            print(f"- {ln}")
    if any(t.name in ("openblas", "torch") and not t.skipped for t in tools):
        core = os.environ.get("OPENBLAS_CORETYPE")
        origin = "set by the caller" if core else "the peer scripts' default"
        print(f"- OPENBLAS_CORETYPE={core or 'SkylakeX'} ({origin}; Debian's torch.mm "
              f"calls the same system OpenBLAS)")
    print()
    for s in suites:
        print(f"## {s}\n")
        if not any(k[1] == s for k in best):
            print("(no results: the suite printed no cases)\n")
            continue
        if s == "gemm":
            print(gemm_tables(best, threads_list, peers))
        elif s in ("lstm", "attention"):
            print(compute_table(best, s, threads_list, peers))
        else:
            print(rowwise_table(best, s, threads_list, peers))
        have = {k[2] for k in best if k[0] == "qkv" and k[1] == s}
        missing = [c for c in case_order(best, s, ["qkv"] + peers) if c not in have]
        if missing:
            print(f"\nCases without a qkv result: {', '.join(missing)}.")
        print()
    # A T-thread run much slower than the 1-thread run of the same case is
    # almost always the machine (a contended vCPU), not the code under test.
    if 1 in threads_list:
        for tool in ["qkv"] + peers:
            for t in threads_list:
                if t == 1:
                    continue
                slow = [k[2] for k, r in best.items()
                        if k[0] == tool and k[3] == t and k[2] != "fma_peak"
                        and (tool, k[1], k[2], 1) in best
                        and r["ms"] > 1.5 * best[(tool, k[1], k[2], 1)]["ms"]]
                if slow:
                    notes.append(f"{tool}: {len(slow)} case(s) over 1.5x slower at {t} threads "
                                 f"than at 1 ({', '.join(slow[:4])}{', ...' if len(slow) > 4 else ''})"
                                 f": the machine was probably contended; rerun with --rounds 3")
    if notes:
        print("Notes:\n")
        for n in dict.fromkeys(notes):
            print(f"- {n}")
    if not qkv_ok:
        log("compare: qkv failed (see the notes); exit status 1")
    return 0 if qkv_ok else 1


if __name__ == "__main__":
    sys.exit(main())
