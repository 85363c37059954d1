#!/usr/bin/env bash
# Metrics benchmark: the time and size of a Prometheus scrape of baton's
# /metrics against HAProxy's built-in exporter with the same services, and
# baton's proxy throughput with and without a scrape every 100 ms. Writes
# the "Metrics scrapes" section of BENCHMARKS.md.
#
#   bench/metrics.sh            3 runs (RUNS=5 for more; SERVICES=20)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/install-build-deps
cargo build --release --locked --workspace --bins -q
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
exec python3 bench/metrics.py "$bin" BENCHMARKS.md
