#!/usr/bin/env bash
# Volume reduction, measured: what `turbolog filter --reduce` sends on against plain `filter`
# (records, bytes, anomalies kept, CPU per record) on HDFS_dev as NDJSON, the 13 loghub systems
# repeated and the realworld formats as one stream; then the reduce step's own cost per record
# (benches/reduce.rs). One release build of the binary and the bench.
# Usage: scripts/bench-reduce.sh   (needs ../shared beside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
json=$(cargo build --release --bin turbolog --bench reduce --message-format=json 2>/dev/null)
bench=$(printf '%s\n' "$json" | python3 -c '
import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "reduce" and m.get("executable"):
        print(m["executable"])')
nice -n 10 python3 scripts/bench_reduce.py target/release/turbolog ../shared
echo
nice -n 10 "$bench"
