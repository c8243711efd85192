#!/usr/bin/env bash
# Load benchmark of $code from a second process (wrk, from Debian's packages): 16 connections,
# persistence on, on the release binary with the trained models. Prints wrk's latency table.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-$(mktemp -d)}
PORT=${PORT:-18181}
DURATION=${DURATION:-60s}
cargo build --release --quiet
./target/release/jointcoder --data-dir "$DATA" train >/dev/null 2>&1 || true
./target/release/jointcoder --data-dir "$DATA" serve --addr 127.0.0.1:$PORT >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
until curl -sf "http://127.0.0.1:$PORT/fhir/metadata" >/dev/null; do sleep 0.3; done
wrk -t2 -c16 -d"$DURATION" -s bench/code_post.lua --latency "http://127.0.0.1:$PORT/fhir/Bundle/\$code"
