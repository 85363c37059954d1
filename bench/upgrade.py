#!/usr/bin/env python3
"""Upgrade benchmark: 16 keep-alive HTTP/1.1 clients that never retry send
GET /fixed through a proxy to the demo app while the proxy is reloaded 10
times, one second apart. A failed request is one that raised (a connection
closed or reset under it) or came back 5xx; an answer with Connection: close
is fine (the client opens a new connection for its next request).

Proxies: baton (`baton upgrade`: sockets handed over with SCM_RIGHTS),
HAProxy master-worker (SIGUSR2 to the master, `expose-fd listeners` on the
stats socket) and nginx (`nginx -s reload`).

Usage: bench/upgrade.py BIN_DIR BENCHMARKS.md   (bench/upgrade.sh runs it)
"""
import http.client, os, platform, re, shutil, signal, socket, statistics, subprocess
import sys, tempfile, threading, time

from bench_report import cpu_model, free_port, write_section

BIN, OUT = sys.argv[1], sys.argv[2]
RUNS = int(os.environ.get("RUNS", "3"))
CLIENTS = 16
RELOADS = 10

def wait_port(port, deadline=15):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")

def client(port, stop, counts, lock):
    conn, ok, failed = None, 0, 0
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/fixed")
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 500:
                failed += 1
            else:
                ok += 1
            if resp.will_close:
                conn.close()
                conn = None
        except Exception:
            failed += 1
            conn = None
    with lock:
        counts["ok"] += ok
        counts["failed"] += failed

class Baton:
    name = "baton (`baton upgrade`)"
    def __init__(self):
        self.ready_ms, self.command_ms = [], []
    def start(self, work, upstream):
        self.state = f"{work}/baton"
        self.port = free_port()
        self.log = open(f"{work}/baton.log", "w")
        self.proc = subprocess.Popen(
            [f"{BIN}/baton", "--state-dir", self.state, "daemon", "--http",
             f"127.0.0.1:{self.port}", "--idle-grace", "2s"],
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
            env={**os.environ, "RUST_LOG": "warn"})
        wait_port(self.port)
        subprocess.run([f"{BIN}/baton", "--state-dir", self.state, "route", "deploy", "bench",
                        "--target", f"127.0.0.1:{upstream}"], check=True,
                       stdout=subprocess.DEVNULL)
    def reload(self):
        started = time.monotonic()
        out = subprocess.run([f"{BIN}/baton", "--state-dir", self.state, "upgrade"],
                             capture_output=True, text=True)
        self.command_ms.append((time.monotonic() - started) * 1000)
        if out.returncode != 0:
            raise SystemExit(f"baton upgrade failed:\n{out.stderr}")
        self.ready_ms.append(int(re.search(r"accepted after (\d+) ms", out.stdout).group(1)))
    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

class HAProxy:
    name = "HAProxy master-worker reload (`-W`, `expose-fd listeners`)"
    def start(self, work, upstream):
        self.port = free_port()
        cfg = f"{work}/haproxy.cfg"
        open(cfg, "w").write(f"""global
  master-worker
  nbthread 2
  stats socket {work}/haproxy.sock mode 600 expose-fd listeners level admin
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend bench
  bind 127.0.0.1:{self.port}
  default_backend upstream
backend upstream
  server app 127.0.0.1:{upstream}
""")
        self.proc = subprocess.Popen(["haproxy", "-W", "-db", "-f", cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port)
    def reload(self):
        os.kill(self.proc.pid, signal.SIGUSR2)
    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

class Nginx:
    name = "nginx (`nginx -s reload`)"
    def start(self, work, upstream):
        self.port = free_port()
        os.makedirs(f"{work}/nginx", exist_ok=True)
        self.conf = f"{work}/nginx/nginx.conf"
        open(self.conf, "w").write(f"""worker_processes 2;
daemon off;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx;
  proxy_temp_path {work}/nginx;
  fastcgi_temp_path {work}/nginx;
  uwsgi_temp_path {work}/nginx;
  scgi_temp_path {work}/nginx;
  keepalive_requests 1000000;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
    def reload(self):
        subprocess.run(["nginx", "-c", self.conf, "-s", "reload"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

def one_run(proxy):
    work = tempfile.mkdtemp(prefix="baton-upgrade-bench-")
    upstream = free_port()
    app = subprocess.Popen([f"{BIN}/demo-app"], env={**os.environ, "PORT": str(upstream),
                           "VERSION": "bench", "RUST_LOG": "warn"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        wait_port(upstream)
        proxy.start(work, upstream)
        stop, lock, counts = threading.Event(), threading.Lock(), {"ok": 0, "failed": 0}
        threads = [threading.Thread(target=client, args=(proxy.port, stop, counts, lock))
                   for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1)
        for _ in range(RELOADS):
            proxy.reload()
            time.sleep(1)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        return counts
    finally:
        try:
            proxy.stop()
        except Exception:
            pass
        os.killpg(app.pid, signal.SIGKILL)
        app.wait()
        shutil.rmtree(work, ignore_errors=True)

def main():
    proxies = [Baton(), HAProxy(), Nginx()]
    results = {}
    for proxy in proxies:
        results[proxy.name] = [one_run(proxy) for _ in range(RUNS)]
        print(proxy.name, results[proxy.name], flush=True)
    baton = proxies[0]
    cpu = cpu_model()
    versions = {
        "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
    }
    rows = []
    for name, runs in results.items():
        failed = [r["failed"] for r in runs]
        total = [r["ok"] + r["failed"] for r in runs]
        rows.append(f"| {name} | {RUNS} | {statistics.median(failed):.0f} (runs: {', '.join(map(str, failed))}) "
                    f"| {statistics.median(failed) / RELOADS:.1f} | {statistics.median(total):,.0f} |")
    section = f"""<!-- begin upgrade -->
## Upgrades

Written by `bench/upgrade.sh` (`bench/upgrade.py`). {CLIENTS} keep-alive HTTP/1.1 clients that never
retry (Python `http.client`) send `GET /fixed` through each proxy to the demo app while the proxy
is reloaded {RELOADS} times, one second apart. A failed request raised (connection closed or reset
under it) or came back 5xx; an answer with `Connection: close` is not a failure, the client opens
a new connection. Medians over {RUNS} runs of {RELOADS} reloads each.

- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
- machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}
- {versions['haproxy']}; {versions['nginx']}

| proxy | runs | failed requests per {RELOADS} reloads (median) | per reload | requests per run |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}

`baton upgrade`, from the command to the new daemon accepting on every socket (its own
report): median {statistics.median(baton.ready_ms):.0f} ms (max {max(baton.ready_ms)} ms) over all
{len(baton.ready_ms)} upgrades; the whole command, until the old daemon acknowledged,
median {statistics.median(baton.command_ms):.0f} ms.
<!-- end upgrade -->
"""
    write_section(OUT, "upgrade", section)

main()
