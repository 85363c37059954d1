#!/usr/bin/env python3
"""Guardrail rollback benchmark: a candidate that fails 5% of its requests
is canaried at a first step of 1% (then 10%) under keep-alive load; clients
record every answer. Reports, per first-step weight, the time from the
guardrail condition becoming true (as the clients saw it: the candidate has
answered min_requests with more than 1% errors) to its last answer (all
traffic back on stable), and how many requests the bad candidate served,
next to Flagger's documented arithmetic (interval x threshold).

Shadow benchmark: client latency with no rollout, then while a healthy
candidate and a slow one are shadowed at 100%.

Usage: bench/rollout.py BIN_DIR BENCHMARKS.md [rollback] [shadow]
(both by default; bench/rollout.sh runs it)
"""
import http.client, json, os, platform, re, shutil, signal, socket, statistics
import subprocess, sys, tempfile, threading, time

from bench_report import cpu_model, free_port, stop_all, write_section

BIN = sys.argv[1]
OUT = sys.argv[2]
RUNS = int(os.environ.get("RUNS", "3"))
CLIENTS = 8
MIN_REQUESTS = 50
ERROR_RATE = 0.05
FLAGGER_INTERVAL_S = 60  # Flagger's default analysis interval
FLAGGER_THRESHOLD = 1    # Flagger's default failed checks before rollback

def baton(state, *args, check=True):
    out = subprocess.run([f"{BIN}/baton", "--state-dir", state, *args],
                         capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"baton {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out

def app_section(root, env):
    return f'''[app]
name = "bench"
root = "{root}"
[web]
command = "./server"
processes = 2
health_interval = "50ms"
keep_warm = "0s"
{env}
'''

def config(root, first_step, bad):
    env = f'env = {{ ERROR_RATE = "{ERROR_RATE}" }}\n' if bad else ""
    return app_section(root, env) + f'''[rollout]
strategy = "canary"
steps = ["{first_step}", "100%"]
step_duration = "10m"
step_timeout = "20m"
min_requests = {MIN_REQUESTS}
bake = "1s"
[[rollout.guardrails]]
metric = "error_rate"
max = "1%"
window = "1m"
'''

def client(port, stop, log):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            sent = time.monotonic()
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            now = time.monotonic()
            log.append((now, resp.getheader("x-version"), resp.status, now - sent))
        except Exception:
            conn = None
            log.append((time.monotonic(), None, 0, 0.0))

class Host:
    """A daemon on a free port in a temporary directory, with the demo app's
    source beside it; everything it started is stopped on exit."""

    def __enter__(self):
        self.work = tempfile.mkdtemp(prefix="baton-rollout-bench-")
        self.state, self.src = f"{self.work}/state", f"{self.work}/src"
        self.root = f"{self.work}/root"
        os.makedirs(self.src)
        with open(f"{self.src}/server", "w") as f:
            f.write(f"#!/bin/sh\nVERSION=$(cat VERSION)\nexport VERSION\nexec {BIN}/demo-app\n")
        os.chmod(f"{self.src}/server", 0o755)
        self.port = free_port()
        self.daemon = subprocess.Popen(
            [f"{BIN}/baton", "daemon", "--http", f"127.0.0.1:{self.port}",
             "--state-dir", self.state], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 15
        while not os.path.exists(f"{self.state}/baton.sock"):
            if time.time() > deadline:
                raise SystemExit("the daemon did not start")
            time.sleep(0.05)
        return self

    def write(self, version, config_text):
        open(f"{self.src}/VERSION", "w").write(f"{version}\n")
        open(f"{self.src}/baton.toml", "w").write(config_text)

    def baton(self, *args, check=True):
        return baton(self.state, *args, check=check)

    def deploy_args(self):
        return [f"{BIN}/baton", "--state-dir", self.state, "deploy",
                "--config", f"{self.src}/baton.toml"]

    def __exit__(self, *_):
        stop_all(self.daemon, self.work)

def start_clients(port):
    stop, logs = threading.Event(), [[] for _ in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(port, stop, log)) for log in logs]
    for t in threads:
        t.start()
    def finish():
        stop.set()
        for t in threads:
            t.join()
        return sorted(a for log in logs for a in log)
    return finish

def one_run(first_step):
    with Host() as host:
        host.write("v1", config(host.root, first_step, False))
        host.baton("deploy", "--config", f"{host.src}/baton.toml")
        finish = start_clients(host.port)
        time.sleep(1.0)
        host.write("v2", config(host.root, first_step, True))
        started = time.monotonic()
        out = host.baton("deploy", "--config", f"{host.src}/baton.toml", check=False)
        ended = time.monotonic()
        time.sleep(0.5)
        answers = finish()
        if out.returncode == 0 or "rolled back" not in out.stderr:
            raise SystemExit(f"the bad candidate was not rolled back:\n{out.stdout}\n{out.stderr}")
        rate = sum(1 for a in answers if started <= a[0] <= ended) / max(ended - started, 1e-9)
        v2 = [a for a in answers if a[1] == "v2"]
        errors, true_at = 0, None
        for count, (t, _, status, _) in enumerate(v2, start=1):
            errors += status >= 500
            if count >= MIN_REQUESTS and errors / count > 0.01:
                true_at = t
                break
        last = v2[-1][0] if v2 else None
        return {
            "lag_ms": (last - true_at) * 1000 if true_at and last else None,
            "served": len(v2),
            "rate": rate,
            "stable_failures": sum(1 for a in answers if a[1] == "v1" and a[2] >= 500),
            "connection_failures": sum(1 for a in answers if a[2] == 0),
        }


SHADOW_SECONDS = 8
SLOW_MS = 200

def shadow_config(root, slow_ms):
    """A candidate that is shadowed (all of stable's GETs copied to it) for
    ten minutes: long enough to measure, ended by an abort."""
    env = f'env = {{ SLOW_MS = "{slow_ms}" }}\n' if slow_ms else ""
    return app_section(root, env) + '''[rollout]
strategy = "canary"
steps = ["100%"]
step_duration = "10m"
step_timeout = "20m"
min_requests = 20
bake = "1s"
shadow = "100%"
shadow_duration = "10m"
'''

def shadowing(host):
    out = host.baton("status", "--config", f"{host.src}/baton.toml", "--json", check=False)
    try:
        rollout = json.loads(out.stdout).get("rollout") or {}
    except ValueError:
        return False
    return "shadow" in rollout.get("phase", "")

def latencies(answers, start, end):
    return sorted(a[3] * 1000 for a in answers if start <= a[0] <= end and a[2] == 200)

def percentile(values, q):
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

def shadow_run():
    """Client latency with no shadow, then while a healthy candidate and a
    candidate taking SLOW_MS per request are shadowed at 100%."""
    with Host() as host:
        host.write("v1", app_section(host.root, ""))
        host.baton("deploy", "--config", f"{host.src}/baton.toml")
        finish = start_clients(host.port)
        time.sleep(1.0)
        windows = {"off": (time.monotonic(), time.monotonic() + SHADOW_SECONDS)}
        time.sleep(SHADOW_SECONDS)
        for label, slow_ms in [("healthy candidate", 0), (f"{SLOW_MS} ms candidate", SLOW_MS)]:
            host.write("v2", shadow_config(host.root, slow_ms))
            deploy = subprocess.Popen(host.deploy_args(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            while not shadowing(host):
                if time.time() > deadline:
                    raise SystemExit("the shadow phase did not start")
                time.sleep(0.1)
            start = time.monotonic()
            time.sleep(SHADOW_SECONDS)
            windows[label] = (start, time.monotonic())
            host.baton("abort", "--config", f"{host.src}/baton.toml")
            deploy.wait(60)
        answers = finish()
        if any(a[1] == "v2" for a in answers):
            raise SystemExit("a client got the shadowed candidate")
        result = {}
        for label, (start, end) in windows.items():
            values = latencies(answers, start, end)
            result[label] = {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
                             "requests": len(values)}
        result["failures"] = sum(1 for a in answers if a[2] != 200)
        return result

def rollback_section(machine):
    results = {}
    for step in ["1%", "10%"]:
        results[step] = [one_run(step) for _ in range(RUNS)]
        print(step, json.dumps(results[step]), flush=True)
    rows = []
    for step, runs in results.items():
        lags = [r["lag_ms"] for r in runs if r["lag_ms"] is not None]
        served = statistics.median(r["served"] for r in runs)
        rate = statistics.median(r["rate"] for r in runs)
        weight = float(step.rstrip("%")) / 100
        flagger = rate * weight * FLAGGER_INTERVAL_S * FLAGGER_THRESHOLD
        rows.append(
            f"| {step} | {RUNS} | {statistics.median(lags):.0f} ms (max {max(lags):.0f}) | "
            f"{served:.0f} | {rate:.0f} req/s | {flagger:,.0f} | "
            f"{sum(r['stable_failures'] for r in runs)} | {sum(r['connection_failures'] for r in runs)} |"
            if lags else f"| {step} | {RUNS} | n/a | {served:.0f} | | | | |")
    section = f"""<!-- begin rollout -->
## Guardrail rollback

Written by `bench/rollout.sh` (`bench/rollout.py`). A canary whose candidate fails
{ERROR_RATE:.0%} of its requests (demo app `ERROR_RATE`) starts at its first step under
{CLIENTS} keep-alive Python clients; guardrail `error_rate` max 1% over 1m,
`min_requests = {MIN_REQUESTS}`. "Condition true" is when the clients had seen the candidate
answer {MIN_REQUESTS} requests with more than 1% errors; "back on stable" is the candidate's
last answer. Flagger's figure is its documented arithmetic for the same traffic: a rollback
takes interval x threshold with its defaults ({FLAGGER_INTERVAL_S} s x {FLAGGER_THRESHOLD}),
so the candidate serves rate x weight x {FLAGGER_INTERVAL_S} s requests before it.

{machine}

| first step | runs | condition true -> all traffic on stable (median) | requests the bad candidate served (median) | client request rate | Flagger: requests served before rollback | 5xx from stable | connection failures |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Goal: at most 1 s from the condition to all traffic on stable. The guardrails are judged every
250 ms; the rest is the time the proxy's window takes to show the evidence and the swap.
<!-- end rollout -->
"""
    return section

def shadow_section(machine):
    runs = [shadow_run() for _ in range(RUNS)]
    for run in runs:
        print("shadow", json.dumps(run), flush=True)
    labels = [label for label in runs[0] if label != "failures"]
    base_p50 = statistics.median(r["off"]["p50"] for r in runs)
    base_p99 = statistics.median(r["off"]["p99"] for r in runs)
    rows = []
    for label in labels:
        p50 = statistics.median(r[label]["p50"] for r in runs)
        p99 = statistics.median(r[label]["p99"] for r in runs)
        requests = statistics.median(r[label]["requests"] for r in runs)
        rows.append(f"| {label} | {requests:.0f} | {p50:.2f} ms ({p50 / base_p50:.2f}x) | "
                    f"{p99:.2f} ms ({p99 / base_p99:.2f}x) |")
    return f"""<!-- begin shadow -->
## Shadow traffic

Written by `bench/rollout.sh` (`bench/rollout.py`). {CLIENTS} keep-alive Python clients send
`GET /` to the demo app (2 processes) through baton; client latency is measured for
{SHADOW_SECONDS} s with no rollout, then for {SHADOW_SECONDS} s while a candidate is shadowed at
`shadow = "100%"` (every GET copied to it), once healthy and once taking {SLOW_MS} ms per
request. Medians over {RUNS} runs; ratios against "off". No client ever got the candidate;
failed requests in all runs: {sum(r["failures"] for r in runs)}.

{machine}

| shadow | client requests in the window | client p50 | client p99 |
|---|---:|---:|---:|
{chr(10).join(rows)}

Each copy is upstream work on the same 2 cores as the clients, the proxy and both versions;
ratios this close to 1.0 are within the spread between runs on this machine. With a candidate
taking 200 ms per copy, client latency stays in the milliseconds: no client waits for a copy.
<!-- end shadow -->
"""

def main():
    cpu = cpu_model()
    machine = (f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
               f"- machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}\n"
               f"- load average before the run: {open('/proc/loadavg').read().split()[:3]}")
    parts = sys.argv[3:] or ["rollback", "shadow"]
    if "rollback" in parts:
        write_section(OUT, "rollout", rollback_section(machine))
    if "shadow" in parts:
        write_section(OUT, "shadow", shadow_section(machine))

main()
