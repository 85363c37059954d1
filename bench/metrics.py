"""Metrics benchmark: what a Prometheus scrape costs and carries, baton's
/metrics against HAProxy's built-in exporter, with the same services behind
each (SERVICES routes to the demo app, traffic on each), in one run; and
baton's proxy throughput with and without a scrape every 100 ms, which
shows whether exposing the numbers taxes the requests.

    python3 bench/metrics.py BIN_DIR BENCHMARKS.md
"""
import http.client, os, platform, statistics, subprocess, sys, tempfile, time, datetime

from bench_report import cpu_model, free_port, stop_all, write_section

SERVICES = int(os.environ.get("SERVICES", "20"))
SCRAPES = int(os.environ.get("SCRAPES", "300"))
RUNS = int(os.environ.get("RUNS", "3"))
WRK_DURATION = os.environ.get("DURATION", "8s")
TOKEN = "bench-admin-token-0123456789abcdef"


def wait_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def send_traffic(port, hosts, per_host=50):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for host in hosts:
        for _ in range(per_host):
            conn.request("GET", "/fixed", headers={"Host": host})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (host, response.status)
    conn.close()


def scrape_times(port, path, headers):
    """Milliseconds of each of SCRAPES scrapes over one keep-alive
    connection, the last body's size and its sample count."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times, body = [], b""
    for _ in range(SCRAPES):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, response.status
    conn.close()
    samples = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    return times, len(body), samples


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wrk_rps(port, host, scrape=None):
    """wrk's requests/s over keep-alive, 64 connections; with `scrape`,
    a scraper hits /metrics every 100 ms meanwhile."""
    scraper = None
    if scrape:
        scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(scrape[0]), scrape[1], TOKEN])
    out = subprocess.run(["wrk", "-t2", "-c64", "-d", WRK_DURATION, "-H", f"Host: {host}",
                          f"http://127.0.0.1:{port}/fixed"], capture_output=True, text=True).stdout
    if scraper:
        scraper.terminate()
        scraper.wait()
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit(f"wrk printed:\n{out}")


SCRAPER = """
import http.client, sys, time
port, path, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
while True:
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    conn.getresponse().read()
    time.sleep(0.1)
"""


def main():
    bin_dir, out_path = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="baton-metrics-bench-")
    procs = []
    hosts = [f"svc{i}.test" for i in range(SERVICES)]
    upstream = free_port()
    procs.append(subprocess.Popen([f"{bin_dir}/demo-app"], cwd=work, env={
        **os.environ, "PORT": str(upstream), "VERSION": "bench", "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_port(upstream)

    token_file = os.path.join(work, "admin.token")
    with open(token_file, "w") as f:
        f.write(TOKEN)
    os.chmod(token_file, 0o600)
    baton_port, admin_port = free_port(), free_port()
    env = {**os.environ, "BATON_STATE_DIR": os.path.join(work, "state"), "RUST_LOG": "warn"}
    daemon = subprocess.Popen([f"{bin_dir}/baton", "daemon", "--http", f"127.0.0.1:{baton_port}",
                               "--admin", f"127.0.0.1:{admin_port}", "--admin-token-file", token_file],
                              env=env, cwd=work, stderr=open(os.path.join(work, "baton.log"), "w"),
                              start_new_session=True)
    wait_port(baton_port)
    wait_port(admin_port)
    for i, host in enumerate(hosts):
        subprocess.run([f"{bin_dir}/baton", "route", "deploy", f"svc{i}", "--target",
                        f"127.0.0.1:{upstream}", "--host", host], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    haproxy_port, haproxy_stats = free_port(), free_port()
    backends = "\n".join(
        f"backend svc{i}\n    server s1 127.0.0.1:{upstream}\n" for i in range(SERVICES))
    rules = "\n".join(f"    use_backend svc{i} if {{ hdr(host) -i {host} }}"
                      for i, host in enumerate(hosts))
    config = f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend stats
    bind 127.0.0.1:{haproxy_stats}
    http-request use-service prometheus-exporter if {{ path /metrics }}
frontend web
    bind 127.0.0.1:{haproxy_port}
{rules}
{backends}"""
    cfg = os.path.join(work, "haproxy.cfg")
    open(cfg, "w").write(config)
    procs.append(subprocess.Popen(["haproxy", "-f", cfg], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    wait_port(haproxy_port)
    wait_port(haproxy_stats)

    try:
        send_traffic(baton_port, hosts)
        send_traffic(haproxy_port, hosts)
        rows = {}
        for name, port, headers in [
            ("baton", admin_port, {"Authorization": f"Bearer {TOKEN}"}),
            ("HAProxy", haproxy_stats, {}),
        ]:
            medians, p99s = [], []
            for _ in range(RUNS):
                times, size, samples = scrape_times(port, "/metrics", headers)
                medians.append(statistics.median(times))
                p99s.append(quantile(times, 0.99))
            latency = any("_bucket{" in s for s in samples)
            rows[name] = (statistics.median(medians), statistics.median(p99s), size, len(samples),
                          latency)
        plain, scraped = [], []
        for _ in range(RUNS):
            plain.append(wrk_rps(baton_port, hosts[0]))
            scraped.append(wrk_rps(baton_port, hosts[0], (admin_port, "/metrics")))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        stop_all(daemon, work)

    haproxy_version = subprocess.run(["haproxy", "-v"], capture_output=True,
                                     text=True).stdout.split("\n")[0]
    baton, haproxy = rows["baton"], rows["HAProxy"]
    lines = [
        "<!-- begin metrics -->",
        "## Metrics scrapes",
        "",
        f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}. `bench/metrics.sh`: {SERVICES} services behind each proxy, each "
        f"with traffic; {SCRAPES} scrapes of `/metrics` over one keep-alive connection per run, "
        f"{RUNS} runs (medians of the runs' medians and p99s). {haproxy_version}, its built-in "
        "`prometheus-exporter` service.",
        "",
        "| | scrape p50 | scrape p99 | bytes | samples | latency histogram |",
        "|---|---|---|---|---|---|",
    ]
    for name, (p50, p99, size, samples, latency) in rows.items():
        lines.append(f"| {name} | {p50:.2f} ms | {p99:.2f} ms | {size:,} | {samples:,} | "
                     f"{'yes, per version' if latency else 'no'} |")
    lines += [
        "",
        f"baton's scrape time is {baton[0] / haproxy[0]:.2f}x HAProxy's at the median. "
        "HAProxy exposes per-backend averages of response time; baton per-version request "
        "counters by status class, a latency histogram, rollout weights, deploys and "
        "rollbacks, flag evaluations and per-process CPU/RSS.",
        "",
        f"Proxy throughput through baton (wrk, 64 keep-alive connections, {WRK_DURATION}, "
        f"median of {RUNS}): {statistics.median(plain):,.0f} req/s without scrapes, "
        f"{statistics.median(scraped):,.0f} req/s with a scrape every 100 ms "
        f"({statistics.median(scraped) / statistics.median(plain):.2f}x).",
        "<!-- end metrics -->",
        "",
    ]
    write_section(out_path, "metrics", "\n".join(lines))


if __name__ == "__main__":
    main()
