#!/usr/bin/env bash
# Deploy benchmark: the demo app redeployed N times in a row under the same
# load (baton probe, 32 keep-alive connections), three ways, in one run:
#   (a) `baton deploy` (and `baton rollback`, warm) behind baton's proxy;
#   (b) nginx in front, the app restarted in place (SIGTERM, wait, start);
#   (c) nginx in front, the new app on a new port, the upstream rewritten,
#       `nginx -s reload`, the old app stopped; and (c') the same with a
#       pause between the reload and the stop, as careful scripts do.
# Failed requests and p99 during the deploys against steady state, plus
# baton's own overhead beyond the app's boot, the lag from "new version
# healthy" to its first served request, and a warm rollback's duration.
# Results go into the "Deploys" section of BENCHMARKS.md (machine and date
# included); the proxy sections written by bench/proxy.sh are left alone.
#
#   bench/deploy.sh                       full run (about 80 s after the build)
#   DEPLOYS=3 STEADY=3s bench/deploy.sh   shorter
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deploys=${DEPLOYS:-5}     # deploys (and rollbacks) per scenario
steady=${STEADY:-10s}     # steady-state probe run per scenario
boots=${BOOTS:-10}        # timed cold starts of the bare app
reload_wait=${RELOAD_WAIT:-2} # (c'): seconds between nginx -s reload and stopping the old app
connections=32

command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

ulimit -n 65536 2>/dev/null || true
cargo build --release --locked --workspace --bins -q
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release")
work=$(mktemp -d -t baton-deploy-bench-XXXXXX)
res=$work/results
mkdir -p "$res"

# Every process this script starts is one of its jobs, or (apps started by
# baton's daemon, which outlive it by design) runs with its cwd under $work.
pids_under_work() {
  local proc cwd
  for proc in /proc/[0-9]*; do
    cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
    [[ $cwd == "$work" || $cwd == "$work"/* ]] && echo "${proc#/proc/}"
  done
  return 0
}
cleanup() {
  set +e
  local pid
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null; done
  local left
  for _ in $(seq 50); do
    left=$(pids_under_work)
    [[ -z $left ]] && break
    # shellcheck disable=SC2086
    kill $left 2>/dev/null
    sleep 0.1
  done
  left=$(pids_under_work)
  # shellcheck disable=SC2086
  [[ -n $left ]] && kill -KILL $left 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Small timing tools: free ports, timestamped deploy events, an X-Version
# poller, and cold starts of the bare app. Times are time.time() (the same
# clock as the daemon's log timestamps).
cat >"$work/tools.py" <<'PY'
import http.client, json, os, signal, socket, statistics, subprocess, sys, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port

def timed(out, label, cmd):
    """Runs cmd (a --json deploy or rollback), stamping each event line as it arrives."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
    events = []
    for line in proc.stdout:
        try:
            events.append({"t": time.time(), "event": json.loads(line)})
        except ValueError:
            events.append({"t": time.time(), "text": line.rstrip("\n")})
    rc = proc.wait()
    end = time.time()
    with open(out, "w") as f:
        json.dump({"cmd": cmd, "label": label, "start": start, "end": end, "rc": rc, "events": events}, f)
    return rc

def poll(port, out):
    """GETs / over one keep-alive connection as fast as it answers; keeps every
    change of X-Version with the send and receive times around it."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conn, last, last_sent, last_recv = None, None, None, None
    changes, count, errors, started = [], 0, 0, time.time()
    while not stop:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            sent = time.time()
            conn.request("GET", "/")
            response = conn.getresponse()
            version = response.getheader("X-Version")
            response.read()
            received = time.time()
        except Exception:
            errors += 1
            conn = None
            continue
        count += 1
        if version != last:
            changes.append({"version": version, "status": response.status, "sent": sent,
                            "received": received, "previous_sent": last_sent,
                            "previous_received": last_recv})
        last, last_sent, last_recv = version, sent, received
    ended = time.time()
    with open(out, "w") as f:
        json.dump({"requests": count, "errors": errors, "started": started, "ended": ended,
                   "changes": changes}, f)

def boot(src, runs, out):
    """Cold starts of the app's ./server (BOOT_DELAY_MS=0): spawn to first TCP
    connect accepted, and to first 200 from /health."""
    samples = []
    for _ in range(runs):
        port = free_port()
        env = dict(os.environ, PORT=str(port), BOOT_DELAY_MS="0")
        t0 = time.time()
        proc = subprocess.Popen(["./server"], cwd=src, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        listen = healthy = None
        deadline = t0 + 10
        while time.time() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                time.sleep(0.0002)
                continue
            listen = time.time()
            s.close()
            break
        while listen and time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    healthy = time.time()
                    break
            except OSError:
                pass
            time.sleep(0.0002)
        proc.terminate()
        proc.wait()
        samples.append({"listen_ms": (listen - t0) * 1000 if listen else None,
                        "healthy_ms": (healthy - t0) * 1000 if healthy else None})
        time.sleep(0.05)
    with open(out, "w") as f:
        json.dump(samples, f)

if __name__ == "__main__":
    what = sys.argv[1]
    if what == "free-port":
        print(free_port())
    elif what == "timed":
        sys.exit(timed(sys.argv[2], sys.argv[3], sys.argv[4:]))
    elif what == "poll":
        poll(int(sys.argv[2]), sys.argv[3])
    elif what == "boot":
        boot(sys.argv[2], int(sys.argv[3]), sys.argv[4])
PY
tools() { python3 "$work/tools.py" "$@"; }

wait_health() { # port: until /health answers 200
  for _ in $(seq 2000); do
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1/health" && return 0
    sleep 0.005
  done
  echo "port $1 never became healthy" >&2
  return 1
}

# Load: the same probe for every scenario.
probe_args=(--concurrency "$connections" --keepalive --count-header X-Version --json -q)
probe_steady() { # name url
  echo "[${SECONDS}s]   steady state, $steady"
  "$bin/baton" probe "$2" "${probe_args[@]}" --duration "$steady" >"$res/$1-steady.json"
}
probe_start() { # name url: load until probe_stop
  "$bin/baton" probe "$2" "${probe_args[@]}" --duration 1h >"$res/$1-window.json" &
  probe_pid=$!
  sleep 0.5 # every connection open and warm before the first deploy
}
probe_stop() {
  sleep 1 # the last deploy's after-effects belong to the window too
  kill -INT "$probe_pid"
  wait "$probe_pid" || true
}
poll_start() { # port out
  python3 "$work/tools.py" poll "$1" "$2" &
  poll_pid=$!
  sleep 0.2
}
poll_stop() {
  kill -TERM "$poll_pid"
  wait "$poll_pid" || true
}
now() { echo "$EPOCHREALTIME"; }

# The app: the demo app's binary behind a `server` script that reads its
# version from a file, as a deployable source directory.
make_source() { # dir
  mkdir -p "$1"
  printf '#!/bin/sh\nVERSION=$(cat VERSION)\nexport VERSION\nexec %s "$@"\n' "$bin/demo-app" >"$1/server"
  chmod +x "$1/server"
  echo v0 >"$1/VERSION"
}

cat /proc/loadavg >"$res/loadavg-start"
date -u +%s >"$res/date"

########################################################################
# (a) baton deploy
echo "[${SECONDS}s] (a) baton deploy, $deploys deploys per run"
a=$work/a
make_source "$a/src"
cat >"$a/src/baton.toml" <<TOML
[app]
name = "bench"
root = "$a/root"

[web]
command = "./server"
processes = 1
health_path = "/health"
health_interval = "50ms"
healthy_after = 2
keep_warm = "60s"
drain_timeout = "10s"
stop_timeout = "10s"
TOML
cp "$a/src/baton.toml" "$res/baton.toml"
export BATON_STATE_DIR=$a/state
RUST_LOG=info "$bin/baton" daemon --http 127.0.0.1:0 2>"$a/daemon.log" &
daemon_pid=$!
for _ in $(seq 200); do
  grep -q '"Serving"' "$a/daemon.log" 2>/dev/null && [ -S "$BATON_STATE_DIR/baton.sock" ] && break
  sleep 0.05
done
baton_port=$(grep -o 'http://127.0.0.1:[0-9]*' "$a/daemon.log" | head -1 | sed 's/.*://')
baton_url=http://127.0.0.1:$baton_port/
"$bin/baton" deploy -c "$a/src/baton.toml" >/dev/null
wait_health "$baton_port"

deploy_a() { # name version: one timed deploy of a new VERSION
  echo "$2" >"$a/src/VERSION"
  tools timed "$res/$1.json" "$2" "$bin/baton" deploy -c "$a/src/baton.toml" --json \
    || echo "  $1: baton deploy failed" >&2
}
rollback_a() { # name
  tools timed "$res/$1.json" "" "$bin/baton" rollback -c "$a/src/baton.toml" --json \
    || echo "  $1: baton rollback failed" >&2
}

echo "[${SECONDS}s]   the bare app's cold start, $boots times, no load"
tools boot "$a/src" "$boots" "$res/boot-idle.json"
echo "[${SECONDS}s]   $deploys deploys and $deploys rollbacks without load"
poll_start "$baton_port" "$res/poll-idle-deploy.json"
for i in $(seq "$deploys"); do deploy_a "idle-deploy-$i" "idle$i"; done
poll_stop
poll_start "$baton_port" "$res/poll-idle-rollback.json"
for i in $(seq "$deploys"); do rollback_a "idle-rollback-$i"; done
poll_stop

probe_steady a "$baton_url"
echo "[${SECONDS}s]   the bare app's cold start, $boots times, under load"
probe_start a-boot "$baton_url"
tools boot "$a/src" "$boots" "$res/boot-load.json"
probe_stop
echo "[${SECONDS}s]   $deploys deploys under load"
probe_start a "$baton_url"
for i in $(seq "$deploys"); do deploy_a "load-deploy-$i" "load$i"; done
probe_stop
echo "[${SECONDS}s]   $deploys rollbacks under load"
probe_start a-rollback "$baton_url"
for i in $(seq "$deploys"); do rollback_a "load-rollback-$i"; done
probe_stop
# The X-Version poller is one more client: it gets runs of its own, so that
# the deploy windows above carry exactly the load the nginx ones do.
echo "[${SECONDS}s]   $deploys deploys and $deploys rollbacks under load, with the X-Version poller"
probe_start a-poll "$baton_url"
poll_start "$baton_port" "$res/poll-lag-deploy.json"
for i in $(seq "$deploys"); do deploy_a "lag-deploy-$i" "lag$i"; done
poll_stop
poll_start "$baton_port" "$res/poll-lag-rollback.json"
for i in $(seq "$deploys"); do rollback_a "lag-rollback-$i"; done
poll_stop
probe_stop
"$bin/baton" ps -c "$a/src/baton.toml" --json >"$res/ps.json" || true
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
cp "$a/daemon.log" "$res/daemon.log"
# The daemon leaves its apps running on purpose: stop them.
for _ in $(seq 50); do
  left=$(pids_under_work)
  [[ -z $left ]] && break
  # shellcheck disable=SC2086
  kill $left 2>/dev/null || true
  sleep 0.1
done
unset BATON_STATE_DIR

########################################################################
# nginx in front of one app process (scenarios b and c)
n=$work/nginx
mkdir -p "$n"
make_source "$work/app"
nginx_port=$(tools free-port)
write_nginx_conf() { # upstream port
  cat >"$n/nginx.conf.new" <<CFG
worker_processes 2;
daemon off;
pid $n/nginx.pid;
error_log $n/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $n;
  proxy_temp_path $n;
  fastcgi_temp_path $n;
  uwsgi_temp_path $n;
  scgi_temp_path $n;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$1; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CFG
  mv "$n/nginx.conf.new" "$n/nginx.conf"
}
start_app() { # port version → $app_pid
  echo "$2" >"$work/app/VERSION"
  (cd "$work/app" && PORT=$1 exec ./server) >>"$work/app.out" 2>>"$work/app.log" &
  app_pid=$!
}
stop_app() { # pid: SIGTERM, wait for it to exit
  kill -TERM "$1"
  wait "$1" || true
}

app_port=$(tools free-port)
start_app "$app_port" v0
wait_health "$app_port"
write_nginx_conf "$app_port"
nginx -e "$n/error.log" -c "$n/nginx.conf" &
wait_health "$nginx_port"
nginx_url=http://127.0.0.1:$nginx_port/

echo "[${SECONDS}s] (b) nginx, the app restarted in place, $deploys times"
probe_steady b "$nginx_url"
: >"$n/error.log"
probe_start b "$nginx_url"
: >"$res/b-walls"
for i in $(seq "$deploys"); do
  t0=$(now)
  stop_app "$app_pid"
  start_app "$app_port" "b-$i"
  wait_health "$app_port"
  echo "$t0 $(now)" >>"$res/b-walls"
done
probe_stop
cp "$n/error.log" "$res/b-nginx-error.log"

reload_deploys() { # name seconds: new port, health, rewrite, reload, [wait,] stop the old app
  probe_steady "$1" "$nginx_url"
  : >"$n/error.log"
  probe_start "$1" "$nginx_url"
  : >"$res/$1-walls"
  for i in $(seq "$deploys"); do
    t0=$(now)
    old_pid=$app_pid
    app_port=$(tools free-port)
    start_app "$app_port" "$1-$i"
    wait_health "$app_port"
    write_nginx_conf "$app_port"
    nginx -e "$n/error.log" -c "$n/nginx.conf" -s reload
    sleep "$2"
    stop_app "$old_pid"
    echo "$t0 $(now)" >>"$res/$1-walls"
  done
  probe_stop
  cp "$n/error.log" "$res/$1-nginx-error.log"
}
echo "[${SECONDS}s] (c) nginx, a new app on a new port, upstream rewritten, nginx -s reload, old app stopped, $deploys times"
reload_deploys c 0
echo "[${SECONDS}s] (c') the same, waiting ${reload_wait}s after the reload before stopping the old app"
reload_deploys c-wait "$reload_wait"

cat /proc/loadavg >"$res/loadavg-end"
{
  echo "deploys=$deploys"
  echo "steady=$steady"
  echo "boots=$boots"
  echo "reload_wait=$reload_wait"
  echo "connections=$connections"
  echo "nginx=$(nginx -v 2>&1)"
  echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- crates examples 2>/dev/null || echo ' (with local changes)')"
} >"$res/meta"
[[ -n ${KEEP_RESULTS:-} ]] && cp -r "$res" "$KEEP_RESULTS"
python3 "$root/bench/deploy_report.py" "$res" "$root/BENCHMARKS.md"
echo "[${SECONDS}s] written: BENCHMARKS.md (Deploys section)"
