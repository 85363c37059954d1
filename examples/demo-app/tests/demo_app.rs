//! Runs the built `demo-app` binary and talks plain HTTP/1.1 to it.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use nix::{sys::signal::Signal, unistd::Pid};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
const IO_DEADLINE: Duration = Duration::from_secs(10);
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// The app under test; killed on drop, whatever path the test took.
struct App {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl App {
    fn start(env: &[(&str, &str)]) -> Result<Self, Box<dyn std::error::Error>> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_demo-app"));
        command
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn()?;

        // Collect stderr so a failing test can show it.
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
            });
        }

        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            thread::spawn(move || {
                let mut lines = BufReader::new(pipe).lines();
                let _ = tx.send(lines.next());
                // Keep draining so the app never blocks on a full pipe.
                for _ in lines {}
            });
        }
        // Build the guard now so the child is killed if the line never comes.
        let mut app = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let line = match rx.recv_timeout(STARTUP_DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => return Err(format!("no listening line within deadline: {other:?}").into()),
        };
        let addr = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?;
        app.addr = addr.parse()?;
        Ok(app)
    }

    fn get(&self, path: &str) -> Result<Response, Box<dyn std::error::Error>> {
        self.request("GET", path, b"")
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Response, Box<dyn std::error::Error>> {
        let mut stream = TcpStream::connect_timeout(&self.addr, IO_DEADLINE)?;
        stream.set_read_timeout(Some(IO_DEADLINE))?;
        stream.set_write_timeout(Some(IO_DEADLINE))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Response::parse(raw)
    }

    fn signal(&self, signal: Signal) -> TestResult {
        let pid = i32::try_from(self.child.id())?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }

    fn wait_exit(&mut self) -> Result<ExitStatus, Box<dyn std::error::Error>> {
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err("app did not exit within deadline".into());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn request_count(&self) -> Result<u64, Box<dyn std::error::Error>> {
        let response = self.get("/requests")?;
        assert_eq!(response.status, 200);
        let json: serde_json::Value = serde_json::from_slice(&response.body)?;
        json["count"]
            .as_u64()
            .ok_or_else(|| format!("bad /requests body {json}").into())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !thread::panicking() {
            return;
        }
        if let Ok(text) = self.stderr.lock() {
            eprintln!("--- demo-app stderr ---\n{text}");
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    /// Body with chunked encoding removed (when complete).
    body: Vec<u8>,
    /// Everything after the head, as received.
    raw_body: Vec<u8>,
}

impl Response {
    fn parse(raw: Vec<u8>) -> Result<Self, Box<dyn std::error::Error>> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("response has no complete head")?;
        let head = std::str::from_utf8(&raw[..end])?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or("empty head")?;
        let status = status_line
            .split(' ')
            .nth(1)
            .ok_or("no status code")?
            .parse()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let raw_body = raw[end + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
        let body = if chunked {
            // A cut-short body (see `/abort`) stays as received.
            dechunk(&raw_body).unwrap_or_else(|_| raw_body.clone())
        } else {
            raw_body.clone()
        };
        Ok(Self {
            status,
            headers,
            body,
            raw_body,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end])?.trim(), 16)?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        raw = raw.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

#[test]
fn serves_routes_and_exits_zero_on_sigterm() -> TestResult {
    let mut app = App::start(&[("VERSION", "v-test")])?;

    let root = app.get("/")?;
    assert_eq!(root.status, 200);
    assert_eq!(root.text(), "hello from v-test\n");
    assert_eq!(root.header("x-version"), Some("v-test"));

    let health = app.get("/health")?;
    assert_eq!(health.status, 200);
    assert_eq!(health.text(), "ok");
    assert_eq!(health.header("x-version"), Some("v-test"));

    let teapot = app.get("/status/418")?;
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.text(), "status 418\n");

    let missing = app.get("/no/such/route")?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-version"), Some("v-test"));

    // `/`, `/status/418` and the 404 count; `/health` and `/requests` do not.
    assert_eq!(app.request_count()?, 3);
    app.get("/fixed")?;
    app.get("/health")?;
    assert_eq!(app.request_count()?, 4);

    app.signal(Signal::SIGTERM)?;
    let status = app.wait_exit()?;
    assert_eq!(status.code(), Some(0), "exit status {status}");
    Ok(())
}

#[test]
fn finishes_in_flight_request_on_sigint() -> TestResult {
    let mut app = App::start(&[])?;
    let addr = app.addr;
    let slow = thread::spawn(move || -> Result<(u16, String), String> {
        let app = Probe(addr);
        let response = app.get("/slow?ms=600").map_err(|e| e.to_string())?;
        Ok((response.status, response.text()))
    });

    // Wait until the slow request has reached the app.
    let deadline = Instant::now() + IO_DEADLINE;
    while app.request_count()? < 1 {
        assert!(Instant::now() < deadline, "slow request never arrived");
        thread::sleep(Duration::from_millis(10));
    }
    app.signal(Signal::SIGINT)?;

    let (status, text) = slow.join().map_err(|_| "slow thread panicked")??;
    assert_eq!(status, 200);
    assert_eq!(text, "slept 600 ms\n");
    let exit = app.wait_exit()?;
    assert_eq!(exit.code(), Some(0), "exit status {exit}");
    Ok(())
}

/// A bare address to make requests from another thread.
struct Probe(SocketAddr);

impl Probe {
    fn get(&self, path: &str) -> Result<Response, Box<dyn std::error::Error>> {
        let mut stream = TcpStream::connect_timeout(&self.0, IO_DEADLINE)?;
        stream.set_read_timeout(Some(IO_DEADLINE))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.0
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Response::parse(raw)
    }
}

#[test]
fn health_follows_env_and_knobs() -> TestResult {
    let app = App::start(&[("HEALTH", "fail")])?;
    assert_eq!(app.get("/health")?.status, 503);
    assert_eq!(app.request("POST", "/knobs/health/ok", b"")?.status, 200);
    assert_eq!(app.get("/health")?.status, 200);
    assert_eq!(app.request("POST", "/knobs/health/fail", b"")?.status, 200);
    assert_eq!(app.get("/health")?.status, 503);
    Ok(())
}

#[test]
fn streams_uploads_events_and_chunks() -> TestResult {
    let app = App::start(&[])?;

    let upload = app.request("POST", "/upload", &vec![7u8; 300_000])?;
    assert_eq!(upload.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&upload.body)?;
    assert_eq!(json["bytes"], 300_000);

    let sse = app.get("/sse?count=3&interval_ms=20")?;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("cache-control"), Some("no-cache"));
    assert_eq!(sse.text(), "data: 1\n\ndata: 2\n\ndata: 3\n\n");

    let chunked = app.get("/chunked?count=2&interval_ms=20")?;
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert_eq!(chunked.text(), "chunk 1\nchunk 2\n");

    let headers = app.get("/headers?x=1")?;
    let json: serde_json::Value = serde_json::from_slice(&headers.body)?;
    assert_eq!(json["_method"], "GET");
    assert_eq!(json["_path"], "/headers?x=1");
    assert_eq!(json["connection"][0], "close");
    Ok(())
}

#[test]
fn exit_dies_without_answering() -> TestResult {
    let mut app = App::start(&[])?;
    let mut stream = TcpStream::connect_timeout(&app.addr, IO_DEADLINE)?;
    stream.set_read_timeout(Some(IO_DEADLINE))?;
    stream.write_all(b"GET /exit HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut raw = Vec::new();
    // A reset is as good as a clean close here; all that matters is no answer.
    let _ = stream.read_to_end(&mut raw);
    assert!(raw.is_empty(), "got an answer: {raw:?}");
    assert_eq!(app.wait_exit()?.code(), Some(1));
    Ok(())
}

#[test]
fn abort_dies_mid_response() -> TestResult {
    let mut app = App::start(&[])?;
    let response = app.get("/abort")?;
    assert_eq!(response.status, 200);
    assert_eq!(response.raw_body, b"8\r\npartial\n\r\n", "no final chunk");
    assert_eq!(app.wait_exit()?.code(), Some(1));
    Ok(())
}

#[test]
fn websocket_echoes_and_closes() -> TestResult {
    let mut app = App::start(&[])?;
    let url = format!("ws://{}/ws", app.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(IO_DEADLINE, async {
            // A session the client closes.
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
            ws.send(Message::text("hi")).await?;
            assert_eq!(ws.next().await.ok_or("ended")??, Message::text("hi"));
            ws.send(Message::binary(vec![1, 2, 3])).await?;
            assert_eq!(
                ws.next().await.ok_or("ended")??,
                Message::binary(vec![1, 2, 3])
            );
            ws.send(Message::Ping("p".into())).await?;
            assert_eq!(ws.next().await.ok_or("ended")??, Message::Pong("p".into()));
            ws.close(None).await?;
            let reply = ws.next().await.ok_or("ended")??;
            assert!(matches!(reply, Message::Close(_)), "got {reply:?}");
            assert!(ws.next().await.is_none());

            // A session still open when the app drains gets Close 1001.
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
            ws.send(Message::text("still here")).await?;
            assert_eq!(
                ws.next().await.ok_or("ended")??,
                Message::text("still here")
            );
            app.signal(Signal::SIGTERM)?;
            match ws.next().await.ok_or("ended")?? {
                Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
                other => panic!("expected Close 1001, got {other:?}"),
            }
            while ws.next().await.is_some() {}
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .await?
    })?;
    assert_eq!(app.wait_exit()?.code(), Some(0));
    Ok(())
}

#[test]
fn fail_health_env_starts_unhealthy() -> TestResult {
    let app = App::start(&[("FAIL_HEALTH", "1")])?;
    let health = app.get("/health")?;
    assert_eq!(health.status, 503);
    assert_eq!(health.text(), "unhealthy");
    // Everything else still answers.
    assert_eq!(app.get("/")?.status, 200);
    assert_eq!(app.request("POST", "/knobs/health/ok", b"")?.status, 200);
    assert_eq!(app.get("/health")?.status, 200);
    Ok(())
}

#[test]
fn error_rate_fails_an_exact_share_of_root_requests() -> TestResult {
    let app = App::start(&[("VERSION", "v-err"), ("ERROR_RATE", "0.25")])?;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = app.get("/")?;
        assert_eq!(response.header("x-version"), Some("v-err"));
        if response.status == 500 {
            assert_eq!(response.text(), "injected error from v-err\n");
        } else {
            assert_eq!(response.text(), "hello from v-err\n");
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses, [200, 200, 200, 500, 200, 200, 200, 500]);
    // Only `/` is affected.
    for _ in 0..4 {
        assert_eq!(app.get("/fixed")?.status, 200);
        assert_eq!(app.get("/health")?.status, 200);
    }
    Ok(())
}

#[test]
fn slow_ms_delays_every_root_request() -> TestResult {
    let app = App::start(&[("SLOW_MS", "300")])?;
    for _ in 0..2 {
        let started = Instant::now();
        let root = app.get("/")?;
        assert_eq!(root.status, 200);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "answered after {:?}",
            started.elapsed()
        );
    }

    let started = Instant::now();
    let slow = app.get("/slow?ms=120")?;
    assert_eq!(slow.text(), "slept 120 ms\n");
    assert!(started.elapsed() >= Duration::from_millis(120));
    Ok(())
}
