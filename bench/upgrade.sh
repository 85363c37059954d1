#!/usr/bin/env bash
# Upgrade benchmark: failed requests from 16 keep-alive clients that do not
# retry, across 10 reloads of the proxy in front of the demo app: baton
# (`baton upgrade`), HAProxy's master-worker reload (-W, expose-fd
# listeners) and `nginx -s reload`, side by side in one run; and the time
# from `baton upgrade` to the new daemon accepting. Writes the "Upgrades"
# section of BENCHMARKS.md.
#
#   bench/upgrade.sh            3 runs per proxy (RUNS=5 for more)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
if ((${#need[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/install-build-deps
cargo build --release --locked --workspace --bins -q
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
exec python3 bench/upgrade.py "$bin" BENCHMARKS.md
