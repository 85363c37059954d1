#!/usr/bin/env bash
# Proxy benchmark: the same upstream (the demo app's /fixed, a small fixed
# response) measured directly, through baton, through HAProxy and through
# nginx, in one run, with wrk over keep-alive at a few concurrencies, plus
# HTTP/2 (h2c) with h2load, and baton's RSS idle and under load.
# Results are written to BENCHMARKS.md (machine and date included).
#
#   bench/proxy.sh              full run (about 5 minutes)
#   DURATION=3s bench/proxy.sh  shorter
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=${DURATION:-10s}
concurrencies=${CONCURRENCIES:-"16 64 256"}

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v perf >/dev/null || need+=(linux-perf)
if ((${#need[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

ulimit -n 65536 2>/dev/null || true
cargo build --release --locked --bins -q
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d -t baton-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Upstream: the demo app, one process, keep-alive.
upstream_port=$(free_port)
PORT=$upstream_port VERSION=bench RUST_LOG=warn "$bin/demo-app" >/dev/null 2>&1 &
pids+=($!)
wait_port "$upstream_port"

# baton
baton_port=$(free_port)
export BATON_STATE_DIR=$work/baton
RUST_LOG=warn "$bin/baton" daemon --http "127.0.0.1:$baton_port" 2>"$work/baton.log" &
baton_pid=$!
pids+=($baton_pid)
wait_port "$baton_port"
"$bin/baton" route deploy bench --target "127.0.0.1:$upstream_port" >/dev/null
sleep 1
baton_idle_rss=$(rss_kib "$baton_pid")

# HAProxy 2.6: keep-alive both sides, connection reuse, h2c on the same port.
haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  # A clear-text bind accepts HTTP/1.1 and h2c prior knowledge alike.
  bind 127.0.0.1:$haproxy_port
  default_backend upstream
backend upstream
  server app 127.0.0.1:$upstream_port
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
wait_port "$haproxy_port"

# nginx 1.22: upstream keepalive, HTTP/1.1 to the upstream.
nginx_port=$(free_port)
nginx_h2_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CFG
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$upstream_port; keepalive 256; }
  server {
    listen 127.0.0.1:$nginx_port;
    listen 127.0.0.1:$nginx_h2_port http2;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CFG
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
wait_port "$nginx_port"

results=$work/results.tsv
: >"$results"
run_wrk() { # name port concurrency
  local out
  out=$(wrk -t2 -c"$3" -d"$duration" --latency "http://127.0.0.1:$2/fixed")
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
  printf 'h1\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$rps" "$p99" "${non2xx:-0}" >>"$results"
  echo "  $1 c=$3: $rps req/s, p99 $p99"
}
peak_rss=0
for c in $concurrencies; do
  echo "wrk, $c connections, $duration each"
  run_wrk direct "$upstream_port" "$c"
  ( while kill -0 "$baton_pid" 2>/dev/null; do rss_kib "$baton_pid"; sleep 0.5; done ) >"$work/rss.$c" &
  sampler=$!
  run_wrk baton "$baton_port" "$c"
  kill "$sampler" 2>/dev/null || true
  peak=$(sort -n "$work/rss.$c" | tail -1)
  ((peak > peak_rss)) && peak_rss=$peak
  run_wrk haproxy "$haproxy_port" "$c"
  run_wrk nginx "$nginx_port" "$c"
done

run_h2load() { # name port
  local out
  out=$(h2load -c16 -m10 -D "${duration%s}" "http://127.0.0.1:$2/fixed" 2>&1)
  local rps
  rps=$(awk '/^finished in/ {print $4}' <<<"$out")
  local mean
  mean=$(awk '/^time for request:/ {print $6}' <<<"$out")
  printf 'h2\t%s\t16x10\t%s\t%s\t0\n' "$1" "$rps" "$mean" >>"$results"
  echo "  h2 $1: $rps req/s (mean request time $mean)"
}
echo "h2load, 16 connections x 10 streams, h2c prior knowledge"
run_h2load baton "$baton_port"
run_h2load haproxy "$haproxy_port"
run_h2load nginx "$nginx_h2_port"

# Where baton's time goes: a CPU profile of the daemon under wrk -c64.
# (head closes its pipe early: no pipefail here.)
set +o pipefail
profile=$work/profile.txt
: >"$profile"
if perf record -F 999 -g -o "$work/perf.data" -p "$baton_pid" -- sleep 1 >/dev/null 2>&1; then
  wrk -t2 -c64 -d"$duration" "http://127.0.0.1:$baton_port/fixed" >/dev/null &
  load=$!
  sleep 1
  perf record -F 999 -g -o "$work/perf.data" -p "$baton_pid" -- sleep "$(( ${duration%s} - 2 ))" >/dev/null 2>&1 || true
  wait "$load" || true
  {
    echo "### by binary"
    perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6
    echo "### top functions in baton's own code and libraries"
    perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
      | grep -E '^ +[0-9]' | grep -v '\[k\]' | head -15
    echo "### top kernel functions"
    perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
      | grep -E '^ +[0-9]' | grep '\[k\]' | head -8
  } | sed -E 's/ +- +- +$//; s/ +$//' >"$profile"
fi

python3 "$root/bench/report.py" "$results" "$baton_idle_rss" "$peak_rss" "$duration" "$profile" >"$root/BENCHMARKS.md.new"
mv "$root/BENCHMARKS.md.new" "$root/BENCHMARKS.md"
echo "written: BENCHMARKS.md"
