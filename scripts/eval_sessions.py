#!/usr/bin/env python3
"""Session detection on HDFS: block precision, recall and F1 (labels per block).

Labels are read here, after; the engine sees the lines in file order, nothing else. The key
is `blk_-?[0-9]+`. A block is flagged by a session verdict; the per-line detector flags a block
when any of its lines is flagged; the WARN baseline when any of its lines is WARN or worse.

  live     the whole file, no baseline: profiles learned from the stream itself.
  learned  blocks split in two halves by first appearance; `learn` on the lines of the normal
           blocks of the first half, then `scan` the lines of the second half (frozen, and
           still learning). Scores are over the second half's blocks.

HDFS blocks live for hours (a block is written, then deleted much later). Each mode is run with
the default settings (`--session-close learned`, a day of quiet the cap: a session closes when it
is over as learned: its ending event, or quiet longer than nearly every session was after the
event it is at) and with sessions closing at the end of input (`--session-idle` larger than the
file); live also by idleness alone (`--session-close idle`: 30 s, as before, and a day).

usage: scripts/eval_sessions.py [--bin target/release/turbolog] [--data ../shared/datasets]
"""
import csv, json, os, re, subprocess, tempfile

import turbolog_jsonl

KEY = r"blk_-?[0-9]+"
BLOCK = re.compile(KEY)
SEVERE = re.compile(r"\b(WARN|ERROR|FATAL)\b")


def prf(truth, flagged):
    tp = sum(1 for b, a in truth.items() if a and b in flagged)
    fp = sum(1 for b, a in truth.items() if not a and b in flagged)
    fn = sum(1 for b, a in truth.items() if a and b not in flagged)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run(binary, path, extra):
    out = subprocess.run([binary, "scan", "--format", "jsonl", "--session-key", KEY, *extra, path], capture_output=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"turbolog scan failed: {out.stderr.decode()}")
    rows = [json.loads(l) for l in out.stdout.splitlines()]
    lines = [r for r in rows if "line" in r]
    sessions = {r["session"]: r["reason"] for r in rows if "session" in r and r["anomaly"]}
    return lines, sessions


def blocks_of(lines):
    return [set(BLOCK.findall(l)) for l in lines]


def main():
    args = turbolog_jsonl.arguments(__doc__, "../shared/datasets")
    base = os.path.join(args.data, "hdfs")
    with open(os.path.join(base, "HDFS_dev.block_labels.csv"), newline="") as f:
        labels = {r["BlockId"]: r["Label"] == "Anomaly" for r in csv.DictReader(f)}
    with open(os.path.join(base, "HDFS_dev.log"), encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f if l.strip()]
    every = str(len(lines) + 1)
    rows = []

    false_alarms = {}  # mode -> reason (percentages cut) -> count

    def score(tag, mode, text, truth, extra):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "in.log")
            with open(path, "w") as f:
                f.writelines(l + "\n" for l in text)
            verdicts, sessions = run(args.bin, path, extra)
        line_flags = set()
        for bs, v in zip(blocks_of(text), verdicts):
            if v["anomaly"]:
                line_flags |= bs
        rows.append((tag, mode, "sessions", *prf(truth, sessions)))
        reasons = false_alarms.setdefault(f"{tag}, {mode}", {})
        for b, why in sessions.items():
            if b in truth and not truth[b]:
                why = re.sub(r"\d+(\.\d+)?%", "N%", why or "")
                reasons[why] = reasons.get(why, 0) + 1
        return line_flags

    n = len(labels)
    tag = f"HDFS_dev ({len(lines)} lines, {n} blocks, {sum(labels.values())} anomalous)"
    DEFAULT = []
    END = ["--session-close", "idle", "--session-idle", every]
    score(tag, "live, default (learned close, cap 1 d)", lines, labels, DEFAULT)
    line_flags = score(tag, "live, idle = end of input", lines, labels, END)
    rows.append((tag, "live", "per-line detector", *prf(labels, line_flags)))
    warned = set()
    for bs, l in zip(blocks_of(lines), lines):
        if SEVERE.search(l):
            warned |= bs
    rows.append((tag, "live", "baseline WARN+", *prf(labels, warned)))
    score(tag, "live, --session-close idle (30 s)", lines, labels, ["--session-close", "idle"])
    score(tag, "live, --session-close idle --session-idle 1d", lines, labels, ["--session-close", "idle", "--session-idle", "1d"])

    # learned: split the blocks by first appearance
    order = []
    seen = set()
    for bs in blocks_of(lines):
        for b in sorted(bs):
            if b not in seen:
                seen.add(b)
                order.append(b)
    first = set(order[: len(order) // 2])
    second = {b: labels[b] for b in order[len(order) // 2:]}
    train = [l for l, bs in zip(lines, blocks_of(lines)) if bs and all(b in first and not labels[b] for b in bs)]
    test = [l for l, bs in zip(lines, blocks_of(lines)) if bs and all(b in second for b in bs)]
    tag2 = f"second half ({len(test)} lines, {len(second)} blocks, {sum(second.values())} anomalous)"
    for how, idle in [("default", DEFAULT), ("idle = end", END)]:
        with tempfile.TemporaryDirectory() as tmp:
            train_path = os.path.join(tmp, "train.log")
            with open(train_path, "w") as f:
                f.writelines(l + "\n" for l in train)
            state = os.path.join(tmp, "state")
            subprocess.run([args.bin, "learn", "--session-key", KEY, *idle, "--state", state, train_path], check=True, capture_output=True)
            subprocess.run(["cp", "-r", state, state + "-learning"], check=True)
            score(tag2, f"learned on first-half normal, frozen, {how}", test, second, [*idle, "--state", state, "--frozen"])
            score(tag2, f"learned, keeps learning, {how}", test, second, [*idle, "--state", state + "-learning"])
        score(tag2, f"live on the second half alone, {how}", test, second, idle)

    print(f"{'data':<55} {'mode':<50} {'detector':<20} {'P':>6} {'R':>6} {'F1':>6}")
    for tag, mode, det, p, r, f1 in rows:
        print(f"{tag:<55} {mode:<50} {det:<20} {p:>6.3f} {r:>6.3f} {f1:>6.3f}")
    print()
    print("false alarms (normal blocks flagged) by reason, default settings:")
    for run_name, reasons in false_alarms.items():
        if "idle" in run_name:
            continue
        print(f"  {run_name}: {sum(reasons.values())}")
        for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"    {n:>4}  {why[:150]}")


if __name__ == "__main__":
    main()
