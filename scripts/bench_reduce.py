#!/usr/bin/env python3
"""What `turbolog filter --reduce` sends on, against plain `filter`, on real logs.

Usage: scripts/bench_reduce.py TURBOLOG_BIN [SHARED_DIR]   (scripts/bench-reduce.sh builds and calls it)

Inputs: HDFS_dev as NDJSON ({"log": line}), each of the 13 loghub systems repeated 10 times
(text lines), and the 76 real files of datasets/realworld/ (42 formats) one after another as one
stream. For each: records and bytes out against in, with and without --reduce; anomalies kept
(every record plain filter flags must come out of --reduce byte for byte: checked, not assumed);
per template passed + suppressed = seen (checked); CPU (user + sys, best of 3) per record.
"""

import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

REPEAT = int(os.environ.get("BENCH_REPEAT", "10"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def run(bin_, args, path):
    """(stdout bytes, best CPU seconds of RUNS runs) of `turbolog filter ARGS < path`."""
    best, out = None, None
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(path, "rb") as f:
            p = subprocess.run([bin_, "filter", *args], stdin=f, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = cpu if best is None else min(best, cpu)
        out = p.stdout
    return out, best


def parse(line):
    """A record, or {} for a line passed through untouched (malformed JSON: not ours to count)."""
    try:
        v = json.loads(line)
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def check(plain, reduced):
    """(records out, summaries, anomalies in plain, anomalies kept); raises when counts are off."""
    plain_lines = plain.decode().splitlines()
    passed, summaries = [], []
    for line in reduced.decode().splitlines():
        v = parse(line)
        (summaries if v.get("turbolog_summary") is True else passed).append((line, v))
    plain_anomalies = [l for l in plain_lines if parse(l).get("anomaly") is True]
    kept = collections.Counter(l for l, v in passed if v.get("anomaly") is True)
    missing = collections.Counter(plain_anomalies) - kept
    seen = collections.Counter(parse(l).get("template_id") for l in plain_lines)
    counted = collections.Counter(v.get("template_id") for _, v in passed)
    for _, s in summaries:
        if s["passed"] + s["suppressed"] != s["seen"]:
            raise SystemExit(f"summary does not add up: {s}")
        counted[s["template_id"]] += s["suppressed"]
    if counted != seen:
        raise SystemExit("passed + suppressed != seen for some template")
    return len(passed) + len(summaries), len(summaries), len(plain_anomalies), len(plain_anomalies) - sum(missing.values())


def row(bin_, name, path, records):
    size = os.path.getsize(path)
    plain, cpu_plain = run(bin_, [], path)
    reduced, cpu_reduced = run(bin_, ["--reduce"], path)
    out_records, summaries, anomalies, kept = check(plain, reduced)
    ns = lambda cpu: cpu / records * 1e9
    print(
        f"{name:<22} {records:>8} {out_records:>8} {100 * out_records / records:>6.1f}% "
        f"{size:>10} {len(plain):>10} {len(reduced):>9} {100 * len(reduced) / size:>6.1f}% "
        f"{summaries:>6} {kept:>5}/{anomalies:<5} {ns(cpu_plain):>7.0f} {ns(cpu_reduced):>7.0f}"
    )
    return records, out_records, size, len(plain), len(reduced), anomalies, kept


def header(title):
    print(title)
    print(
        f"{'input':<22} {'rec in':>8} {'rec out':>8} {'':>7} {'bytes in':>10} {'plain out':>10} {'reduced':>9} {'of in':>7} "
        f"{'summ.':>6} {'anomalies':>11} {'ns/rec':>7} {'reduce':>7}"
    )


def main():
    tmp = tempfile.mkdtemp(prefix="bench-reduce-")
    try:
        run_all(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(tmp):
    bin_ = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
    data = os.path.join(shared, "datasets")
    print(f"turbolog filter vs filter --reduce (reduce_keep 5, reduce_sample 0, --window 10); CPU best of {RUNS}, user+sys per input record")
    print("rec out / bytes: what goes downstream with --reduce (summaries included); anomalies: flagged by plain filter / present byte for byte after --reduce")
    print()

    hdfs = os.path.join(tmp, "HDFS_dev.ndjson")
    n = 0
    with open(os.path.join(data, "hdfs", "HDFS_dev.log"), encoding="utf-8", errors="replace") as src, open(hdfs, "w") as dst:
        for line in src:
            dst.write(json.dumps({"log": line.rstrip("\r\n")}) + "\n")
            n += 1
    header("HDFS_dev as NDJSON")
    r = row(bin_, "HDFS_dev.ndjson", hdfs, n)
    hdfs_share = 100 * r[4] / r[2]
    print()

    header(f"the 13 loghub systems, each 2k file repeated {REPEAT} times (text lines)")
    totals = [0] * 7
    for name in sorted(os.listdir(os.path.join(data, "loghub"))):
        src = os.path.join(data, "loghub", name, f"{name}_2k.log")
        if not os.path.exists(src):
            continue
        with open(src, "rb") as f:
            text = f.read()
        if not text.endswith(b"\n"):
            text += b"\n"
        path = os.path.join(tmp, f"{name}.log")
        with open(path, "wb") as f:
            f.write(text * REPEAT)
        records = sum(1 for l in (text * REPEAT).split(b"\n") if l.strip())
        totals = [a + b for a, b in zip(totals, row(bin_, name, path, records))]
    rec, out, size, _, red, anomalies, kept = totals
    print(f"{'all 13':<22} {rec:>8} {out:>8} {100 * out / rec:>6.1f}% {size:>10} {'':>10} {red:>9} {100 * red / size:>6.1f}% {'':>6} {kept:>5}/{anomalies:<5}")
    print()

    header("datasets/realworld: its 76 real files (42 formats) one after another, as one stream")
    mixed = os.path.join(tmp, "realworld.log")
    with open(mixed, "wb") as dst:
        for root, _, files in sorted(os.walk(os.path.join(data, "realworld"))):
            for f in sorted(files):
                if f.endswith("-expected.json") or f in ("README.md",) or "LICENSE" in root or f.startswith("LICENSE"):
                    continue
                with open(os.path.join(root, f), "rb") as s:
                    b = s.read()
                dst.write(b if b.endswith(b"\n") else b + b"\n")
    with open(mixed, "rb") as f:
        records = sum(1 for l in f.read().split(b"\n") if l.strip())
    r2 = row(bin_, "realworld (mixed)", mixed, records)
    print()
    all_kept = r[6] == r[5] and kept == anomalies and r2[6] == r2[5]
    print(f"HDFS_dev as NDJSON: {hdfs_share:.1f}% of the input bytes downstream (target <= 10%): {'met' if hdfs_share <= 10 else 'NOT met'}")
    print(f"every anomaly kept on every input: {'yes' if all_kept else 'NO'}")


if __name__ == "__main__":
    main()
