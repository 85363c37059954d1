//! systemd integration: readiness notification and socket activation.
//!
//! What ARCHITECTURE.md ("Processes": listeners on :80/:443 or systemd
//! sockets) promises, checked from outside the real binary without systemd
//! itself:
//! - with `NOTIFY_SOCKET` set, the daemon sends `READY=1` only once it serves
//!   (its control API and its listener answer at that moment), and
//!   `STOPPING=1` when SIGTERM arrives, then exits 0;
//! - with `LISTEN_FDS` set, it serves on the passed socket instead of binding
//!   one, and reports it as inherited;
//! - a connection made while no daemon runs waits in the passed socket's
//!   backlog and is answered by the next daemon (the point of socket
//!   activation: a restart refuses no connection);
//! - a passed fd that is not a listening TCP socket is a clear startup error.
//!
//! systemd's side is played by a few lines of `python3 -c`: it binds the
//! socket, puts it on fd 3, sets `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`
//! and exec()s the daemon (exec keeps the pid, so `LISTEN_PID` matches).
//! Every process runs in a process group of its own and is SIGKILLed with it
//! on every path; every wait has a deadline; nothing asserts on speed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use baton_api::{Client, DaemonInfo};
use baton_testkit::{App, CommandOutput, binary};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpStream, UnixDatagram};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest a test waits for something the daemon does promptly.
const SOON: Duration = Duration::from_secs(15);
/// How long a stopping daemon may take to exit, or a request to be answered,
/// before the test gives up.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// systemd's part for one daemon: binds 127.0.0.1:0, prints the port, then
/// exec()s `argv[1:]` with the socket on fd 3 and `LISTEN_*` set.
const ACTIVATE: &str = r#"
import os, socket, sys
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
print(listener.getsockname()[1], flush=True)
os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 1)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
os.execv(sys.argv[1], sys.argv[1:])
"#;

/// systemd's part across a restart: binds 127.0.0.1:0 and keeps the socket
/// open itself; starts `argv[1:]` (socket on fd 3) as a child, waits for it
/// to exit, then on a `start` line on stdin starts a second one on the same
/// socket. Reports `port N`, `started PID` and `exited CODE` on stdout.
const RESTART: &str = r#"
import os, socket, sys
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
print("port", listener.getsockname()[1], flush=True)
for generation in range(2):
    if generation and sys.stdin.readline().strip() != "start":
        sys.exit("launcher: expected 'start' on stdin")
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(listener.fileno(), 3)
            os.set_inheritable(3, True)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
            os.execv(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)
    print("started", pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("exited", os.waitstatus_to_exitcode(status), flush=True)
"#;

/// A bad systemd: puts the regular file `argv[1]` on fd 3, sets `LISTEN_*`
/// as if it were a socket, and exec()s `argv[2:]`.
const PASS_A_FILE: &str = r#"
import os, sys
file = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.dup2(file, 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
os.execv(sys.argv[2], sys.argv[2:])
"#;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// `READY=1` arrives only once the daemon serves: at that moment one
/// control API call (no retry) answers and its listener answers HTTP. On
/// SIGTERM `STOPPING=1` arrives and the daemon exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_is_notified_when_serving() -> anyhow::Result<()> {
    let temp = temp_dir()?;
    let notify_path = temp.path().join("notify.sock");
    let notifications = UnixDatagram::bind(&notify_path)
        .with_context(|| format!("binding {}", notify_path.display()))?;
    let state = temp.path().join("state");
    let mut command = baton_command(&state);
    command
        .args(["--http", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &notify_path);
    let mut daemon = Group::spawn(command, &temp.path().join("daemon.log"))?;
    let outcome = async {
        let before = receive_until(&notifications, "READY=1").await?;
        ensure!(
            !before.iter().any(|message| message.contains("STOPPING=1")),
            "STOPPING=1 before READY=1: {before:?}"
        );
        // Serving means both sides answer right now, without a retry.
        let info = Client::new(state.join("baton.sock"))
            .daemon_info()
            .await
            .context("READY=1 was sent but the control API does not answer")?;
        ensure!(info.pid == daemon.pid, "daemon_info names pid {}", info.pid);
        let address = only_listener(&info, false)?;
        let reply = get(address)
            .await
            .context("READY=1 was sent but the HTTP listener does not answer")?;
        ensure!(reply.status == 404, "a request with no route got {reply:?}");

        daemon.signal(Signal::SIGTERM);
        receive_until(&notifications, "STOPPING=1").await?;
        let status = daemon.wait_exit(EXIT_DEADLINE).await?;
        ensure!(status.success(), "the daemon exited with {status}");
        Ok(())
    }
    .await;
    daemon.explain(outcome)
}

/// Started with a listening socket on fd 3 and no `--http`, the daemon
/// serves on that socket (reported as inherited) and routes through it.
#[tokio::test(flavor = "multi_thread")]
async fn socket_activation_uses_the_passed_listener() -> anyhow::Result<()> {
    let temp = temp_dir()?;
    let state = temp.path().join("state");
    let mut command = python(ACTIVATE, &state);
    command.stdout(Stdio::piped());
    let mut launcher = Group::spawn(command, &temp.path().join("daemon.log"))?;
    let outcome = async {
        let mut stdout = launcher.stdout()?;
        let port: u16 = next_line(&mut stdout)
            .await?
            .parse()
            .context("the launcher printed no port")?;
        let socket = state.join("baton.sock");
        let info = launcher.wait_for_control(&socket).await?;
        ensure!(
            info.pid == launcher.pid,
            "the daemon is not the exec()ed launcher"
        );
        let address = only_listener(&info, true)?;
        ensure!(
            address == SocketAddr::from(([127, 0, 0, 1], port)),
            "the daemon listens on {address}, not the passed 127.0.0.1:{port}"
        );

        let app = App::start("v1").await?;
        route_deploy(&socket, &app).await?;
        let reply = get(address).await?;
        ensure!(
            reply.status == 200 && reply.header("x-version") == Some("v1"),
            "through the passed socket: {reply:?}"
        );

        launcher.signal(Signal::SIGTERM);
        let status = launcher.wait_exit(EXIT_DEADLINE).await?;
        ensure!(status.success(), "the daemon exited with {status}");
        Ok(())
    }
    .await;
    launcher.explain(outcome)
}

/// The launcher keeps its own copy of the socket across a daemon restart. A
/// request sent while no daemon runs is not refused: it waits in the backlog
/// and the second daemon (routes restored from the state directory) answers
/// it.
#[tokio::test(flavor = "multi_thread")]
async fn connections_wait_in_the_backlog_across_a_restart() -> anyhow::Result<()> {
    let temp = temp_dir()?;
    let state = temp.path().join("state");
    let mut command = python(RESTART, &state);
    command
        .args(["--drain-timeout", "5s", "--idle-grace", "1s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut launcher = Group::spawn(command, &temp.path().join("daemon.log"))?;
    let outcome = async {
        let mut stdin = launcher.stdin()?;
        let mut stdout = launcher.stdout()?;
        let port: u16 = field(&next_line(&mut stdout).await?, "port")?
            .parse()
            .context("the launcher printed no port")?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let first = daemon_pid(&next_line(&mut stdout).await?)?;
        let socket = state.join("baton.sock");
        launcher.wait_for_control(&socket).await?;
        let app = App::start("v1").await?;
        route_deploy(&socket, &app).await?;
        let reply = get(address).await?;
        ensure!(
            reply.status == 200 && reply.header("x-version") == Some("v1"),
            "before the restart: {reply:?}"
        );

        signal_pid(first, Signal::SIGTERM);
        let exited = next_line(&mut stdout).await?;
        ensure!(exited == "exited 0", "the first daemon: {exited:?}");
        ensure!(
            Client::new(&socket).daemon_info().await.is_err(),
            "a daemon still answers after the first one exited"
        );

        // No daemon runs: the connection completes in the kernel's backlog.
        let mut stream = tokio::time::timeout(SOON, TcpStream::connect(address))
            .await
            .context("connecting while no daemon runs timed out")?
            .context("connecting while no daemon runs was refused")?;
        send_get(&mut stream)
            .await
            .context("sending the request while no daemon runs")?;

        stdin.write_all(b"start\n").await?;
        stdin.flush().await?;
        let second = daemon_pid(&next_line(&mut stdout).await?)?;
        let reply = read_reply(stream)
            .await
            .context("the request sent between the daemons got no answer")?;
        ensure!(
            reply.status == 200 && reply.header("x-version") == Some("v1"),
            "the request sent between the daemons got {reply:?}"
        );

        let info = launcher.wait_for_control(&socket).await?;
        ensure!(info.pid == second, "daemon_info names pid {}", info.pid);
        ensure!(only_listener(&info, true)? == address, "{info:?}");
        signal_pid(second, Signal::SIGTERM);
        let exited = next_line(&mut stdout).await?;
        ensure!(exited == "exited 0", "the second daemon: {exited:?}");
        let status = launcher.wait_exit(EXIT_DEADLINE).await?;
        ensure!(status.success(), "the launcher exited with {status}");
        Ok(())
    }
    .await;
    launcher.explain(outcome)
}

/// `LISTEN_FDS=1` with a regular file on fd 3: the daemon refuses to start
/// (rather than falling back to `--http`) and says the passed sockets are at
/// fault.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_inherited_socket_is_a_clear_error() -> anyhow::Result<()> {
    let temp = temp_dir()?;
    let state = temp.path().join("state");
    let log = temp.path().join("daemon.log");
    let mut command = Command::new("python3");
    command
        .args(["-c", PASS_A_FILE])
        .arg(temp.path().join("not-a-socket"))
        .arg(binary("baton"))
        .args(["daemon", "--http", "127.0.0.1:0", "--state-dir"])
        .arg(&state);
    clean_env(&mut command);
    let mut daemon = Group::spawn(command, &log)?;
    let outcome = async {
        let status = daemon
            .wait_exit(SOON)
            .await
            .context("the daemon started despite a regular file on fd 3")?;
        ensure!(!status.success(), "the daemon exited with {status}");
        let stderr = daemon.logs();
        ensure!(
            stderr.contains("LISTEN_FDS") && stderr.contains("systemd"),
            "the error does not name LISTEN_FDS and systemd:\n{stderr}"
        );
        ensure!(
            stderr.contains("fd 3"),
            "the error does not name fd 3:\n{stderr}"
        );
        Ok(())
    }
    .await;
    daemon.explain(outcome)
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// A process started as the leader of a process group of its own, with its
/// stderr in a log file; the whole group is SIGKILLed on drop unless the
/// process was already reaped.
struct Group {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Group {
    fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Group> {
        let stderr =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .context("starting the daemon")?;
        let pid = child.id().context("the daemon exited at once")?;
        Ok(Group {
            child,
            pid,
            log: log.to_path_buf(),
        })
    }

    fn stdout(&mut self) -> anyhow::Result<Lines<BufReader<ChildStdout>>> {
        let stdout = self.child.stdout.take().context("no stdout pipe")?;
        Ok(BufReader::new(stdout).lines())
    }

    fn stdin(&mut self) -> anyhow::Result<ChildStdin> {
        self.child.stdin.take().context("no stdin pipe")
    }

    /// Sends `signal` to the group's leader only.
    fn signal(&self, signal: Signal) {
        signal_pid(self.pid, signal);
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    async fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .with_context(|| format!("still running after {deadline:?}"))?
            .context("waiting for the process")
    }

    /// Waits until the control API at `socket` answers.
    async fn wait_for_control(&mut self, socket: &Path) -> anyhow::Result<DaemonInfo> {
        let client = Client::new(socket);
        let give_up = tokio::time::Instant::now() + SOON;
        loop {
            if let Ok(info) = client.daemon_info().await {
                return Ok(info);
            }
            if self.exited() {
                bail!("the daemon exited before its control API answered");
            }
            if tokio::time::Instant::now() >= give_up {
                bail!("the control API did not answer within {SOON:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Passes `outcome` on, printing the daemon's log first if it failed.
    fn explain<T>(&self, outcome: anyhow::Result<T>) -> anyhow::Result<T> {
        if outcome.is_err() {
            eprintln!(
                "--- daemon log ({}) ---\n{}",
                self.log.display(),
                self.logs()
            );
        }
        outcome
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // A reaped process's id may already belong to someone else.
        if !self.exited()
            && let Ok(pid) = i32::try_from(self.pid)
        {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn signal_pid(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// `baton daemon --state-dir STATE` with a clean environment.
fn baton_command(state: &Path) -> Command {
    let mut command = Command::new(binary("baton"));
    command.arg("daemon").arg("--state-dir").arg(state);
    clean_env(&mut command);
    command
}

/// `python3 -c SCRIPT baton daemon --state-dir STATE` with a clean environment.
fn python(script: &str, state: &Path) -> Command {
    let mut command = Command::new("python3");
    command
        .args(["-c", script])
        .arg(binary("baton"))
        .arg("daemon")
        .arg("--state-dir")
        .arg(state);
    clean_env(&mut command);
    command
}

/// Nothing the test itself inherited from systemd or a developer's shell
/// reaches the daemon.
fn clean_env(command: &mut Command) {
    for name in [
        "BATON_SOCKET",
        "BATON_STATE_DIR",
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "LISTEN_FDS_FIRST_FD",
    ] {
        command.env_remove(name);
    }
    command
        .env(
            "RUST_LOG",
            std::env::var("BATON_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null());
}

/// `baton --socket SOCKET route deploy web --target APP --version LABEL`,
/// which must succeed (up to 120 s).
async fn route_deploy(socket: &Path, app: &App) -> anyhow::Result<CommandOutput> {
    let target = app.target();
    let mut command = Command::new(binary("baton"));
    command
        .arg("--socket")
        .arg(socket)
        .args(["route", "deploy", "web", "--target", &target])
        .args(["--version", app.version()])
        .env_remove("BATON_SOCKET")
        .env_remove("BATON_STATE_DIR")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .context("baton route deploy did not finish within 120 s")??;
    CommandOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
    .success()
}

// ---------------------------------------------------------------------------
// HTTP, by hand: the request must be on the wire before a daemon runs
// ---------------------------------------------------------------------------

/// A response's status and headers.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Reply {
    /// The value of header `name` (first one, case-insensitive name).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// `GET /` on a connection of its own (bounded by [`EXIT_DEADLINE`]).
async fn get(address: SocketAddr) -> anyhow::Result<Reply> {
    let mut stream = tokio::time::timeout(EXIT_DEADLINE, TcpStream::connect(address))
        .await
        .with_context(|| format!("connecting to {address} timed out"))?
        .with_context(|| format!("connecting to {address}"))?;
    send_get(&mut stream).await?;
    read_reply(stream).await
}

/// Writes `GET /` asking the server to close the connection after answering.
async fn send_get(stream: &mut TcpStream) -> anyhow::Result<()> {
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    tokio::time::timeout(EXIT_DEADLINE, stream.write_all(request))
        .await
        .context("sending the request timed out")??;
    Ok(())
}

/// Reads the response until the server closes (bounded by [`EXIT_DEADLINE`])
/// and parses its head.
async fn read_reply(mut stream: TcpStream) -> anyhow::Result<Reply> {
    let mut response = Vec::new();
    tokio::time::timeout(EXIT_DEADLINE, stream.read_to_end(&mut response))
        .await
        .with_context(|| format!("no complete response within {EXIT_DEADLINE:?}"))?
        .context("reading the response")?;
    let text = String::from_utf8_lossy(&response);
    let (head, _body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("not an HTTP response: {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no HTTP/1.1 status line in {head:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect();
    Ok(Reply { status, headers })
}

// ---------------------------------------------------------------------------
// Reading what the processes say
// ---------------------------------------------------------------------------

fn temp_dir() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("baton-systemd-")
        .tempdir()?)
}

/// Receives notifications until one contains `wanted` (bounded by
/// [`SOON`]); returns the ones before it.
async fn receive_until(socket: &UnixDatagram, wanted: &str) -> anyhow::Result<Vec<String>> {
    let give_up = tokio::time::Instant::now() + SOON;
    let mut seen = Vec::new();
    let mut buffer = vec![0; 4096];
    loop {
        let length = tokio::time::timeout_at(give_up, socket.recv(&mut buffer))
            .await
            .with_context(|| format!("no {wanted} within {SOON:?}; got {seen:?}"))?
            .context("receiving a notification")?;
        let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if message.lines().any(|line| line == wanted) {
            return Ok(seen);
        }
        seen.push(message);
    }
}

/// The next line the launcher prints (bounded by [`EXIT_DEADLINE`]).
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<String> {
    let line = tokio::time::timeout(EXIT_DEADLINE, lines.next_line())
        .await
        .context("the launcher printed nothing in time")??
        .context("the launcher closed its stdout")?;
    Ok(line.trim().to_string())
}

/// `VALUE` of a `KEY VALUE` line.
fn field<'a>(line: &'a str, key: &str) -> anyhow::Result<&'a str> {
    line.strip_prefix(key)
        .and_then(|rest| rest.strip_prefix(' '))
        .with_context(|| format!("expected `{key} …` from the launcher, got {line:?}"))
}

/// The pid of a `started PID` line.
fn daemon_pid(line: &str) -> anyhow::Result<u32> {
    field(line, "started")?
        .parse()
        .with_context(|| format!("bad pid in {line:?}"))
}

/// The address of the daemon's only listener, a plain-HTTP one whose
/// `inherited` flag is `inherited`.
fn only_listener(info: &DaemonInfo, inherited: bool) -> anyhow::Result<SocketAddr> {
    let [listener] = info.listeners.as_slice() else {
        bail!("expected one listener, got {:?}", info.listeners);
    };
    ensure!(
        listener.protocol == "http" && listener.inherited == inherited,
        "expected an http listener with inherited = {inherited}, got {listener:?}"
    );
    listener
        .address
        .parse()
        .with_context(|| format!("bad listener address {:?}", listener.address))
}
