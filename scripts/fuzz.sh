#!/usr/bin/env bash
# Coverage-guided fuzzing of every input path, seeded with the real files in ../shared.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60 seconds per target, all targets)
#   scripts/fuzz.sh --runs N [TARGET...]      (N executions per target, however long it takes)
#
# Needs the nightly toolchain beside stable and cargo-fuzz (`cargo install cargo-fuzz`); only
# fuzz/ builds on nightly. Runs the targets two at a time (one per core) and prints, per target:
# executions, executions per second, corpus size and findings. A finding is saved under
# fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ once fixed: cargo test replays
# every file there on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="-max_total_time=60"
if [ "${1:-}" = "--runs" ]; then
  limit="-runs=$2"
  shift 2
elif [ $# -gt 0 ]; then
  limit="-max_total_time=$1"
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(line ndjson records wal chunk templates_file)
shared=../shared

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
rustup toolchain list | grep -q nightly || { echo "no nightly toolchain: rustup toolchain install nightly" >&2; exit 2; }

# seeds: real lines, real Fluent Bit buffers, real state files
seed() { mkdir -p "fuzz/corpus/$1"; }
for t in line ndjson records wal chunk templates_file; do seed "$t"; done
if [ ! -f fuzz/corpus/.seeded ]; then
  # small inputs fuzz fastest: 40 two-line slices of each loghub system, as text and as JSON
  python3 - "$shared/datasets/loghub" <<'PY'
import json, os, random, sys
root = sys.argv[1]
r = random.Random(1)
for name in sorted(os.listdir(root)):
    p = os.path.join(root, name, f"{name}_2k.log")
    if not os.path.exists(p):
        continue
    lines = open(p, "rb").read().splitlines()
    for i in range(40):
        at = r.randrange(len(lines) - 1)
        pair = lines[at:at + 2]
        open(f"fuzz/corpus/line/{name}-{i}", "wb").write(b"\n".join(pair))
        text = [l.decode("utf-8", "replace") for l in pair]
        open(f"fuzz/corpus/ndjson/{name}-{i}", "w").write("\n".join(json.dumps({"log": t, "stream": "stdout"}) for t in text))
PY
  cargo run -q --release --example fuzz_seeds -- fuzz/corpus/.seeds "$shared"/fixtures/fluent-bit/*.msgpack
  cp fuzz/corpus/.seeds/records-*.msgpack fuzz/corpus/records/
  cp fuzz/corpus/.seeds/seed.wal fuzz/corpus/wal/
  cp fuzz/corpus/.seeds/seed.tvim fuzz/corpus/chunk/
  cp fuzz/corpus/.seeds/seed.tls fuzz/corpus/templates_file/
  touch fuzz/corpus/.seeded
fi
for t in "${targets[@]}"; do
  if [ -d "fuzz/regressions/$t" ]; then cp fuzz/regressions/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true; fi
done

(cd fuzz && cargo +nightly fuzz build -O -s none -a 2>&1 | tail -1) >&2
mkdir -p fuzz/logs
run() {
  local t=$1
  # no sanitizer: the code is Rust (the few unsafe blocks are bounds-checked first); debug
  # assertions on, so an arithmetic overflow is a finding
  (cd fuzz && cargo +nightly fuzz run -O -s none -a "$t" "corpus/$t" -- "$limit" -rss_limit_mb=2048 \
     -max_len=4096 -timeout=10 -print_final_stats=1 > "logs/$t.log" 2>&1) || true
}
# two at a time: one per core
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[$i]}" &
  [ $((i + 1)) -lt ${#targets[@]} ] && run "${targets[$((i + 1))]}" &
  wait
done

printf '%-16s %14s %10s %8s %s\n' target executions exec/s corpus findings
status=0
for t in "${targets[@]}"; do
  log=fuzz/logs/$t.log
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  found=$(ls "fuzz/artifacts/$t" 2>/dev/null | grep -cE '^(crash|oom|timeout|leak)-' || true)
  if grep -qE 'ERROR: libFuzzer|panicked' "$log"; then status=1; fi
  where=""; [ "$found" -gt 0 ] && where=" (fuzz/artifacts/$t)"
  printf '%-16s %14s %10s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$found$where"
done
exit $status
