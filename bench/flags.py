#!/usr/bin/env python3
"""Feature flag benchmarks, written into BENCHMARKS.md between
<!-- begin flags --> and <!-- end flags -->:

1. ns per evaluation, baton beside Unleash's engine (yggdrasil), from the
   criterion bench `cargo bench -p baton-flags --bench evaluation` (medians
   read from criterion's estimates.json);
2. OFREP req/s: wrk POSTing the bulk evaluation (100 flags) and a single
   flag evaluation to a release daemon's admin listener;
3. the kill switch: a client loops GET /headers through the proxy to the
   demo app with `[flags] inject = true` while `baton flags off` and `on`
   alternate; for each `off`, the command's wall time, the time from its
   return to the first answer that reads `off`, and any answer sent after
   the return that still read `on` (there must be none).

Usage: bench/flags.py BIN_DIR CRITERION_DIR BENCHMARKS.md (bench/flags.sh runs it)
"""
import http.client, json, os, platform, re, shutil, signal, socket, statistics
import subprocess, sys, tempfile, threading, time

from bench_report import cpu_model, free_port, stop_all, write_section

BIN, CRITERION, OUT = sys.argv[1:4]
TOGGLES = int(os.environ.get("TOGGLES", "20"))
WRK_SECONDS = int(os.environ.get("WRK_SECONDS", "10"))
ADMIN_TOKEN, FLAGS_TOKEN = "bench-admin-token", "bench-flags-token"
CASES = [
    ("no_strategy", "one flag, no strategy"),
    ("one_constraint", "one constraint (`userId IN [7]`)"),
    ("two_constraints", "two constraints in one strategy (yggdrasil's \"two strategies\")"),
    ("two_strategies", "two strategies (`userWithId` missing, then a 50% rollout)"),
    ("hundred_flags", "100 flags for one request (per request)"),
]


def median_ns(case, engine):
    path = f"{CRITERION}/{case}/{engine}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"]


def hundred_flags():
    """The same 100 flags as the criterion bench: a quarter each of plain,
    user-list, rollout and constrained flags; one in ten switched off."""
    features = []
    for index in range(100):
        kind = index % 4
        if kind == 0:
            strategies = []
        elif kind == 1:
            strategies = [{"name": "userWithId", "parameters": {"userIds": "alice,bob,7"}}]
        elif kind == 2:
            strategies = [{"name": "flexibleRollout", "parameters": {
                "rollout": str(index % 100), "stickiness": "default", "groupId": f"flag_{index}"}}]
        else:
            strategies = [{"name": "default", "constraints": [{
                "contextName": "environment", "operator": "IN",
                "values": ["production", "staging"]}]}]
        features.append({"name": f"flag_{index}", "enabled": index % 10 != 9,
                         "strategies": strategies})
    features.append({"name": "kill", "enabled": True, "strategies": []})
    return {"version": 2, "features": features}


class Host:
    """A release daemon with an admin listener in a temporary directory, the
    flags imported and the demo app deployed with flag injection; everything
    it started is stopped on exit."""

    def __enter__(self):
        self.work = tempfile.mkdtemp(prefix="baton-flags-bench-")
        self.state, self.src = f"{self.work}/state", f"{self.work}/src"
        os.makedirs(self.src)
        for name, token in (("admin.token", ADMIN_TOKEN), ("flags.token", FLAGS_TOKEN)):
            path = f"{self.work}/{name}"
            with open(path, "w") as f:
                f.write(token)
            os.chmod(path, 0o600)
        self.port, self.admin = free_port(), free_port()
        self.daemon = subprocess.Popen(
            [f"{BIN}/baton", "daemon", "--http", f"127.0.0.1:{self.port}",
             "--admin", f"127.0.0.1:{self.admin}",
             "--admin-token-file", f"{self.work}/admin.token",
             "--flags-token-file", f"{self.work}/flags.token",
             "--state-dir", self.state],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 15
        while not os.path.exists(f"{self.state}/baton.sock"):
            if time.time() > deadline:
                raise SystemExit("the daemon did not start")
            time.sleep(0.05)
        with open(f"{self.work}/flags.json", "w") as f:
            json.dump(hundred_flags(), f)
        self.baton("flags", "import", f"{self.work}/flags.json")
        with open(f"{self.src}/server", "w") as f:
            f.write(f"#!/bin/sh\nVERSION=$(cat VERSION)\nexport VERSION\nexec {BIN}/demo-app\n")
        os.chmod(f"{self.src}/server", 0o755)
        open(f"{self.src}/VERSION", "w").write("v1\n")
        open(f"{self.src}/baton.toml", "w").write(f'''[app]
name = "flagged"
root = "{self.work}/root"
[web]
command = "./server"
health_interval = "50ms"
keep_warm = "0s"
[flags]
inject = true
targeting_key = "cookie:user_id"
''')
        self.baton("deploy", "--config", f"{self.src}/baton.toml")
        return self

    def baton(self, *args):
        out = subprocess.run([f"{BIN}/baton", "--state-dir", self.state, *args],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"baton {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out

    def __exit__(self, *_):
        stop_all(self.daemon, self.work)


def wrk(host, path, connections):
    """req/s, p50 and p99 (ms) of POSTing a user's context to `path`."""
    script = f"{host.work}/post.lua"
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                f'wrk.headers["Authorization"] = "Bearer {FLAGS_TOKEN}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.body = \'{"context": {"targetingKey": "user-42", '
                '"environment": "production"}}\'\n')
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{WRK_SECONDS}s", "--latency", "-s", script,
         f"http://127.0.0.1:{host.admin}{path}"],
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def percentile(q):
        value, unit = re.search(rf"^\s+{q}%\s+([0-9.]+)(us|ms|s)$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, percentile(50), percentile(99), int(non_2xx.group(1)) if non_2xx else 0


def kill_switch(host):
    """Alternates `flags off kill` / `flags on kill` while a client loops
    through the proxy; returns per-off measurements."""
    stop, answers, lock = threading.Event(), [], threading.Lock()

    def loop():
        conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
        while not stop.is_set():
            sent = time.monotonic()
            conn.request("GET", "/headers", headers={"Cookie": "user_id=alice"})
            body = json.loads(conn.getresponse().read())
            received = time.monotonic()
            flags = ",".join(body.get("x-baton-flags", []))
            with lock:
                answers.append((sent, received, "kill=on" in flags))

    thread = threading.Thread(target=loop)
    thread.start()
    runs = []
    try:
        time.sleep(0.5)
        for _ in range(TOGGLES):
            started = time.monotonic()
            host.baton("flags", "off", "kill")
            returned = time.monotonic()
            time.sleep(0.15)
            with lock:
                after = [a for a in answers if a[0] >= returned]
                first_off = next((a[1] for a in answers
                                  if a[1] >= started and not a[2]), None)
            runs.append({
                "command_ms": (returned - started) * 1000,
                "first_off_after_return_ms": (first_off - returned) * 1000 if first_off else None,
                "on_after_return": sum(1 for a in after if a[2]),
                "answers_after_return": len(after),
            })
            host.baton("flags", "on", "kill")
            time.sleep(0.15)
    finally:
        stop.set()
        thread.join()
    return runs


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    cpu = cpu_model()
    lines = ["<!-- begin flags -->",
             "## Feature flags",
             "",
             "Written by `bench/flags.sh`.",
             "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}",
             f"- load average before the run: {' '.join(open('/proc/loadavg').read().split()[:3])}",
             "",
             "### Evaluation, ns (criterion medians, same run, same flags and context)",
             "",
             "Each engine answers `is_enabled` for user 7 in production: baton's `Features`,"
             " and `unleash-yggdrasil` (Unleash's Rust engine, from crates.io) loaded with the"
             " same client features JSON. Both must agree on every answer before timing.",
             "",
             "| case | baton | yggdrasil | baton / yggdrasil |",
             "|---|---:|---:|---:|"]
    for case, label in CASES:
        ours, theirs = median_ns(case, "baton"), median_ns(case, "yggdrasil")
        lines.append(f"| {label} | {ours:,.1f} | {theirs:,.1f} | {ours / theirs:.2f} |")
    per_flag = median_ns("hundred_flags", "baton") / 100
    lines += ["", f"100 flags for one request: {per_flag:.1f} ns per flag in baton.", ""]

    with Host() as host:
        lines += ["### OFREP on the admin listener (release build, wrk -t1, "
                  f"{WRK_SECONDS}s, one context, 101 flags)", "",
                  "| request | connections | req/s | p50 | p99 | non-2xx |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, path in (("bulk `POST /ofrep/v1/evaluate/flags`", "/ofrep/v1/evaluate/flags"),
                            ("one flag `POST /ofrep/v1/evaluate/flags/flag_2`",
                             "/ofrep/v1/evaluate/flags/flag_2")):
            for connections in (16,):
                rate, p50, p99, bad = wrk(host, path, connections)
                lines.append(f"| {label} | {connections} | {rate:,.0f} | {p50:.2f} ms "
                             f"| {p99:.2f} ms | {bad} |")
        lines += ["",
                  "The admin listener runs on the daemon's control thread (one core; the proxy"
                  " has the worker threads), and wrk shares the machine. Evaluating the 101"
                  " flags is a few microseconds of a bulk request; most of the rest is building"
                  " and writing its JSON answer (one object per flag)."]
        runs = kill_switch(host)
    commands = [run["command_ms"] for run in runs]
    first = [run["first_off_after_return_ms"] for run in runs
             if run["first_off_after_return_ms"] is not None]
    violations = sum(run["on_after_return"] for run in runs)
    checked = sum(run["answers_after_return"] for run in runs)
    lines += ["",
              f"### Kill switch ({len(runs)} times `baton flags off kill`, a client looping"
              " `GET /headers` through the proxy with flag injection)",
              "",
              "| measure | median | p95 | max |",
              "|---|---:|---:|---:|",
              f"| `baton flags off` wall time (CLI start to exit: socket, compile, SQLite commit"
              f" with fsync, swap) | {statistics.median(commands):.1f} ms"
              f" | {percentile(commands, 95):.1f} ms | {max(commands):.1f} ms |",
              f"| from `off` returning to the first proxied answer reading `off`"
              f" | {statistics.median(first):.2f} ms | {percentile(first, 95):.2f} ms"
              f" | {max(first):.2f} ms |",
              "",
              f"Answers to requests sent after `off` returned that still read `on`: **{violations}**"
              f" of {checked:,}. The swap happens before the command answers, so propagation"
              " from the swap to the proxy is the next request: a negative time above means the"
              " first `off` answer reached the client before the CLI had exited. Goal: under"
              " 20 ms.",
              "<!-- end flags -->", ""]
    write_section(OUT, "flags", "\n".join(lines))


main()
