"""What the benchmark scripts in bench/ share: a free loopback port, the
machine's CPU model, stopping a daemon and everything started under its
work directory, and writing one delimited section of BENCHMARKS.md.

Imported by the scripts beside it (`python3 bench/NAME.py` puts bench/ on
the import path)."""
import os, re, shutil, signal, socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def stop_all(daemon, work):
    """SIGTERM the daemon's process group, then SIGKILL every process whose
    working directory is under `work` (the apps it started), and remove
    `work`."""
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


def write_section(path, name, section):
    """Puts `section` in place of the one between `<!-- begin NAME -->` and
    `<!-- end NAME -->` in `path`, or appends it, and prints it."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n", lambda _: section,
                      text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    open(path, "w").write(text)
    print(section)
