#!/usr/bin/env python3
"""Template-mining quality on the 13 loghub systems: grouping accuracy (GA).

GA = fraction of lines whose predicted group has exactly the same member lines as their
ground-truth group (Zhu et al., ICSE-SEIP 2019). Two runs per system:
  raw     - the raw lines (CRLF and all), header detection on, as a pipeline sees them;
  content - the `Content` column of *_structured.csv, with --no-header.
The engine only ever sees the text; the ground-truth EventId is read here, after.

usage: scripts/eval_parsing.py [--bin target/release/turbolog] [--data ../shared/datasets/loghub]
"""
import csv, os, sys, tempfile

import turbolog_jsonl
from collections import defaultdict

DRAIN_PUBLISHED = {"HDFS": .998, "Hadoop": .948, "Spark": .920, "Zookeeper": .967, "BGL": .963, "HPC": .887,
                   "Windows": .997, "Android": .911, "HealthApp": .780, "Apache": 1.0, "Proxifier": .527,
                   "OpenSSH": .788, "OpenStack": .733}


def grouping_accuracy(truth, pred):
    by_truth, by_pred = defaultdict(set), defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, pred)):
        by_truth[t].add(i)
        by_pred[p].add(i)
    correct = sum(len(m) for m in by_pred.values() if by_truth[truth[next(iter(m))]] == m)
    return correct / len(truth)


def worst_group(truth, pred, templates):
    """The largest ground-truth group that was not reproduced exactly, and what it became."""
    by_truth, by_pred = defaultdict(set), defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, pred)):
        by_truth[t].add(i)
        by_pred[p].add(i)
    wrong = [(len(m), t) for t, m in by_truth.items()
             if len({pred[i] for i in m}) > 1 or by_pred[pred[next(iter(m))]] != m]
    if not wrong:
        return None
    n, t = max(wrong)
    parts = defaultdict(int)
    for i in by_truth[t]:
        parts[pred[i]] += 1
    p = max(parts, key=parts.get)
    intruders = len(by_pred[p] - by_truth[t])
    how = f"split in {len(parts)}" if len(parts) > 1 else f"merged with {intruders} line(s) of other templates"
    return f"{n} lines of `{templates[t][:60]}` {how}"


def template_ids(binary, path, extra):
    return [row["template_id"] for row in turbolog_jsonl.scan(binary, path, extra)]


def main():
    args = turbolog_jsonl.arguments(__doc__, "../shared/datasets/loghub")
    systems = sorted(d for d in os.listdir(args.data) if os.path.isdir(os.path.join(args.data, d)))
    rows, worst = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in systems:
            raw = os.path.join(args.data, name, f"{name}_2k.log")
            with open(os.path.join(args.data, name, f"{name}_2k.log_structured.csv"), newline="", encoding="utf-8", errors="replace") as f:
                recs = list(csv.DictReader(f))
            truth = [r["EventId"] for r in recs]
            content = os.path.join(tmp, name + ".content")
            with open(content, "w", encoding="utf-8") as f:
                for r in recs:
                    f.write(r["Content"].replace("\n", " ") + "\n")
            pred_raw = template_ids(args.bin, raw, [])
            pred_content = template_ids(args.bin, content, ["--no-header"])
            if len(pred_raw) != len(truth) or len(pred_content) != len(truth):
                sys.exit(f"{name}: {len(truth)} truth lines but {len(pred_raw)} raw / {len(pred_content)} content verdicts")
            rows.append((name, grouping_accuracy(truth, pred_raw), grouping_accuracy(truth, pred_content),
                         len(set(pred_raw)), len(set(truth))))
            if rows[-1][2] < 0.9:
                worst[name] = worst_group(truth, pred_content, {r["EventId"]: r["EventTemplate"] for r in recs})
    print(f"{'system':<11} {'GA raw':>7} {'GA content':>10} {'templates':>9} {'truth':>6} {'Drain*':>7}")
    for name, r, c, n, t in rows:
        print(f"{name:<11} {r:>7.3f} {c:>10.3f} {n:>9} {t:>6} {DRAIN_PUBLISHED.get(name, float('nan')):>7.3f}")
    avg_r = sum(r[1] for r in rows) / len(rows)
    avg_c = sum(r[2] for r in rows) / len(rows)
    avg_d = sum(DRAIN_PUBLISHED.get(r[0], 0) for r in rows) / len(rows)
    print(f"{'average':<11} {avg_r:>7.3f} {avg_c:>10.3f} {'':>9} {'':>6} {avg_d:>7.3f}")
    print("* Drain as published (Zhu et al. 2019): Content column with hand-tuned per-dataset regexes.")
    for name, why in worst.items():
        print(f"{name} (content): largest group not reproduced: {why}")


if __name__ == "__main__":
    main()
