#!/usr/bin/env bash
# `serve --state` SIGKILLed N times at random while HTTP and Forward senders post numbered
# records (retrying until acknowledged) and the Forward receiver downstream restarts at random:
# every acknowledged record must arrive at least once; duplicates are counted and printed.
# CI runs the same test with 4 kills (tests/serve_crash.rs).
# usage: scripts/crash-test-serve.sh [N]   (default 50); TURBOLOG_SERVE_CRASH_SEED=S repeats a run
set -euo pipefail
cd "$(dirname "$0")/.."
TURBOLOG_SERVE_CRASH_KILLS="${1:-50}" cargo test --release --test serve_crash -- --nocapture
