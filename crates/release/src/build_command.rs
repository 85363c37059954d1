//! Running build steps and hooks: a shell command in a release directory,
//! its output streamed line by line, everything it started killed at its
//! time limit.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::time::Instant;

use crate::CommandError;

/// How many lines of output an error keeps.
const TAIL_LINES: usize = 20;
/// Output without a newline for this long is handed on as a line anyway, so
/// a command printing one endless line cannot grow memory without bound.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// Runs `sh -c COMMAND` in `dir` and waits for it.
///
/// The environment is exactly `env` (nothing is inherited from the daemon,
/// not even `PATH`), stdin is `/dev/null`, and stdout and stderr share one
/// pipe so their lines arrive in the order they were written. Each line is
/// handed to `on_line` as it arrives. The command runs in its own process
/// group: at `timeout` the whole group gets SIGKILL, and processes it left
/// running in the background are killed when it exits, so no build step
/// outlives its deploy.
pub async fn run_command(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    on_line: impl FnMut(&str) + Send,
) -> Result<(), CommandError> {
    run(command, dir, env, None, timeout, on_line).await
}

/// [`run_command`], with `input` written to the command's stdin (then
/// closed) instead of `/dev/null`. A command that exits without reading
/// all of it is not an error: what it read is its business.
pub async fn run_command_with_input(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    input: Vec<u8>,
    timeout: Duration,
    on_line: impl FnMut(&str) + Send,
) -> Result<(), CommandError> {
    run(command, dir, env, Some(input), timeout, on_line).await
}

async fn run(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    input: Option<Vec<u8>>,
    timeout: Duration,
    mut on_line: impl FnMut(&str) + Send,
) -> Result<(), CommandError> {
    let spawn_error = |source| CommandError::Spawn {
        command: command.to_owned(),
        dir: dir.to_path_buf(),
        source,
    };
    let output_error = |source| CommandError::Output {
        command: command.to_owned(),
        source,
    };
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));

    let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let writer_for_stderr = writer.try_clone().map_err(spawn_error)?;
    let mut shell = tokio::process::Command::new("sh");
    shell
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(writer)
        .stderr(writer_for_stderr)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = shell.spawn();
    // The Command still holds our copies of the pipe's write end; until they
    // are closed the pipe never reports end of file.
    drop(shell);
    let mut child = spawned.map_err(spawn_error)?;
    let mut group = GroupGuard::new(child.id());
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Written beside the output loop, so a command that prints before
        // it reads cannot deadlock against us; a full pipe it never reads
        // breaks when its group is killed, which ends this task.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut output = pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(output_error)?;

    let mut tail = Tail::default();
    let mut lines = LineSplitter::default();
    let mut buf = vec![0u8; 8192];
    let mut status: Option<ExitStatus> = None;
    let mut eof = false;
    while !(eof && status.is_some()) {
        tokio::select! {
            read = output.read(&mut buf), if !eof => match read {
                Ok(0) => {
                    eof = true;
                    if let Some(line) = lines.finish() {
                        tail.deliver(line, &mut on_line);
                    }
                }
                Ok(n) => {
                    for line in lines.push(&buf[..n]) {
                        tail.deliver(line, &mut on_line);
                    }
                }
                Err(source) => return Err(output_error(source)),
            },
            exited = child.wait(), if status.is_none() => match exited {
                Ok(exited) => {
                    status = Some(exited);
                    // Background processes it left would hold the pipe open
                    // and outlive the deploy; they go with it.
                    group.kill();
                }
                Err(source) => return Err(output_error(source)),
            },
            () = tokio::time::sleep_until(deadline) => {
                if status.is_some() {
                    // Only a process that left the group (setsid) can still
                    // hold the pipe; the command itself is done.
                    tracing::warn!(command, "a process the command started still holds its output open");
                    break;
                }
                group.kill();
                let _ = child.wait().await;
                return Err(CommandError::TimedOut {
                    command: command.to_owned(),
                    timeout,
                    tail: tail.into_lines(),
                });
            }
        }
    }
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(CommandError::Failed {
            command: command.to_owned(),
            status: status.to_string(),
            tail: tail.into_lines(),
        }),
        None => Err(output_error(std::io::Error::other(
            "the command's exit status was lost",
        ))),
    }
}

/// Kills the command's process group once: at the time limit, when the
/// command exits, or when the caller drops the future (a cancelled deploy
/// must not leave its build running).
struct GroupGuard {
    group: Option<Pid>,
}

impl GroupGuard {
    fn new(leader: Option<u32>) -> GroupGuard {
        let group = leader
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw);
        GroupGuard { group }
    }

    /// Only once: after the group is gone its id may be reused by an
    /// unrelated process group.
    fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            // ESRCH means the group already ended: nothing to do.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last lines of output, kept for the error message.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn deliver(&mut self, line: String, on_line: &mut impl FnMut(&str)) {
        on_line(&line);
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn into_lines(self) -> Vec<String> {
        self.lines.into()
    }
}

/// Cuts a byte stream into lines. Output is not always UTF-8 (compilers
/// print file names as they are), so bytes are decoded line by line, lossily.
#[derive(Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.partial[start..].iter().position(|b| *b == b'\n') {
            lines.push(decode(&self.partial[start..start + pos]));
            start += pos + 1;
        }
        self.partial.drain(..start);
        while self.partial.len() >= MAX_LINE_BYTES {
            let rest = self.partial.split_off(MAX_LINE_BYTES);
            lines.push(decode(&self.partial));
            self.partial = rest;
        }
        lines
    }

    fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            None
        } else {
            Some(decode(&std::mem::take(&mut self.partial)))
        }
    }
}

fn decode(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
    const GENEROUS: Duration = Duration::from_secs(60);

    fn path_env() -> Vec<(String, String)> {
        vec![("PATH".to_owned(), PATH.to_owned())]
    }

    async fn run(
        command: &str,
        env: &[(String, String)],
        timeout: Duration,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let result = run_command(command, dir.path(), env, timeout, move |line| {
            sink.lock().unwrap().push(line.to_owned());
        })
        .await;
        let lines = seen.lock().unwrap().clone();
        (result, lines)
    }

    #[tokio::test]
    async fn input_arrives_on_stdin_and_a_command_may_leave_it_unread() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let input = b"{\"event\":\"deploy_started\"}\nsecond line".to_vec();
        run_command_with_input(
            "cat",
            dir.path(),
            &path_env(),
            input,
            GENEROUS,
            move |line| {
                sink.lock().unwrap().push(line.to_owned());
            },
        )
        .await
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["{\"event\":\"deploy_started\"}", "second line"]
        );
        let big = vec![b'x'; 1 << 20];
        run_command_with_input("true", dir.path(), &path_env(), big, GENEROUS, |_| {})
            .await
            .unwrap();
    }

    /// Gone or a zombie: either way it no longer runs.
    fn stopped(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    fn wait_stopped(pid: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if stopped(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[tokio::test]
    async fn stdout_and_stderr_lines_stream_in_order() {
        let (result, lines) = run(
            "echo one; echo two >&2; printf 'three\\r\\nfour'",
            &[],
            GENEROUS,
        )
        .await;
        result.unwrap();
        assert_eq!(lines, ["one", "two", "three", "four"]);
    }

    #[tokio::test]
    async fn runs_in_the_given_directory_with_stdin_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker"), "here").unwrap();
        let mut lines = Vec::new();
        run_command(
            "read line || echo stdin-empty; echo \"$(pwd)\"; test -f marker && echo found",
            dir.path(),
            &[],
            GENEROUS,
            |line| lines.push(line.to_owned()),
        )
        .await
        .unwrap();
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            lines,
            ["stdin-empty", &canonical.display().to_string(), "found"]
        );
    }

    #[tokio::test]
    async fn a_failure_reports_status_and_the_last_twenty_lines() {
        let script = "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo line$i; done; exit 3";
        let (result, lines) = run(script, &[], GENEROUS).await;
        assert_eq!(lines.len(), 30);
        let err = result.unwrap_err();
        let CommandError::Failed { status, tail, .. } = &err else {
            panic!("expected Failed, got {err}");
        };
        assert_eq!(status, "exit status: 3");
        let expected: Vec<String> = (11..=30).map(|i| format!("line{i}")).collect();
        assert_eq!(tail, &expected);
        let text = err.to_string();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("line30"), "{text}");
        assert!(!text.contains("line10\n"), "{text}");
    }

    #[tokio::test]
    async fn the_time_limit_kills_the_whole_group() {
        let script = "sleep 1000 & echo pid=$!; wait";
        let started = std::time::Instant::now();
        let (result, lines) = run(script, &path_env(), Duration::from_millis(500)).await;
        assert!(started.elapsed() < GENEROUS);
        let err = result.unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("500ms"), "{err}");
        let pid = lines[0].strip_prefix("pid=").unwrap();
        assert!(wait_stopped(pid), "sleep {pid} survived the time limit");
    }

    #[tokio::test]
    async fn background_processes_do_not_outlive_the_command() {
        let (result, lines) = run("sleep 1000 & echo pid=$!", &path_env(), GENEROUS).await;
        result.unwrap();
        let pid = lines[0].strip_prefix("pid=").unwrap();
        assert!(wait_stopped(pid), "sleep {pid} outlived its command");
    }

    #[tokio::test]
    async fn the_environment_is_exactly_what_was_given() {
        let mut env = path_env();
        env.push(("ONLY_THIS".to_owned(), "yes".to_owned()));
        let (result, lines) = run("env", &env, GENEROUS).await;
        result.unwrap();
        // The shell itself exports these; they are not inherited.
        let shell_own = ["PWD=", "OLDPWD=", "SHLVL=", "_="];
        let seen: BTreeSet<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !shell_own.iter().any(|own| l.starts_with(own)))
            .collect();
        let path_line = format!("PATH={PATH}");
        let expected: BTreeSet<&str> = [path_line.as_str(), "ONLY_THIS=yes"].into();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_missing_directory_is_a_spawn_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let err = run_command("true", &missing, &[], GENEROUS, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains(&missing.display().to_string()));
    }

    #[test]
    fn line_splitter_handles_chunks_and_endless_lines() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"hel").is_empty());
        assert_eq!(splitter.push(b"lo\nwor"), ["hello"]);
        assert_eq!(splitter.push(b"ld\n\n"), ["world", ""]);
        assert_eq!(splitter.finish(), None);
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let lines = splitter.push(&long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(splitter.finish().unwrap().len(), 10);
        assert_eq!(splitter.push(b"\xff\n"), ["\u{fffd}"]);
    }
}
