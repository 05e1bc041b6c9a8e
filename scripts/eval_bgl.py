#!/usr/bin/env python3
"""Anomaly detection quality on BGL: per-line precision, recall and F1.

The first token of each BGL line is the label ("-" = normal). It is stripped here, before the
engine sees the line; the engine gets the rest, in file (chronological) order, exactly as a
pipeline would. Every line is scored, warm-up included.

Modes
  streaming  turbolog scan, no state: learns from the stream alone.
  learned    turbolog learn --state on the *normal* lines of the other file, then
             turbolog scan --state (--frozen, and learning) on this file.

Baselines (same label-stripped lines, a plain "mask every token with a digit" template):
  level         flag lines whose level word is FATAL/FAILURE/SEVERE/ERROR
  first-seen    streaming: flag the first line of every template
  novelty       learned: flag every line whose template was not among the training normal lines
                (the datasets README baseline)

With the sentence model prepared (scripts/fetch-model.sh), every turbolog row is run a second
time with --model ("+model"), side by side.

usage: scripts/eval_bgl.py [--bin target/release/turbolog] [--data ../shared/datasets] [--model DIR | --no-model]
"""
import os, re, subprocess, tempfile

import turbolog_jsonl

DIGIT_TOKEN = re.compile(r"\S*\d\S*")
SEVERE = {"FATAL", "FAILURE", "SEVERE", "ERROR"}


def load(path):
    labels, lines = [], []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for raw in f:
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            label, _, rest = raw.partition(" ")
            labels.append(label != "-")
            lines.append(rest)
    return labels, lines


def prf(labels, flags):
    tp = sum(1 for l, f in zip(labels, flags) if l and f)
    fp = sum(1 for l, f in zip(labels, flags) if not l and f)
    fn = sum(1 for l, f in zip(labels, flags) if l and not f)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


def simple_template(line):
    toks = line.split()
    return DIGIT_TOKEN.sub("<*>", " ".join(toks[5:]))  # BGL header: 5 fields before type/component


def scan(binary, path, extra):
    return [row["anomaly"] for row in turbolog_jsonl.scan(binary, path, extra)]


def main():
    args = turbolog_jsonl.arguments(__doc__, "../shared/datasets")
    files = {"BGL_2k": os.path.join(args.data, "loghub/BGL/BGL_2k.log"),
             "BGL_20k": os.path.join(args.data, "bgl/BGL_20k.log")}
    data = {k: load(v) for k, v in files.items()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stripped, normal = {}, {}
        for k, (labels, lines) in data.items():
            stripped[k] = os.path.join(tmp, k + ".log")
            normal[k] = os.path.join(tmp, k + ".normal.log")
            with open(stripped[k], "w") as f:
                f.writelines(l + "\n" for l in lines)
            with open(normal[k], "w") as f:
                f.writelines(l + "\n" for l, lab in zip(lines, labels) if not lab)
        for k, (labels, lines) in data.items():
            n_anom = sum(labels)
            tag = f"{k} ({len(labels)} lines, {n_anom} anomalous)"
            for suffix, emb in turbolog_jsonl.embedders(args):
                flags = scan(args.bin, stripped[k], emb)
                assert len(flags) == len(labels), "one verdict per line"
                rows.append((tag, "streaming", "turbolog" + suffix, *prf(labels, flags)))
            tpls = [simple_template(l) for l in lines]
            seen, first = set(), []
            for t in tpls:
                first.append(t not in seen)
                seen.add(t)
            rows.append((tag, "streaming", "baseline first-seen", *prf(labels, first)))
            lvl = [any(w in SEVERE for w in l.split()[5:9]) for l in lines]
            rows.append((tag, "streaming", "baseline level", *prf(labels, lvl)))
            other = "BGL_2k" if k == "BGL_20k" else "BGL_20k"
            for suffix, emb in turbolog_jsonl.embedders(args):
                state = os.path.join(tmp, "state-" + other + suffix.strip())
                if not os.path.exists(state):
                    subprocess.run([args.bin, "learn", *emb, "--state", state, normal[other]], check=True, capture_output=True)
                frozen = scan(args.bin, stripped[k], [*emb, "--state", state, "--frozen"])
                rows.append((tag, f"learned on {other} normal", "turbolog --frozen" + suffix, *prf(labels, frozen)))
                state_copy = state + "-learning-" + k
                subprocess.run(["cp", "-r", state, state_copy], check=True)
                learning = scan(args.bin, stripped[k], [*emb, "--state", state_copy])
                rows.append((tag, f"learned on {other} normal", "turbolog (keeps learning)" + suffix, *prf(labels, learning)))
            known = {simple_template(l) for l, lab in zip(data[other][1], data[other][0]) if not lab}
            novelty = [t not in known for t in tpls]
            rows.append((tag, f"learned on {other} normal", "baseline novelty", *prf(labels, novelty)))
    print(f"{'data':<36} {'mode':<26} {'detector':<32} {'P':>6} {'R':>6} {'F1':>6}")
    for tag, mode, det, p, r, f in rows:
        print(f"{tag:<36} {mode:<26} {det:<32} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
    explain(*data["BGL_20k"])
    hdfs(args)


def hdfs(args):
    """Per-line detection judged per block (a block is flagged when any of its lines is), next to
    the WARN-level baseline: the sessions issue builds on this."""
    import csv
    base = os.path.join(args.data, "hdfs")
    log = os.path.join(base, "HDFS_dev.log")
    if not os.path.exists(log):
        print(f"\nHDFS: {log} not found, skipped")
        return
    with open(os.path.join(base, "HDFS_dev.block_labels.csv"), newline="") as f:
        labels = {r["BlockId"]: r["Label"] == "Anomaly" for r in csv.DictReader(f)}
    block = re.compile(r"blk_-?\d+")
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f if l.strip()]
    rows = turbolog_jsonl.scan(args.bin, log)
    assert len(rows) == len(lines), "one verdict per line"
    flagged, warned = set(), set()
    for line, row in zip(lines, rows):
        ids = set(block.findall(line))
        if row["anomaly"]:
            flagged |= ids
        if re.search(r"\b(WARN|ERROR|FATAL)\b", line):
            warned |= ids
    ids = sorted(labels)
    truth = [labels[b] for b in ids]
    print(f"\nHDFS_dev ({len(lines)} lines, {len(ids)} blocks, {sum(truth)} anomalous), block-level, streaming:")
    for name, hits in (("turbolog (per line)", flagged), ("baseline level (WARN+)", warned)):
        p, r, f1 = prf(truth, [b in hits for b in ids])
        print(f"  {name:<26} P {p:.3f}  R {r:.3f}  F1 {f1:.3f}")


def explain(labels, lines):
    """What makes streaming detection hard on this log, computed from the labels."""
    fatal = [lab for lab, l in zip(labels, lines) if "FATAL" in l.split()[5:9]]
    print(f"\nBGL_20k: {len(fatal)} FATAL lines, {sum(fatal)} anomalous and {len(fatal) - sum(fatal)} normal")
    first, count = {}, {}
    for i, (lab, l) in enumerate(zip(labels, lines)):
        if not lab:
            t = simple_template(l)
            first.setdefault(t, i)
            count[t] = count.get(t, 0) + 1
    late = [t for t in first if first[t] > len(lines) // 2]
    if late:
        t = max(late, key=count.get)
        print(f"largest normal template first seen in the second half: {count[t]} lines from line {first[t] + 1}: {t[:70]}")


if __name__ == "__main__":
    main()
