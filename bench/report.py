#!/usr/bin/env python3
"""Turns bench/proxy.sh's raw results into BENCHMARKS.md (stdout): the whole
document, with only the proxy section (between its markers) rewritten, so the
sections other scripts write (bench/deploy.sh's Deploys) are kept."""
import datetime
import os
import platform
import re
import subprocess
import sys

ANALYSIS = """## Reading the numbers

- Loopback on 2 cores: wrk, the proxy and the upstream compete for the same two cores, so every
  proxy reaches only about a third to half of the upstream's direct rate. Compare proxies within a
  row of one run; these machines are noisy (HAProxy's own c=16 figure moved between 49k and 60k
  req/s across runs of the same day).
- About two thirds of baton's CPU is the kernel's loopback TCP path. `strace -c` counts one `recvfrom`
  and one `writev` per request on each side, with `epoll_wait` batched: the same system calls a
  request costs HAProxy. The gap to HAProxy is in the remaining third, baton's user space: hyper's
  client runs each upstream connection as a task of its own, so a request crosses two task hand-offs
  (a channel to the connection task and a oneshot back) that HAProxy's inline state machine does not
  pay, plus per-request header-map work (hop-by-hop removal, `X-Forwarded-*`, a request id) and the
  per-version latency histogram.
- What already moved the numbers: one single-threaded runtime per core instead of a work-stealing
  runtime (0.77 to about 0.9 of HAProxy's req/s at 64 connections, p99 from 2.4x to about 1.2-1.5x
  HAProxy's), and mimalloc (glibc malloc took about 8% of the daemon's CPU).
- Next: drive the upstream connection inside the request's own task (no hand-off), and trim
  header work on the hot path.
"""

results_path, idle_rss_kib, peak_rss_kib, duration = sys.argv[1:5]
profile_path = sys.argv[5] if len(sys.argv) > 5 else None


def to_ms(text):
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text.strip())
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def version(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"


rows = [line.rstrip("\n").split("\t") for line in open(results_path) if line.strip()]
h1 = {(r[1], r[2]): (float(r[3]), to_ms(r[4]), int(r[5])) for r in rows if r[0] == "h1"}
h2 = {r[1]: (float(r[3]), to_ms(r[4])) for r in rows if r[0] == "h2"}
concurrencies = sorted({c for _, c in h1}, key=int)

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

out = []
out.append("Written by `bench/proxy.sh`; every number from here to the Deploys section comes from one run on one machine, "
           "so compare the columns of a row, not runs across machines. Loopback only: the load "
           "generator, the proxy and the upstream share the same cores, which caps every proxy.\n")
out.append(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
out.append(f"- machine: {cpu}, {cores} cores, Linux {platform.release()}")
out.append(f"- tools: {version(['wrk', '--version'])}; {version(['h2load', '--version'])}")
out.append(f"- peers: {version(['haproxy', '-v'])}; {version(['nginx', '-v'])}")
out.append(f"- upstream: the demo app's `/fixed` (3-byte body) over keep-alive; each cell runs {duration}")
out.append("")
out.append("## HTTP/1.1 keep-alive (wrk -t2)\n")
out.append("| connections | target | req/s | p99 | req/s vs direct | req/s vs HAProxy | p99 vs HAProxy | non-2xx |")
out.append("|---:|---|---:|---:|---:|---:|---:|---:|")
for c in concurrencies:
    direct = h1.get(("direct", c))
    haproxy = h1.get(("haproxy", c))
    for name in ["direct", "baton", "haproxy", "nginx"]:
        cell = h1.get((name, c))
        if not cell:
            continue
        rps, p99, errors = cell
        vs_direct = f"{rps / direct[0]:.2f}" if direct else "-"
        vs_haproxy = f"{rps / haproxy[0]:.2f}" if haproxy else "-"
        p99_vs = f"{p99 / haproxy[1]:.2f}" if haproxy and haproxy[1] else "-"
        out.append(f"| {c} | {name} | {rps:,.0f} | {p99:.2f} ms | {vs_direct} | {vs_haproxy} | {p99_vs} | {errors} |")
out.append("")
out.append("## HTTP/2 h2c (h2load -c16 -m10)\n")
out.append("| target | req/s | mean request time | req/s vs HAProxy |")
out.append("|---|---:|---:|---:|")
for name in ["baton", "haproxy", "nginx"]:
    if name in h2:
        rps, mean = h2[name]
        base = h2.get("haproxy")
        ratio = f"{rps / base[0]:.2f}" if base else "-"
        out.append(f"| {name} | {rps:,.0f} | {mean:.2f} ms | {ratio} |")
out.append("")
out.append("## Goals\n")
out.append("| goal | result |")
out.append("|---|---|")
for c in concurrencies:
    b, h, n = h1.get(("baton", c)), h1.get(("haproxy", c)), h1.get(("nginx", c))
    if b and h and n:
        out.append(f"| c={c}: req/s ≥ HAProxy and ≥ nginx | {'met' if b[0] >= h[0] and b[0] >= n[0] else 'not met'}: "
                   f"{b[0] / h[0]:.2f}× HAProxy, {b[0] / n[0]:.2f}× nginx |")
        out.append(f"| c={c}: p99 ≤ HAProxy's | {'met' if b[1] <= h[1] else 'not met'}: {b[1] / h[1]:.2f}× |")
idle_mib = int(idle_rss_kib) / 1024
out.append(f"| idle RSS < 20 MiB | {'met' if idle_mib < 20 else 'not met'}: {idle_mib:.1f} MiB |")
out.append("")
out.append("## baton's memory\n")
out.append(f"- idle, one route: {int(idle_rss_kib) / 1024:.1f} MiB RSS")
out.append(f"- peak under the wrk runs: {int(peak_rss_kib) / 1024:.1f} MiB RSS")
out.append("")
out.append(ANALYSIS)
profile = open(profile_path).read().strip() if profile_path else ""
if profile:
    out.append("## Where baton's time goes\n")
    out.append("`perf record` of the daemon (999 Hz, software clock) under `wrk -t2 -c64`; "
               "percentages of the daemon's own CPU samples.\n")
    out.append("```")
    out.append(profile)
    out.append("```")
    out.append("")


def splice(doc, name, body):
    """`doc` with the section `name` (between its markers) replaced by
    `body`, or `body` appended as that section when it has none."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    start = doc.find(begin)
    stop = doc.find(end, start + 1) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        return doc[:start] + block + doc[stop + len(end):]
    if "<!-- begin " not in doc:
        # Nothing marked (an older BENCHMARKS.md was all proxy output): start over.
        doc = ""
    if not doc.strip():
        doc = "# Benchmarks\n"
    return doc.rstrip("\n") + "\n\n" + block + "\n"


path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "BENCHMARKS.md")
existing = open(path).read() if os.path.exists(path) else ""
sys.stdout.write(splice(existing, "proxy", "\n".join(out)))
