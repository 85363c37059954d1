#!/usr/bin/env bash
# Progressive delivery benchmarks, written into BENCHMARKS.md:
# - "Guardrail rollback": how fast a bad canary is sent back to stable, and
#   how many requests it served, at first steps of 1% and 10%, next to
#   Flagger's documented arithmetic;
# - "Shadow traffic": client latency while a candidate is shadowed at 100%
#   (healthy, and slow) against no shadow.
#
#   bench/rollout.sh              both, 3 runs each (RUNS=5 for more)
#   bench/rollout.sh shadow       only the shadow benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins -q
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
exec python3 bench/rollout.py "$bin" BENCHMARKS.md "$@"
