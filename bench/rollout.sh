#!/usr/bin/env bash
# Guardrail rollback benchmark: how fast a bad canary is sent back to
# stable, and how many requests it served, at first steps of 1% and 10%,
# next to Flagger's documented arithmetic. Writes the "Guardrail rollback"
# section of BENCHMARKS.md.
#
#   bench/rollout.sh            3 runs per step (RUNS=5 for more)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins -q
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
exec python3 bench/rollout.py "$bin" BENCHMARKS.md
