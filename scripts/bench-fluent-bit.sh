#!/usr/bin/env bash
# Fluent Bit throughput with and without the turbolog filter, on >= 1 M real lines:
# in_tail (1 MB Buffer_Chunk_Size) -> [turbolog] -> out null, median of RUNS runs each.
# usage: FLUENT_BIT_BIN=/path/to/fluent-bit scripts/bench-fluent-bit.sh [LINES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLUENT_BIT_BIN:?set FLUENT_BIT_BIN to a fluent-bit binary (v3.2 to v5.x)}"
lines="${1:-1000000}"
runs="${2:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/install-plugin.sh "$work" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
python3 - "$lines" "$work/input.log" <<'PY'
import os, sys
n, out = int(sys.argv[1]), sys.argv[2]
data = "../shared/datasets/loghub"
lines = []
for name in sorted(os.listdir(data)):
    p = os.path.join(data, name, f"{name}_2k.log")
    if os.path.exists(p):
        lines += open(p, "rb").read().splitlines()
with open(out, "wb") as f:
    for i in range(n):
        f.write(lines[i % len(lines)] + b"\n")
PY

conf() { # $1 = 1 with the filter, 0 without
  # short flush and grace: the run ends soon after the last record instead of idling
  printf '[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level error\n'
  printf '[INPUT]\n    Name tail\n    Path %s\n    Read_from_Head true\n    Exit_On_Eof true\n' "$work/input.log"
  printf '    Buffer_Chunk_Size 1MB\n    Buffer_Max_Size 2MB\n    Mem_Buf_Limit 200MB\n'
  if [ "$1" = 1 ]; then printf '[FILTER]\n    Name turbolog\n    Match *\n'; fi
  printf '[OUTPUT]\n    Name null\n    Match *\n'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # $1 = with filter; prints "wall-rate cpu-rate" medians
  conf "$1" > "$work/fb.conf"
  python3 - "$FLUENT_BIT_BIN" "$work" "$lines" "$runs" <<'PY'
import resource, subprocess, sys, time, statistics
fb, work, lines, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
wall, cpu = [], []
for _ in range(runs):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([fb, "-e", f"{work}/flb-filter_turbolog.so", "-c", f"{work}/fb.conf"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall.append(lines / (time.perf_counter() - t))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(lines / ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
print(statistics.median(wall), statistics.median(cpu))
PY
}

echo "input: $lines lines of the 13 loghub systems repeated; in_tail 1 MB chunks -> out null; $runs runs each, median"
echo "(wall time includes start-up and the final flush; CPU-seconds are what the pipeline costs)"
read -r base_wall base_cpu < <(measure 0)
read -r with_wall with_cpu < <(measure 1)
python3 -c "
bw, bc, ww, wc = $base_wall, $base_cpu, $with_wall, $with_cpu
print(f'no filter:        {bw:>10.0f} records/s wall  {bc:>10.0f} per CPU-second')
print(f'turbolog filter:  {ww:>10.0f} records/s wall  {wc:>10.0f} per CPU-second')
print(f'ratio:            {ww / bw:>10.2f} wall             {wc / bc:>10.2f} CPU   (target >= 0.75)')
print(f'filter cost:      {(1 / wc - 1 / bc) * 1e6:>10.2f} us of CPU per record')"
