#!/usr/bin/env python3
"""Guardrail rollback benchmark: a candidate that fails 5% of its requests
is canaried at a first step of 1% (then 10%) under keep-alive load; clients
record every answer. Reports, per first-step weight, the time from the
guardrail condition becoming true (as the clients saw it: the candidate has
answered min_requests with more than 1% errors) to its last answer (all
traffic back on stable), and how many requests the bad candidate served,
next to Flagger's documented arithmetic (interval x threshold).

Usage: bench/rollout.py BIN_DIR BENCHMARKS.md   (bench/rollout.sh runs it)
"""
import http.client, json, os, platform, re, shutil, signal, socket, statistics
import subprocess, sys, tempfile, threading, time

BIN = sys.argv[1]
OUT = sys.argv[2]
RUNS = int(os.environ.get("RUNS", "3"))
CLIENTS = 8
MIN_REQUESTS = 50
ERROR_RATE = 0.05
FLAGGER_INTERVAL_S = 60  # Flagger's default analysis interval
FLAGGER_THRESHOLD = 1    # Flagger's default failed checks before rollback

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def baton(state, *args, check=True):
    out = subprocess.run([f"{BIN}/baton", "--state-dir", state, *args],
                         capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"baton {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out

def config(root, first_step, bad):
    env = f'env = {{ ERROR_RATE = "{ERROR_RATE}" }}\n' if bad else ""
    return f'''[app]
name = "bench"
root = "{root}"
[web]
command = "./server"
processes = 2
health_interval = "50ms"
keep_warm = "0s"
{env}
[rollout]
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
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            log.append((time.monotonic(), resp.getheader("x-version"), resp.status))
        except Exception:
            conn = None
            log.append((time.monotonic(), None, 0))

def one_run(first_step):
    work = tempfile.mkdtemp(prefix="baton-rollout-bench-")
    state, src, root = f"{work}/state", f"{work}/src", f"{work}/root"
    os.makedirs(src)
    with open(f"{src}/server", "w") as f:
        f.write(f"#!/bin/sh\nVERSION=$(cat VERSION)\nexport VERSION\nexec {BIN}/demo-app\n")
    os.chmod(f"{src}/server", 0o755)
    port = free_port()
    daemon = subprocess.Popen([f"{BIN}/baton", "daemon", "--http", f"127.0.0.1:{port}",
                               "--state-dir", state], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 15
        while not os.path.exists(f"{state}/baton.sock"):
            if time.time() > deadline:
                raise SystemExit("the daemon did not start")
            time.sleep(0.05)
        open(f"{src}/VERSION", "w").write("v1\n")
        open(f"{src}/baton.toml", "w").write(config(root, first_step, False))
        baton(state, "deploy", "--config", f"{src}/baton.toml")
        stop, logs = threading.Event(), [[] for _ in range(CLIENTS)]
        threads = [threading.Thread(target=client, args=(port, stop, log)) for log in logs]
        for t in threads:
            t.start()
        time.sleep(1.0)
        open(f"{src}/VERSION", "w").write("v2\n")
        open(f"{src}/baton.toml", "w").write(config(root, first_step, True))
        started = time.monotonic()
        out = baton(state, "deploy", "--config", f"{src}/baton.toml", check=False)
        ended = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        if out.returncode == 0 or "rolled back" not in out.stderr:
            raise SystemExit(f"the bad candidate was not rolled back:\n{out.stdout}\n{out.stderr}")
        answers = sorted(a for log in logs for a in log)
        rate = sum(1 for a in answers if started <= a[0] <= ended) / max(ended - started, 1e-9)
        v2 = [a for a in answers if a[1] == "v2"]
        errors, true_at = 0, None
        for count, (t, _, status) in enumerate(v2, start=1):
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
    finally:
        try:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(15)
        except Exception:
            pass
        for proc in os.listdir("/proc"):
            if proc.isdigit():
                try:
                    if os.readlink(f"/proc/{proc}/cwd").startswith(work):
                        os.killpg(int(proc), signal.SIGKILL)
                except Exception:
                    pass
        shutil.rmtree(work, ignore_errors=True)

def main():
    results = {}
    for step in ["1%", "10%"]:
        results[step] = [one_run(step) for _ in range(RUNS)]
        print(step, json.dumps(results[step]), flush=True)
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
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

- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
- machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}
- load average before the run: {open('/proc/loadavg').read().split()[:3]}

| first step | runs | condition true -> all traffic on stable (median) | requests the bad candidate served (median) | client request rate | Flagger: requests served before rollback | 5xx from stable | connection failures |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Goal: at most 1 s from the condition to all traffic on stable. The guardrails are judged every
250 ms; the rest is the time the proxy's window takes to show the evidence and the swap.
<!-- end rollout -->
"""
    text = open(OUT).read() if os.path.exists(OUT) else "# Benchmarks\n"
    if "<!-- begin rollout -->" in text:
        text = re.sub(r"<!-- begin rollout -->.*?<!-- end rollout -->\n", section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    open(OUT, "w").write(text)
    print(section)

main()
