#!/usr/bin/env bash
# Prepares the OpenTelemetry Python SDK (real OTLP/HTTP and OTLP/gRPC log exporters) and opentelemetry-proto
# (a real OTLP decoder) in a venv, from PyPI only, for tests/otlp.rs (it skips loudly without).
# usage: scripts/fetch-otel.sh [DIR]   (default .cache/otel; repeated runs take a second)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.cache/otel}"
if ! "$DIR/venv/bin/python" -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.proto" 2>/dev/null; then
  python3 -m venv "$DIR/venv" || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$DIR/venv"; }
  "$DIR/venv/bin/pip" install --quiet opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc opentelemetry-proto
fi
echo "OpenTelemetry SDK ready: $DIR/venv/bin/python"
