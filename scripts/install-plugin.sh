#!/usr/bin/env bash
# Builds the library and installs it under the name Fluent Bit needs: flb-filter_turbolog.so.
# usage: scripts/install-plugin.sh [DEST_DIR]   (default: target/release)
# Then: fluent-bit -e DEST_DIR/flb-filter_turbolog.so -c plugin-conf/fluent-bit.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-target/release}"
cargo build --release --lib
mkdir -p "$dest"
# A file not named flb-*.so is taken for a Go plugin by Fluent Bit and fails later: copy, not rename.
cp target/release/libturbolog.so "$dest/flb-filter_turbolog.so.tmp"
mv "$dest/flb-filter_turbolog.so.tmp" "$dest/flb-filter_turbolog.so"
echo "installed $(cd "$dest" && pwd)/flb-filter_turbolog.so"
