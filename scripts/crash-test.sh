#!/usr/bin/env bash
# The SIGKILL crash test with many more kills than CI runs (CI: 20).
# usage: scripts/crash-test.sh [ITERATIONS]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
TURBOLOG_CRASH_ITERATIONS="${1:-200}" cargo test --release --test crash -- --nocapture
