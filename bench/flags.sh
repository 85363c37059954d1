#!/usr/bin/env bash
# Feature flag benchmarks, written into BENCHMARKS.md ("Feature flags"):
# ns per evaluation beside Unleash's engine (criterion), OFREP req/s (wrk)
# and the kill switch's propagation through the proxy.
#
#   bench/flags.sh                 everything
#   TOGGLES=50 bench/flags.sh      more kill-switch rounds (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench/flags.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-target}
cargo bench --locked -p baton-flags --bench evaluation -- --warm-up-time 2 --measurement-time 5
cargo build --release --locked -p baton -p baton-example-app --bins -q
bin=$(realpath "$target/release")
exec python3 bench/flags.py "$bin" "$(realpath "$target/criterion")" BENCHMARKS.md
