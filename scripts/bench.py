#!/usr/bin/env python3
"""Throughput of `turbolog scan` on >= 1 M real lines, next to Drain3 in the same run.

Builds a file of the 13 loghub systems repeated to N lines (default 1,000,000), then times
  turbolog scan --format jsonl (every line scored and written) and the text report,
  the same on N lines of generated names and N lines of random words (peak RSS per process,
  at two template caps: memory must follow the cap, not the input),
  the engine alone (cargo bench --bench engine), and
  Drain3 0.9.11 (pip, in a venv under .cache/) mining the Content column of the same systems,
and prints lines/s, the ratio, and turbolog's peak RSS.
Drain3 is slow: it is timed on the first --drain-lines lines (default 100,000) and its rate
compared per line. --no-drain skips it.

usage: scripts/bench.py [--lines N] [--drain-lines N] [--no-drain]
"""
import argparse, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "../shared/datasets/loghub")
CACHE = os.path.join(ROOT, ".cache")


def build_input(n, path):
    lines = []
    for name in sorted(os.listdir(DATA)):
        p = os.path.join(DATA, name, f"{name}_2k.log")
        if os.path.exists(p):
            with open(p, "rb") as f:
                lines.extend(f.read().splitlines())
    with open(path, "wb") as out:
        for i in range(n):
            out.write(lines[i % len(lines)] + b"\n")
    return lines


def measured(cmd, stdout, stderr=None):
    """(wall seconds, CPU seconds, peak RSS MiB) of one child process, measured alone."""
    t = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr)
    _, _, ru = os.wait4(child.pid, 0)
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def adversarial_input(kind, n, path):
    """Lines made to defeat a template miner (the hardening issue's reports), deterministic:
    names: one message shape whose only differences are generated names without digits;
    words: random words from a 5,000-word vocabulary, no two lines alike."""
    import random, string
    r = random.Random(7)
    letters = string.ascii_lowercase
    word = lambda k: "".join(r.choice(letters) for _ in range(k))
    vocab = [word(r.randint(3, 9)) for _ in range(5000)]
    with open(path, "w") as out:
        for _ in range(n):
            if kind == "names":
                out.write(f"2026-11-24T10:00:00Z INFO session {word(10)} opened for client {word(10)}\n")
            else:
                out.write(" ".join(r.choice(vocab) for _ in range(r.randint(3, 12))) + "\n")


def adversarial(binary, n):
    print(f"adversarial inputs: {n} lines each, turbolog scan --format jsonl, CPU-seconds of the process alone")
    with open(os.devnull, "wb") as null:
        for kind in ("names", "words"):
            path = os.path.join(CACHE, f"bench-{kind}-{n}.log")
            if not os.path.exists(path):
                adversarial_input(kind, n, path)
            for cap in (20000, 2000):
                wall, cpu, rss = measured([binary, "scan", "--format", "jsonl", "--max-templates", str(cap), path], null)
                print(f"  {kind:<6} max_templates {cap:>6}: {n / cpu:>10.0f} lines per CPU-second  peak RSS {rss:5.0f} MiB")
        # a baseline of many templates: each new one is compared with the normal ones (bounded)
        import tempfile
        words = os.path.join(CACHE, f"bench-words-{n}.log")
        k = min(n, 20000)
        first = os.path.join(CACHE, f"bench-words-first-{k}.log")
        with open(words, "rb") as src, open(first, "wb") as dst:
            for _, line in zip(range(k), src):
                dst.write(line)
        with tempfile.TemporaryDirectory() as state:
            wall, cpu, rss = measured([binary, "learn", "--state", state, first], null, null)
        print(f"  learn {k} distinct word lines (as many templates, all normal): {cpu:.2f} CPU-seconds, peak RSS {rss:.0f} MiB")


def contents():
    import csv
    out = []
    for name in sorted(os.listdir(DATA)):
        p = os.path.join(DATA, name, f"{name}_2k.log_structured.csv")
        if os.path.exists(p):
            with open(p, newline="", encoding="utf-8", errors="replace") as f:
                out.extend(r["Content"].replace("\n", " ").encode() for r in csv.DictReader(f))
    return out


def drain3_rate(lines, n):
    venv = os.path.join(CACHE, "drain3-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "drain3==0.9.11"], check=True)
    src = os.path.join(CACHE, "drain3-input.txt")
    with open(src, "wb") as f:
        for i in range(n):
            f.write(lines[i % len(lines)] + b"\n")
    code = (
        "import sys,time,logging\n"
        "logging.disable(logging.CRITICAL)\n"
        "from drain3 import TemplateMiner\n"
        "from drain3.template_miner_config import TemplateMinerConfig\n"
        "c=TemplateMinerConfig(); c.profiling_enabled=False\n"
        "m=TemplateMiner(config=c)\n"
        "ls=open(sys.argv[1],encoding='utf-8',errors='replace').read().splitlines()\n"
        "t=time.perf_counter()\n"
        "for l in ls: m.add_log_message(l)\n"
        "print(len(ls)/(time.perf_counter()-t))\n"
    )
    out = subprocess.run([py, "-c", code, src], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--drain-lines", type=int, default=100_000)
    ap.add_argument("--no-drain", action="store_true")
    args = ap.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target/release/turbolog")
    path = os.path.join(CACHE, "bench-input.log")
    lines = build_input(args.lines, path)
    print(f"input: {args.lines} lines ({os.path.getsize(path)/1e6:.1f} MB) of the 13 loghub systems repeated")
    with open(os.devnull, "wb") as null:
        # peak RSS of each scan process alone (RUSAGE_CHILDREN would include the cargo build)
        wall, cpu, rss = measured([binary, "scan", "--format", "jsonl", path], null)
        scan_rate = args.lines / wall
        print(f"turbolog scan --format jsonl: {wall:6.2f} s  {scan_rate:>10.0f} lines/s  peak RSS {rss:.0f} MiB")
        wall, cpu, rss = measured([binary, "scan", path], null)
        print(f"turbolog scan (text report):  {wall:6.2f} s  {args.lines / wall:>10.0f} lines/s  peak RSS {rss:.0f} MiB")
    adversarial(binary, args.lines)
    env = dict(os.environ, TURBOLOG_BENCH_LINES=str(args.lines))
    out = subprocess.run(["cargo", "bench", "-q", "--bench", "engine"], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    print(out, end="")
    rate = lambda tag: next((float(l.split("lines/s")[0].split()[-1]) for l in out.splitlines() if tag in l), None)
    unique, repeated = rate("first sight"), rate("second pass")
    if not args.no_drain:
        d = drain3_rate(contents(), args.drain_lines)
        print(f"Drain3 0.9.11 (Python, content mode, {args.drain_lines} lines of the same systems): {d:>10.0f} lines/s")
        print(f"ratio turbolog scan (end to end) / Drain3:        {scan_rate / d:>6.1f}x")
        if unique and repeated:
            print(f"ratio engine, unique lines first sight / Drain3:  {unique / d:>6.1f}x")
            print(f"ratio engine, repeated lines / Drain3:            {repeated / d:>6.1f}x")


if __name__ == "__main__":
    main()
