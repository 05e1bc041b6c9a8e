#!/usr/bin/env python3
"""Level and message agreement with Filebeat's expected output, per format.

Ground truth: the `*-expected.json` files of ../shared/datasets/realworld (elastic/beats test
fixtures): for each event, the `log.offset` of its first line, `log.level` and `message` as
Filebeat's ingest pipeline for that format extracts them. turbolog sees the raw lines only (via
`examples/messages.rs`, which hands each line to the engine's message extractor exactly as `scan`
does: a JSON record's message key and level field, else the raw line) and never the JSON.

Per event, on its first line:
  level  - both levels in the same bucket: critical, error, warn, info (info, notice, and no level
           at all), debug (debug, trace, verbose). Formats whose level is not a severity map to the
           severity they mean (PostgreSQL LOG/LOCATION/DETAIL/HINT/STATEMENT, MySQL Note/System,
           and Filebeat's one-letter MongoDB/santa levels, to info). Events without a level are
           not counted.
  exact  - turbolog's message is Filebeat's first message line (whitespace runs collapsed);
  kept   - Filebeat's first message line is inside turbolog's message: nothing of the message was
           eaten, though some header may be left in.
Events Filebeat itself could not parse (an `error.message` field) are skipped and counted; where
Filebeat's message is the whole raw line (its pipeline set no header aside) the message is not
compared (the level still is) and the event is counted under "whole line".

usage: scripts/eval_messages.py [--bin target/release/examples/messages] [--data ../shared/datasets/realworld]
       [--misses N]   print up to N disagreements per format
"""
import argparse, glob, json, os, re, subprocess, sys
from collections import defaultdict

BUCKETS = {
    "critical": ("fatal", "crit", "critical", "alert", "emerg", "emergency", "panic", "f", "c"),
    "error": ("error", "err", "severe", "e"),
    "warn": ("warn", "warning", "w"),
    "info": ("info", "information", "notice", "log", "location", "detail", "hint", "statement", "context",
             "query", "note", "system", "i", "n"),
    "debug": ("debug", "trace", "verbose", "d", "t", "v"),
}
BUCKET_OF = {w: b for b, words in BUCKETS.items() for w in words}


def bucket(level):
    """Filebeat's or turbolog's level word -> bucket; None (no level) is info."""
    if level is None:
        return "info"
    w = str(level).strip().lower()
    if w not in BUCKET_OF:
        raise SystemExit(f"level {level!r} has no bucket: add it to BUCKETS")
    return BUCKET_OF[w]


def norm(s):
    return re.sub(r"\s+", " ", s or "").strip()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(here, "..", "target", "release", "examples", "messages"))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "datasets", "realworld"))
    ap.add_argument("--misses", type=int, default=0)
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        raise SystemExit(f"{a.bin} is missing: build it with `cargo build --release --example messages`")

    per = defaultdict(lambda: defaultdict(int))
    misses = defaultdict(list)
    for exp_path in sorted(glob.glob(os.path.join(a.data, "*", "*-expected.json"))):
        fmt = os.path.basename(os.path.dirname(exp_path))
        log_path = exp_path[: -len("-expected.json")]
        raw = open(log_path, "rb").read()
        starts = [0] + [i + 1 for i, b in enumerate(raw) if b == 0x0A]
        line_at = {off: n for n, off in enumerate(starts)}
        out = subprocess.run([a.bin], input=raw, capture_output=True, check=True).stdout
        got = [json.loads(l) for l in out.decode().splitlines()]
        for ev in json.load(open(exp_path)):
            n = line_at.get(ev.get("log.offset"))
            if n is None or n >= len(got):
                per[fmt]["no_line"] += 1
                continue
            if "error.message" in ev:
                per[fmt]["skipped"] += 1
                continue
            mine = got[n]
            line = raw[starts[n]:].split(b"\n", 1)[0].decode("utf-8", "replace")
            if ev.get("log.level") is not None:
                per[fmt]["levels"] += 1
                ok = bucket(ev["log.level"]) == bucket(mine["level"])
                per[fmt]["level_ok"] += ok
                if not ok:
                    misses[fmt].append(f"level {ev['log.level']!r} got {mine['level']!r}: {line[:150]}")
            if ev.get("message") and norm(str(ev["message"])) == norm(line) and len(line.split()) > 3:
                # Filebeat kept the whole line: its pipeline set no header aside to compare with
                per[fmt]["unparsed"] += 1
            elif ev.get("message"):
                want = norm(str(ev["message"]).split("\n", 1)[0])
                have = norm(mine["message"])
                per[fmt]["messages"] += 1
                per[fmt]["exact"] += have == want
                per[fmt]["kept"] += want in have
                if want not in have:
                    misses[fmt].append(f"message {want[:80]!r} got {have[:80]!r}")

    def ratio(x, n):
        return f"{x / n:.3f} ({x}/{n})" if n else "-"

    print(f"{'format':26s} {'level':>18s} {'message exact':>18s} {'message kept':>18s}  skipped  whole line")
    tot = defaultdict(int)
    for fmt in sorted(per):
        p = per[fmt]
        for k, v in p.items():
            tot[k] += v
        print(f"{fmt:26s} {ratio(p['level_ok'], p['levels']):>18s} {ratio(p['exact'], p['messages']):>18s} "
              f"{ratio(p['kept'], p['messages']):>18s}  {p['skipped'] + p['no_line']:7d}  {p['unparsed']:10d}")
    print(f"{'overall':26s} {ratio(tot['level_ok'], tot['levels']):>18s} {ratio(tot['exact'], tot['messages']):>18s} "
          f"{ratio(tot['kept'], tot['messages']):>18s}  {tot['skipped'] + tot['no_line']:7d}  {tot['unparsed']:10d}")
    if a.misses:
        for fmt in sorted(misses):
            print(f"\n{fmt}:")
            for m in misses[fmt][: a.misses]:
                print("  " + m)


if __name__ == "__main__":
    main()
