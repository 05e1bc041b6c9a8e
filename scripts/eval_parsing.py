#!/usr/bin/env python3
"""Template-mining quality on the 13 loghub systems: grouping accuracy (GA).

GA = fraction of lines whose predicted group has exactly the same member lines as their
ground-truth group (Zhu et al., ICSE-SEIP 2019). Two runs per system:
  raw     - the raw lines (CRLF and all), header detection on, as a pipeline sees them;
  content - the `Content` column of *_structured.csv, with --no-header.
The engine only ever sees the text; the ground-truth EventId is read here, after.

usage: scripts/eval_parsing.py [--bin target/release/turbolog] [--data ../shared/datasets/loghub]
"""
import argparse, csv, os, sys, tempfile

import turbolog_jsonl
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def template_ids(binary, path, extra):
    return [row["template_id"] for row in turbolog_jsonl.scan(binary, path, extra)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=turbolog_jsonl.DEFAULT_BIN)
    ap.add_argument("--data", default=os.path.join(ROOT, "../shared/datasets/loghub"))
    args = ap.parse_args()
    turbolog_jsonl.require(args.bin)
    systems = sorted(d for d in os.listdir(args.data) if os.path.isdir(os.path.join(args.data, d)))
    rows = []
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
    print(f"{'system':<11} {'GA raw':>7} {'GA content':>10} {'templates':>9} {'truth':>6} {'Drain*':>7}")
    for name, r, c, n, t in rows:
        print(f"{name:<11} {r:>7.3f} {c:>10.3f} {n:>9} {t:>6} {DRAIN_PUBLISHED.get(name, float('nan')):>7.3f}")
    avg_r = sum(r[1] for r in rows) / len(rows)
    avg_c = sum(r[2] for r in rows) / len(rows)
    avg_d = sum(DRAIN_PUBLISHED.get(r[0], 0) for r in rows) / len(rows)
    print(f"{'average':<11} {avg_r:>7.3f} {avg_c:>10.3f} {'':>9} {'':>6} {avg_d:>7.3f}")
    print("* Drain as published (Zhu et al. 2019): Content column with hand-tuned per-dataset regexes.")


if __name__ == "__main__":
    main()
