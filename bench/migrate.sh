#!/usr/bin/env bash
# Migration lint benchmark, written into BENCHMARKS.md ("Migration lint"):
# statements per second of `baton migrate lint` beside squawk on the same
# generated corpus in the same run, and the rule coverage of baton, squawk
# and strong_migrations. squawk comes from PyPI (`squawk-cli`, a prebuilt
# binary in a wheel), installed into a cache directory outside the
# repository, never committed.
#
#   bench/migrate.sh                          1,000 files × 50 statements, 5 runs
#   FILES=200 RUNS=3 bench/migrate.sh         shorter
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
tools=${BATON_BENCH_TOOLS:-/var/tmp/baton-bench-tools}
if [ ! -x "$tools/squawk/bin/squawk" ]; then
  mkdir -p "$tools"
  python3 -m pip install -q --disable-pip-version-check --target "$tools/squawk" squawk-cli
fi
cargo build --release --locked -p baton --bins -q
exec python3 bench/migrate.py "$(realpath "$target/release/baton")" "$tools/squawk/bin/squawk" BENCHMARKS.md
