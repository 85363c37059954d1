#!/usr/bin/env python3
"""Turns bench/deploy.sh's raw results into the "Deploys" section of
BENCHMARKS.md, rewriting only that section (between its markers).

    deploy_report.py RESULTS_DIR BENCHMARKS.md
"""
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys

SECTION = "deploys"

ANALYSIS = """### Reading the numbers

- (a) `baton deploy`: the old version serves until the new one has passed its health gate, the route
  moves in one swap, and the old version drains. Client connections belong to the proxy and stay
  open (the probe never had to reconnect), so no request meets a closed connection. A deploy costs
  tail latency but no failed request: the CLI, the daemon's deploy work, the new process's start and
  the proxy's first connections to it all compete with the load for the same two cores.
- (b) restart in place: between the old process's exit and the new one's listen, nginx's connect is
  refused and it answers 502; there is nothing to retry on, the only upstream is the one restarting.
  The demo app binds within a few milliseconds of its spawn, yet each restart fails hundreds of
  requests at this rate; an app that boots in seconds fails proportionally more.
- (c) new port and `nginx -s reload`, old app stopped at once: `nginx -s reload` only signals the
  master and returns. Until the master has read the new configuration, started new workers and told
  the old ones to quit, the old workers keep proxying to the old port, so stopping the old app right
  away turns everything they still take into 502s (connect refused). Written this way, the reload
  deploy fails more requests than the in-place restart.
- (c′) the same with a pause before stopping the old app: the 502s go away, but each reload closes
  every client keep-alive connection (the old workers exit; the probe reconnected all 32 connections
  per reload), and a request written onto a connection as it closes fails (reset, or closed before
  the response). A client that retries idempotent requests would hide those; the probe never retries,
  on purpose.
- baton's own time is mostly health gate. While the new process does not listen yet, a refused check
  is repeated after 10 ms (not after a whole `health_interval`), so the first passing check comes
  within about 10 ms of the app binding; `healthy_after = 2` then needs a second pass one
  `health_interval` later, so the gate costs about one interval plus up to 10 ms (≈ 60 ms at 50 ms).
  The deploy wakes on the last target's healthy verdict (no polling), so healthy → served is the
  route swap plus the first request's trip. Everything else (staging, linking, the seal, the swap, `current`, pruning, the CLI)
  adds up to a few tens of milliseconds here.
- The `seal` stage is a `syncfs` of the app root's file system, so a release that looks complete
  after a crash has its files on disk: it flushes every dirty page of that file system, not only the
  release's, so on a host busy writing to the same disk it can take far longer than here.
- A warm rollback starts no process: its gate is one passing check of the processes still running
  (warm processes need one answer, not `healthy_after`), then the swap.
  A rollback's workers ran before, so they get no crash-loop watch; a warm rollback of an app with
  workers returns as fast once its workers have started.
"""


def splice(doc, name, body):
    """`doc` with the section `name` (between its markers) replaced by
    `body`, or `body` appended as that section when it has none."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    start = doc.find(begin)
    stop = doc.find(end, start + 1) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        return doc[:start] + block + doc[stop + len(end):]
    title = "# Benchmarks\n"
    if "<!-- begin " not in doc and doc.startswith(title) and doc[len(title):].strip():
        # An older BENCHMARKS.md, all of it bench/proxy.sh's: mark it as its section.
        doc = f"{title}\n<!-- begin proxy -->\n{doc[len(title):].strip()}\n<!-- end proxy -->\n"
    if not doc.strip():
        doc = title
    return doc.rstrip("\n") + "\n\n" + block + "\n"


def load(path):
    with open(path) as f:
        return json.load(f)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def fmt_ms(value, digits=0):
    if value != value:  # NaN
        return "-"
    if abs(value) >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:,.{digits}f} ms"


def ratio(a, b):
    return f"{a / b:.1f}×" if b else "-"


def failures(report):
    kinds = {k: v for k, v in report["failures"].items() if v}
    total = sum(kinds.values())
    if not total:
        return "0"
    pct = 100 * total / report["total"] if report["total"] else 0
    detail = ", ".join(f"{v:,} {k.replace('status_', '')}" for k, v in sorted(kinds.items()))
    return f"**{total:,}** ({pct:.2f}%: {detail})"


results, benchmarks = sys.argv[1], sys.argv[2]
meta = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(results, "meta")) if "=" in line)
deploys = int(meta["deploys"])
when = datetime.datetime.fromtimestamp(int(open(os.path.join(results, "date")).read()), datetime.timezone.utc)
load_start = open(os.path.join(results, "loadavg-start")).read().split()[:3]
load_end = open(os.path.join(results, "loadavg-end")).read().split()[:3]


def timed_runs(prefix):
    runs = []
    for path in sorted(glob.glob(os.path.join(results, f"{prefix}-*.json")),
                       key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0])):
        run = load(path)
        run["wall_ms"] = (run["end"] - run["start"]) * 1000
        run["stages"] = {}
        run["report"] = None
        for item in run["events"]:
            event = item.get("event", {})
            if event.get("event") == "stage_finished":
                run["stages"][event["stage"]] = event["duration_ms"]
                if event["stage"] == "stage":
                    run["release"] = event["detail"]
            elif event.get("event") == "succeeded":
                run["report"] = event["report"]
                run["release"] = event["report"]["release"]
        # Time no stage accounts for: before the first event (the CLI, the
        # request, the history record), between two stages (after `link`:
        # the release's seal), after the last one (the CLI's exit).
        times = [item["t"] for item in run["events"]]
        run["gaps"] = {"before the first stage": (times[0] - run["start"]) * 1000 if times else None,
                       "after the last event (CLI exit)": (run["end"] - times[-1]) * 1000 if times else None}
        finished = None
        for item in run["events"]:
            event = item.get("event", {})
            if event.get("event") == "stage_finished":
                finished = (event["stage"], item["t"])
            elif event.get("event") == "stage_started" and finished:
                gap = (item["t"] - finished[1]) * 1000
                key = f"between `{finished[0]}` and `{event['stage']}`"
                run["gaps"][key] = run["gaps"].get(key, 0) + gap
                finished = None
        runs.append(run)
    return runs


def daemon_log():
    """(time, message, fields) of each line of the daemon's log."""
    lines = []
    for line in open(os.path.join(results, "daemon.log")):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        stamp = datetime.datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
        fields = entry.get("fields", {})
        lines.append((stamp, fields.get("message", ""), fields))
    return lines


LOG = daemon_log()
runs = {kind: timed_runs(kind) for kind in ["idle-deploy", "load-deploy", "lag-deploy",
                                            "idle-rollback", "load-rollback", "lag-rollback"]}
version_of = {run["release"]: run["label"] for kind in ["idle-deploy", "load-deploy", "lag-deploy"]
              for run in runs[kind] if run.get("release") and run["label"]}
for kind in ["idle-rollback", "load-rollback", "lag-rollback"]:
    for run in runs[kind]:
        run["label"] = version_of.get(run.get("release"), "")


def healthy_at(run):
    """When the daemon logged the run's release healthy (its last target)."""
    release = run.get("release")
    times = {}
    for stamp, message, fields in LOG:
        if message == "Target is healthy" and fields.get("version") == release and stamp >= run["start"] - 0.01:
            times.setdefault(fields.get("target"), stamp)
    return max(times.values()) if times else None


def first_served(run, poll):
    """The poller's first response from the run's version after the run started."""
    for change in poll["changes"]:
        if change["version"] == run["label"] and change["received"] >= run["start"]:
            return change
    return None


def lags(kind, poll_name):
    poll = load(os.path.join(results, f"poll-{poll_name}.json"))
    rtt = (poll["ended"] - poll["started"]) / max(poll["requests"], 1) * 1000
    out = []
    for run in runs[kind]:
        healthy, change = healthy_at(run), first_served(run, poll)
        if healthy is None or change is None:
            out.append(None)
            continue
        out.append({
            "upper": (change["received"] - healthy) * 1000,
            "lower": ((change["previous_sent"] or change["sent"]) - healthy) * 1000,
            "from_start": (change["received"] - run["start"]) * 1000,
        })
    return out, rtt


boot = {name: load(os.path.join(results, f"boot-{name}.json")) for name in ["idle", "load"]}
app_listen = {k: median([s["listen_ms"] for s in v]) for k, v in boot.items()}
app_healthy = {k: median([s["healthy_ms"] for s in v]) for k, v in boot.items()}

config = open(os.path.join(results, "baton.toml")).read()


def toml_value(key, default):
    for line in config.splitlines():
        if line.split("=")[0].strip() == key:
            return line.split("=", 1)[1].strip().strip('"')
    return default


interval = toml_value("health_interval", "100ms")
healthy_after = int(toml_value("healthy_after", "2"))
interval_ms = float(interval.rstrip("ms")) if interval.endswith("ms") else float(interval.rstrip("s")) * 1000
gate_min = (healthy_after - 1) * interval_ms

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

out = []
out.append("## Deploys\n")
out.append("Written by `bench/deploy.sh` (`bench/deploy_report.py`); every number in this section comes from "
           "one run on one machine. The demo app (one process) is redeployed N times in a row under the same "
           f"load, `baton probe` with {meta['connections']} keep-alive connections to `/` through the front door; "
           "each scenario gets a steady-state probe run first and then one probe run spanning its N deploys "
           "(from 0.5 s before the first to 1 s after the last). Loopback only; the probe, the front door and the "
           "app share the same cores.\n")
out.append(f"- date: {when:%Y-%m-%d %H:%M} UTC")
out.append(f"- machine: {cpu}, {cores} cores, Linux {platform.release()}")
busy = float(load_start[0]) >= 1.0
out.append(f"- load average (1, 5, 15 min) before the run {' '.join(load_start)}"
           + (" — **the machine was busy with other work when this run started; expect noise**" if busy else "")
           + f"; after it {' '.join(load_end)} (which includes the run's own load)")
out.append(f"- baton: commit {meta.get('commit', 'unknown')}, release build")
out.append(f"- N = {deploys} deploys per scenario; steady state {meta['steady']} per scenario; {meta['nginx']}")
out.append(f"- baton's app: `processes = 1`, `health_interval = \"{interval}\"`, `healthy_after = {healthy_after}`, "
           f"`keep_warm = \"{toml_value('keep_warm', '60s')}\"`, no workers; its `server` script execs `demo-app` "
           "with VERSION read from a file (each deploy writes a new one)")
out.append("- nginx: 2 workers, `upstream` with `keepalive 64`, `proxy_http_version 1.1`, defaults otherwise "
           "(`proxy_next_upstream error timeout`)")
out.append("")

out.append("### Failed requests and p99 during deploys\n")
out.append("| scenario | N | requests during deploys | failed during deploys | p99 steady | p99 during deploys | "
           "p99 ratio | max during deploys | connections opened | median time per deploy |")
out.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")


def walls_file(name):
    path = os.path.join(results, f"{name}-walls")
    return [(float(b) - float(a)) * 1000 for a, b in (line.split() for line in open(path) if line.strip())]


def nginx_errors(name):
    """nginx's error log lines during a scenario, counted by message."""
    path = os.path.join(results, f"{name}-nginx-error.log")
    if not os.path.exists(path):
        return ""
    counts = {}
    for line in open(path):
        match = re.match(r"^\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: .*)?$", line.strip())
        if not match or match.group(1) in ("notice", "info"):
            continue
        counts[match.group(2)] = counts.get(match.group(2), 0) + 1
    return "; ".join(f"{count:,} × \"{message}\"" for message, count in sorted(counts.items(), key=lambda kv: -kv[1])[:4])


reload_wait = meta.get("reload_wait", "2")
scenarios = [
    ("(a) `baton deploy`", "a", "a", [r["wall_ms"] for r in runs["load-deploy"]]),
    ("(a) `baton rollback` (warm)", "a", "a-rollback", [r["wall_ms"] for r in runs["load-rollback"]]),
    ("(b) nginx, app restarted in place", "b", "b", walls_file("b")),
    ("(c) nginx, new port, `nginx -s reload`, old app stopped", "c", "c", walls_file("c")),
    (f"(c′) as (c), {reload_wait} s pause before stopping the old app", "c-wait", "c-wait", walls_file("c-wait")),
]
table = {}
for label, steady_name, window_name, walls in scenarios:
    steady = load(os.path.join(results, f"{steady_name}-steady.json"))
    window = load(os.path.join(results, f"{window_name}-window.json"))
    table[window_name] = (steady, window)
    p99s, p99w = steady["latency_ms"]["p99"], window["latency_ms"]["p99"]
    out.append(f"| {label} | {len(walls)} | {window['total']:,} | {failures(window)} | {p99s:.2f} ms | {p99w:.2f} ms | "
               f"{ratio(p99w, p99s)} | {window['latency_ms']['max']:.1f} ms | "
               f"{steady['connections_opened']} → {window['connections_opened']} | {fmt_ms(median(walls))} |")
out.append("")
out.append("\"connections opened\": by the probe in the steady run → in the deploy run; above "
           f"{meta['connections']} means the front door closed client connections under the deploys. "
           "Time per deploy: `baton deploy`/`rollback` command wall time; for nginx from the first command to "
           "the new app answering `/health` through the steps listed (b: stop, start, health; c: start, health, "
           "rewrite, reload, stop; c′ includes its pause).")
out.append("")
out.append("p99 is over every complete response, 5xx included: nginx answers 502 at once when the app is down, "
           "so a restart's failures can pull its p99 down rather than up.\n")
notes = []
for label, _, window_name, _ in scenarios:
    window = table[window_name][1]
    if not window["failures"] or not sum(window["failures"].values()):
        continue
    statuses = ", ".join(f"{count:,} × {code}" for code, count in sorted(window["status_counts"].items(), key=lambda kv: int(kv[0]))
                         if not str(code).startswith("2"))
    errors = "; ".join(f"{count:,} × {message}" for message, count in
                       sorted(window.get("errors", {}).items(), key=lambda kv: -kv[1])[:3])
    nginx = nginx_errors(window_name)
    parts = [part for part in [f"statuses {statuses}" if statuses else "",
                               f"probe errors: {errors}" if errors else "",
                               f"nginx's error log: {nginx}" if nginx else ""] if part]
    notes.append(f"- {label}: " + "; ".join(parts))
if notes:
    out.append("What failed:\n")
    out.extend(notes)
    out.append("")

# baton's own time
idle, loaded = runs["idle-deploy"], runs["load-deploy"]
stages_seen = []
for run in idle + loaded:
    for stage in run["stages"]:
        if stage not in stages_seen:
            stages_seen.append(stage)


def stage_median(group, stage):
    return median([run["stages"].get(stage) for run in group])


def overheads(group, which):
    return median([run["wall_ms"] for run in group]) - app_healthy[which]


out.append("### baton's own time\n")
out.append(f"Medians over N = {deploys} deploys; \"idle\" runs had no probe load, \"under load\" ran inside "
           "(a)'s deploy run above. The bare app's cold start is `./server` (`BOOT_DELAY_MS=0`) spawned "
           f"{meta['boots']} times by a script that polls it: spawn to first accepted TCP connection, and to "
           "the first 200 from `/health`.\n")
out.append("| | idle | under load | goal |")
out.append("|---|---:|---:|---|")
out.append(f"| the bare app: spawn → listening | {fmt_ms(app_listen['idle'], 1)} | {fmt_ms(app_listen['load'], 1)} | |")
out.append(f"| the bare app: spawn → `/health` 200 | {fmt_ms(app_healthy['idle'], 1)} | "
           f"{fmt_ms(app_healthy['load'], 1)} | |")
out.append(f"| `baton deploy` wall time (command start → exit) | {fmt_ms(median([r['wall_ms'] for r in idle]))} | "
           f"{fmt_ms(median([r['wall_ms'] for r in loaded]))} | |")
out.append(f"| daemon's own deploy duration (report `duration_ms`) | "
           f"{fmt_ms(median([r['report']['duration_ms'] for r in idle if r['report']]))} | "
           f"{fmt_ms(median([r['report']['duration_ms'] for r in loaded if r['report']]))} | |")
oi, ol = overheads(idle, "idle"), overheads(loaded, "load")
out.append(f"| **overhead beyond the app's boot** (wall − spawn→health) | **{fmt_ms(oi)}** | **{fmt_ms(ol)}** | "
           f"≤ 300 ms: {'met' if oi <= 300 else 'not met'} idle, {'met' if ol <= 300 else 'not met'} under load |")
gi = stage_median(idle, "boot") - app_healthy["idle"]
gl = stage_median(loaded, "boot") - app_healthy["load"]
out.append(f"| of which health gate (boot stage − the app's spawn→health) | {fmt_ms(gi)} | {fmt_ms(gl)} | |")
out.append(f"| overhead without the gate's configured minimum ({healthy_after - 1} × {interval} = {gate_min:.0f} ms) | "
           f"{fmt_ms(oi - gate_min)} | {fmt_ms(ol - gate_min)} | |")
out.append("")
out.append("Per stage (from `baton deploy --json`; medians, and the slowest in brackets):\n")
out.append("| stage | idle | under load |")
out.append("|---|---:|---:|")
for stage in stages_seen:
    vi = [r["stages"].get(stage) for r in idle if stage in r["stages"]]
    vl = [r["stages"].get(stage) for r in loaded if stage in r["stages"]]
    cell = lambda v: f"{median(v):.0f} ms ({max(v)} ms)" if v else "-"
    out.append(f"| `{stage}` | {cell(vi)} | {cell(vl)} |")
gaps_seen = []
for run in idle + loaded:
    for key in run["gaps"]:
        if key not in gaps_seen:
            gaps_seen.append(key)
for key in gaps_seen:
    vi = [r["gaps"][key] for r in idle if r["gaps"].get(key) is not None]
    vl = [r["gaps"][key] for r in loaded if r["gaps"].get(key) is not None]
    if max(vi + vl, default=0) < 1:
        continue
    cell = lambda v: f"{median(v):.0f} ms ({max(v):.0f} ms)" if v else "-"
    note = " (the release's seal: `syncfs`, marker, SQLite row)" if "`link` and" in key else ""
    out.append(f"| outside any stage: {key}{note} | {cell(vi)} | {cell(vl)} |")
out.append("")

# healthy → first served
li, rtt_i = lags("idle-deploy", "idle-deploy")
ll, rtt_l = lags("lag-deploy", "lag-deploy")


def lag_cell(values, key):
    values = [v[key] for v in values if v]
    if not values:
        return "-"
    return f"{median(values):.1f} ms (max {max(values):.1f})"


upper_i = [v["upper"] for v in li if v]
upper_l = [v["upper"] for v in ll if v]
out.append("### New version healthy → its first served request\n")
out.append("A client-side poller sends `GET /` through baton's proxy over one keep-alive connection, back to back, "
           f"during N = {deploys} more deploys (idle: the idle deploys above; under load: a run of its own with the "
           "same probe load, kept out of the first table because the poller is one more busy client), and keeps the send and receive times of the first response carrying the new "
           "`X-Version`. \"Healthy\" is the daemon's log line `Target is healthy` for the new release's process "
           "(microsecond timestamps, same clock). The lag is bracketed: the upper bound is the first new response's "
           "receive time, the lower bound the send time of the last old one. The route swap itself comes as soon "
           "as the last target's healthy verdict is recorded, before the state write and the old version's "
           "drain (which the `switch` stage's duration includes, so that duration is not the lag).\n")
out.append("| | idle | under load | goal |")
out.append("|---|---:|---:|---|")
out.append(f"| lag, upper bound (median, max) | {lag_cell(li, 'upper')} | {lag_cell(ll, 'upper')} | ≤ 50 ms: "
           f"{'met' if upper_i and max(upper_i) <= 50 else 'not met'} idle, "
           f"{'met' if upper_l and max(upper_l) <= 50 else 'not met'} under load |")
out.append(f"| lag, lower bound (median, max) | {lag_cell(li, 'lower')} | {lag_cell(ll, 'lower')} | |")
out.append(f"| poller round trip (mean) | {rtt_i:.2f} ms | {rtt_l:.2f} ms | |")
missing = sum(1 for v in li + ll if v is None)
if missing:
    out.append(f"| deploys without a measurement | {sum(1 for v in li if v is None)} | "
               f"{sum(1 for v in ll if v is None)} | |")
out.append("")

# warm rollback
ri, rl = runs["idle-rollback"], runs["load-rollback"]
rbi, _ = lags("idle-rollback", "idle-rollback")
rbl, _ = lags("lag-rollback", "lag-rollback")


def warm_count(group):
    return sum(1 for r in group if r["report"] and r["report"]["warm"])


def gate_switch(group):
    return median([r["stages"].get("boot", 0) + r["stages"].get("switch", 0) for r in group])


out.append("### Warm rollback\n")
out.append(f"N = {deploys} `baton rollback` runs back to back, each returning to the release the previous one "
           "left, idle and inside (a)'s rollback run under load; the last row comes from the idle runs and the "
           "poller's run under load. The app has no workers (a rollback's workers get no crash-loop watch in "
           "any case). "
           f"Warm: idle {warm_count(ri)}/{len(ri)}, under load {warm_count(rl)}/{len(rl)}.\n")
out.append("| | idle | under load | goal |")
out.append("|---|---:|---:|---|")
gsi, gsl = gate_switch(ri), gate_switch(rl)
out.append(f"| boot (warm: health gate on the running processes) + switch | {fmt_ms(gsi)} | {fmt_ms(gsl)} | "
           f"≤ 100 ms: {'met' if gsi <= 100 else 'not met'} idle, {'met' if gsl <= 100 else 'not met'} under load |")
for stage in ["boot", "switch", "current", "workers"]:
    out.append(f"| stage `{stage}` | {fmt_ms(stage_median(ri, stage))} | {fmt_ms(stage_median(rl, stage))} | |")
out.append(f"| daemon's duration (report `duration_ms`) | "
           f"{fmt_ms(median([r['report']['duration_ms'] for r in ri if r['report']]))} | "
           f"{fmt_ms(median([r['report']['duration_ms'] for r in rl if r['report']]))} | |")
wi, wl = median([r["wall_ms"] for r in ri]), median([r["wall_ms"] for r in rl])
out.append(f"| `baton rollback` wall time (command start → exit) | {fmt_ms(wi)} | {fmt_ms(wl)} | |")
out.append(f"| command start → first response from the old version (poller) | {lag_cell(rbi, 'from_start')} | "
           f"{lag_cell(rbl, 'from_start')} | |")
out.append("")

out.append(ANALYSIS)
body = "\n".join(out)
doc = open(benchmarks).read() if os.path.exists(benchmarks) else ""
doc = splice(doc, SECTION, body)
with open(benchmarks + ".new", "w") as f:
    f.write(doc)
os.replace(benchmarks + ".new", benchmarks)
print(body)
