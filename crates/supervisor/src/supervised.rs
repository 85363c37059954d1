//! A process kept running: started, watched, restarted after exits nobody
//! asked for, stopped on request, or left running for the next daemon.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::backoff::{RestartPolicy, backoff, failures_after_exit};
use crate::error::{SignalError, SpawnError};
use crate::exit_description::{ADOPTED_EXIT, describe_exit};
use crate::incarnation::Incarnation;
use crate::log_file::{LogRotation, rotate_if_needed};
use crate::poll::{group_emptied, poll_until};
use crate::proc_info::{group_members, is_alive, started_at};
use crate::signal::kill_group;
use crate::spawn::{Spawned, spawn};
use crate::spec::Spec;
use crate::status::Status;
use crate::stop_report::StopReport;

/// Called with every new incarnation, so the daemon can persist it.
pub type OnStart = Arc<dyn Fn(&Incarnation) + Send + Sync>;

/// How often a process that is not our child is looked for in /proc.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);
/// How often /proc is looked at while a stop waits.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the log file's size is checked.
const ROTATION_INTERVAL: Duration = Duration::from_secs(1);
/// SIGKILL cannot be refused, but a process in uninterruptible sleep dies
/// only when its I/O returns; a stop does not wait on that forever.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What the owner asked the watching task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Run,
    Stop,
    Detach,
}

/// One supervised process across its incarnations, shared as
/// `Arc<Supervised>` between the daemon and the task that watches it.
pub struct Supervised {
    spec: Spec,
    policy: RestartPolicy,
    on_start: OnStart,
    state: Mutex<State>,
    // Written only with `state` locked, so the task's status updates and the
    // owner's requests cannot interleave.
    request: watch::Sender<Request>,
    exits: watch::Sender<u32>,
    stopped: watch::Receiver<Option<StopReport>>,
}

struct State {
    status: Status,
    /// The latest incarnation, kept after a detach so a later stop can still
    /// find it.
    current: Option<(u32, u64)>,
    restarts: u32,
    last_exit: Option<String>,
}

/// The watching task's ends of the channels.
struct TaskEnds {
    requests: watch::Receiver<Request>,
    stopped: watch::Sender<Option<StopReport>>,
}

impl Supervised {
    /// Spawns the first incarnation now (an error if the spawn itself fails:
    /// missing directory, unwritable log...), then a Tokio task waits on it.
    /// An exit that was not asked for is logged, counted, and followed by a
    /// restart after [`backoff`]; consecutive failures reset once an
    /// incarnation lived `policy.reset_after`. `on_start` is called for every
    /// incarnation, the first one before this returns.
    pub fn start(
        spec: Spec,
        policy: RestartPolicy,
        on_start: OnStart,
    ) -> Result<Arc<Supervised>, SpawnError> {
        let runtime = Handle::try_current().map_err(|_| SpawnError::NoRuntime {
            command: spec.command.clone(),
        })?;
        let Spawned {
            child,
            pid,
            start_time,
            started_at,
        } = spawn(&spec)?;
        info!(marker = %spec.marker, pid, command = %spec.command, "started process");
        let incarnation = Incarnation {
            pid,
            start_time,
            started_at,
            restarts: 0,
        };
        let target = Target::Child {
            child,
            pid,
            start_time,
            started: Instant::now(),
        };
        let status = Status::Running {
            pid,
            since: started_at,
        };
        let (supervised, ends) =
            Supervised::new(spec, policy, on_start, status, (pid, start_time), 0);
        (supervised.on_start)(&incarnation);
        supervised.watch(&runtime, target, ends);
        Ok(supervised)
    }

    /// Takes over a process started by an earlier daemon: if (pid,
    /// start_time) is still alive (not a zombie), watches it by polling /proc
    /// every 200 ms (it is not our child, so it cannot be waited for); when
    /// it exits it is restarted like a child. `restarts` carries on the
    /// earlier count. `on_start` is called for restarts only: the adopted
    /// incarnation is already known. `None` if the process is gone.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn adopt(
        spec: Spec,
        pid: u32,
        start_time: u64,
        restarts: u32,
        policy: RestartPolicy,
        on_start: OnStart,
    ) -> Option<Arc<Supervised>> {
        if !is_alive(pid, start_time) {
            return None;
        }
        let since = started_at(start_time).unwrap_or_else(SystemTime::now);
        info!(marker = %spec.marker, pid, "adopted process");
        let target = Target::Adopted {
            pid,
            start_time,
            since,
        };
        let status = Status::Running { pid, since };
        let (supervised, ends) =
            Supervised::new(spec, policy, on_start, status, (pid, start_time), restarts);
        supervised.watch(&Handle::current(), target, ends);
        Some(supervised)
    }

    fn new(
        spec: Spec,
        policy: RestartPolicy,
        on_start: OnStart,
        status: Status,
        current: (u32, u64),
        restarts: u32,
    ) -> (Arc<Supervised>, TaskEnds) {
        let (request, requests) = watch::channel(Request::Run);
        let (stopped_tx, stopped_rx) = watch::channel(None);
        let supervised = Arc::new(Supervised {
            spec,
            policy,
            on_start,
            state: Mutex::new(State {
                status,
                current: Some(current),
                restarts,
                last_exit: None,
            }),
            request,
            exits: watch::Sender::new(0),
            stopped: stopped_rx,
        });
        let ends = TaskEnds {
            requests,
            stopped: stopped_tx,
        };
        (supervised, ends)
    }

    /// The pid of the process, while there is one: `None` between
    /// incarnations and once stopped.
    pub fn pid(&self) -> Option<u32> {
        let state = self.state();
        match &state.status {
            Status::Running { pid, .. } | Status::Stopping { pid } => Some(*pid),
            Status::Detached => state
                .current
                .filter(|(pid, start_time)| is_alive(*pid, *start_time))
                .map(|(pid, _)| pid),
            Status::Restarting { .. } | Status::Stopped { .. } => None,
        }
    }

    /// What it is doing now.
    pub fn status(&self) -> Status {
        self.state().status.clone()
    }

    /// Restarts so far, including those of earlier daemons for an adopted
    /// process.
    pub fn restarts(&self) -> u32 {
        self.state().restarts
    }

    /// What it runs.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Unexpected exits so far (failed restarts included); a watch so a
    /// deploy can fail fast when a new process crash-loops.
    pub fn exits(&self) -> watch::Receiver<u32> {
        self.exits.subscribe()
    }

    /// How the last unexpected exit went: "exited with status 3", "killed by
    /// SIGSEGV".
    pub fn last_exit(&self) -> Option<String> {
        self.state().last_exit.clone()
    }

    /// Stops for good: no more restarts (a pending one is cancelled); the
    /// stop signal to the process group; up to `stop_timeout` for it to
    /// exit; then SIGKILL to the group. Returns once the process, and
    /// anything left in its group, is gone. Calling it again returns the same
    /// report.
    pub async fn stop(&self) -> StopReport {
        let previous = {
            let mut state = self.state();
            let previous = *self.request.borrow();
            if previous == Request::Run {
                self.request.send_replace(Request::Stop);
                if let Status::Running { pid, .. } = state.status {
                    state.status = Status::Stopping { pid };
                }
            }
            previous
        };
        if previous == Request::Detach {
            return self.stop_detached().await;
        }
        let mut stopped = self.stopped.clone();
        let report = match stopped.wait_for(Option::is_some).await {
            Ok(report) => (*report).clone(),
            // The task is gone without a report: its runtime shut down.
            Err(_) => None,
        };
        report.unwrap_or_else(StopReport::nothing_running)
    }

    /// Daemon shutdown: stops watching and leaves the process running, so
    /// the next daemon adopts it. No restart happens after this.
    pub fn detach(&self) {
        let mut state = self.state();
        if *self.request.borrow() == Request::Run {
            self.request.send_replace(Request::Detach);
            state.status = Status::Detached;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock, so a panic elsewhere
        // while it was held does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn watch(self: &Arc<Self>, runtime: &Handle, target: Target, ends: TaskEnds) {
        let supervised = Arc::clone(self);
        runtime.spawn(async move {
            let rotation = rotate_forever(
                supervised.spec.log_file.clone(),
                supervised.spec.log_rotation,
            );
            tokio::select! {
                () = supervised.supervise(target, ends) => {}
                () = rotation => {}
            }
        });
    }

    async fn supervise(&self, mut target: Target, ends: TaskEnds) {
        let TaskEnds {
            mut requests,
            stopped,
        } = ends;
        let mut failures = 0;
        loop {
            let event = tokio::select! {
                biased;
                request = next_request(&mut requests) => Event::Requested(request),
                exit = target.wait(WATCH_INTERVAL) => Event::Exited(exit),
            };
            let mut exit = match event {
                Event::Requested(request) => {
                    self.finish(request, Some(&mut target), &stopped).await;
                    return;
                }
                Event::Exited(exit) => exit,
            };
            failures = failures_after_exit(failures, target.lived(), &self.policy);
            target = loop {
                let delay = backoff(&self.policy, failures);
                self.record_exit(target.pid(), &exit, delay);
                if let Some(request) = sleep_unless_requested(delay, &mut requests).await {
                    self.finish(request, None, &stopped).await;
                    return;
                }
                match self.restart() {
                    Ok(next) => break next,
                    Err(error) => {
                        exit = format!("could not restart: {error}");
                        failures = failures.saturating_add(1);
                    }
                }
            };
        }
    }

    fn record_exit(&self, pid: u32, exit: &str, delay: Duration) {
        {
            let mut state = self.state();
            state.last_exit = Some(exit.to_owned());
            self.exits
                .send_modify(|exits| *exits = exits.saturating_add(1));
            if *self.request.borrow() == Request::Run {
                state.status = Status::Restarting {
                    after: delay,
                    last_exit: exit.to_owned(),
                };
            }
        }
        warn!(marker = %self.spec.marker, pid, exit, restart_in = ?delay, "process exited unexpectedly");
    }

    fn restart(&self) -> Result<Target, SpawnError> {
        let Spawned {
            child,
            pid,
            start_time,
            started_at,
        } = spawn(&self.spec)?;
        let restarts = {
            let mut state = self.state();
            state.restarts = state.restarts.saturating_add(1);
            state.current = Some((pid, start_time));
            state.status = Status::Running {
                pid,
                since: started_at,
            };
            state.restarts
        };
        info!(marker = %self.spec.marker, pid, restarts, "restarted process");
        (self.on_start)(&Incarnation {
            pid,
            start_time,
            started_at,
            restarts,
        });
        Ok(Target::Child {
            child,
            pid,
            start_time,
            started: Instant::now(),
        })
    }

    /// Carries out a stop or detach request; `target` is the running
    /// process, if any.
    async fn finish(
        &self,
        request: Request,
        target: Option<&mut Target>,
        stopped: &watch::Sender<Option<StopReport>>,
    ) {
        if request != Request::Stop {
            self.state().status = Status::Detached;
            info!(marker = %self.spec.marker, "detached; the process is left running");
            return;
        }
        let report = match target {
            Some(target) => self.stop_target(target).await,
            None => {
                let mut state = self.state();
                let exit = state.last_exit.clone().unwrap_or_default();
                state.status = Status::Stopped { exit };
                StopReport::nothing_running()
            }
        };
        stopped.send_replace(Some(report));
    }

    async fn stop_detached(&self) -> StopReport {
        let current = self.state().current;
        let Some((pid, start_time)) = current else {
            return StopReport::nothing_running();
        };
        if !is_alive(pid, start_time) && group_members(pid).is_empty() {
            return StopReport::nothing_running();
        }
        let mut target = Target::Adopted {
            pid,
            start_time,
            since: started_at(start_time).unwrap_or_else(SystemTime::now),
        };
        self.stop_target(&mut target).await
    }

    async fn stop_target(&self, target: &mut Target) -> StopReport {
        let pid = target.pid();
        self.state().status = Status::Stopping { pid };
        let (report, exit) =
            stop_process(target, self.spec.stop_signal, self.spec.stop_timeout).await;
        info!(
            marker = %self.spec.marker,
            pid,
            exit,
            signal = report.signal,
            killed = report.killed,
            waited = ?report.waited,
            "stopped process"
        );
        self.state().status = Status::Stopped { exit };
        report
    }
}

impl fmt::Debug for Supervised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervised")
            .field("marker", &self.spec.marker)
            .field("status", &self.status())
            .field("restarts", &self.restarts())
            .finish_non_exhaustive()
    }
}

enum Event {
    Requested(Request),
    Exited(String),
}

/// Waits until the owner asks for something other than running.
async fn next_request(requests: &mut watch::Receiver<Request>) -> Request {
    match requests.wait_for(|request| *request != Request::Run).await {
        Ok(request) => *request,
        // The sender lives in the Supervised this task keeps alive, so this
        // is unreachable; leaving the process alone is the safe reading.
        Err(_) => Request::Detach,
    }
}

/// Sleeps `delay` unless a request comes first; returns it if so.
async fn sleep_unless_requested(
    delay: Duration,
    requests: &mut watch::Receiver<Request>,
) -> Option<Request> {
    tokio::select! {
        biased;
        request = next_request(requests) => return Some(request),
        () = tokio::time::sleep(delay) => {}
    }
    // A request that came with the end of the sleep still wins over a
    // restart.
    let request = *requests.borrow();
    (request != Request::Run).then_some(request)
}

/// The process being watched.
enum Target {
    /// Spawned by this daemon: waited for, so no zombie stays behind.
    Child {
        child: Child,
        pid: u32,
        start_time: u64,
        started: Instant,
    },
    /// Spawned by an earlier daemon: only /proc can tell when it is gone.
    Adopted {
        pid: u32,
        start_time: u64,
        since: SystemTime,
    },
}

impl Target {
    fn pid(&self) -> u32 {
        match self {
            Target::Child { pid, .. } | Target::Adopted { pid, .. } => *pid,
        }
    }

    fn lived(&self) -> Duration {
        match self {
            Target::Child { started, .. } => started.elapsed(),
            Target::Adopted { since, .. } => SystemTime::now()
                .duration_since(*since)
                .unwrap_or(Duration::ZERO),
        }
    }

    /// Waits for the process to exit; says how it did.
    async fn wait(&mut self, poll: Duration) -> String {
        match self {
            Target::Child {
                child,
                pid,
                start_time,
                ..
            } => match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(error) => {
                    warn!(pid = *pid, %error, "cannot wait for the process; watching /proc instead");
                    let (pid, start_time) = (*pid, *start_time);
                    poll_until(poll, None, || !is_alive(pid, start_time)).await;
                    format!("exited (status unknown: {error})")
                }
            },
            Target::Adopted {
                pid, start_time, ..
            } => {
                let (pid, start_time) = (*pid, *start_time);
                poll_until(poll, None, || !is_alive(pid, start_time)).await;
                ADOPTED_EXIT.to_owned()
            }
        }
    }

    /// Signals the process group; true if the signal was delivered.
    fn signal_group(&self, signal: Signal) -> bool {
        let pid = self.pid();
        if let Target::Adopted { start_time, .. } = self {
            // Our unreaped child keeps its pid; an adopted process does not,
            // and a dead one's pid may be someone else's by now, unless
            // members of its group still hold the group id.
            if !is_alive(pid, *start_time) && group_members(pid).is_empty() {
                return false;
            }
        }
        match kill_group(pid, signal) {
            Ok(()) => true,
            Err(SignalError::Gone { .. }) => false,
            Err(error) => {
                warn!(pid, %error, "cannot signal the process group");
                false
            }
        }
    }
}

/// The stop sequence: `signal`, up to `timeout`, SIGKILL; then the same for
/// whatever the process left in its group. Returns the report and how the
/// process ended.
async fn stop_process(
    target: &mut Target,
    signal: Signal,
    timeout: Duration,
) -> (StopReport, String) {
    let begun = Instant::now();
    let deadline = begun + timeout;
    let pid = target.pid();
    target.signal_group(signal);
    let in_time = tokio::time::timeout_at(deadline, target.wait(STOP_POLL_INTERVAL)).await;
    let exited_in_time = in_time.is_ok();
    let mut killed = false;
    let exit = match in_time {
        Ok(exit) => exit,
        Err(_) => {
            killed = target.signal_group(Signal::SIGKILL);
            target.wait(STOP_POLL_INTERVAL).await
        }
    };
    // Children that ignored the signal outlive their parent; a stopped
    // process leaves nothing running.
    if !group_emptied(pid, STOP_POLL_INTERVAL, deadline).await {
        // Live members keep the group id from being reused, so it still
        // names the app's group.
        killed |= kill_group(pid, Signal::SIGKILL).is_ok();
        if !group_emptied(pid, STOP_POLL_INTERVAL, Instant::now() + KILL_GRACE).await {
            warn!(pid, "processes of the group survived SIGKILL");
        }
    }
    let report = StopReport {
        signal: signal.as_str().to_owned(),
        exited_in_time,
        killed,
        waited: begun.elapsed(),
    };
    (report, exit)
}

/// Rotates the log file whenever it grew too big, checking once a second;
/// runs until dropped.
async fn rotate_forever(path: PathBuf, rotation: LogRotation) {
    let mut ticks = tokio::time::interval(ROTATION_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // A lasting failure (full disk, lost permissions) is logged once, not
    // every second.
    let mut last_error: Option<String> = None;
    loop {
        ticks.tick().await;
        let (file, limits) = (path.clone(), rotation);
        let outcome = tokio::task::spawn_blocking(move || rotate_if_needed(&file, &limits))
            .await
            .map_err(|error| error.to_string())
            .and_then(|result| result.map_err(|error| error.to_string()));
        match outcome {
            Ok(rotated) => {
                if rotated {
                    info!(log = %path.display(), "rotated log file");
                }
                last_error = None;
            }
            Err(error) => {
                if last_error.as_deref() != Some(error.as_str()) {
                    warn!(log = %path.display(), %error, "cannot rotate log file");
                }
                last_error = Some(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::log_file::tail_lines;
    use crate::proc_info::{find_by_marker, process_start_time};
    use crate::spawn::MARKER_VAR;
    use crate::test_support::{GroupGuard, Recorder, eventually, log_text, quick_policy, spec};

    /// A shell that says "ready" once its TERM trap is set, then idles.
    const POLITE: &str =
        "sh -c 'trap \"echo got-term; exit 0\" TERM; echo ready; while :; do sleep 0.05; done'";

    #[tokio::test]
    async fn start_reports_the_live_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let supervised = Supervised::start(
            spec(dir.path(), "sleep 30"),
            quick_policy(),
            recorder.on_start(),
        )
        .expect("start");
        assert_eq!(recorder.len(), 1, "on_start before start returns");
        let first = recorder.first();
        assert_eq!(first.restarts, 0);
        assert_eq!(supervised.pid(), Some(first.pid));
        assert_eq!(process_start_time(first.pid), Some(first.start_time));
        assert!(matches!(
            supervised.status(),
            Status::Running { pid, .. } if pid == first.pid
        ));
        let marker = supervised.spec().marker.clone();
        eventually("the marker in /proc", || {
            find_by_marker(&marker) == Some((first.pid, first.start_time))
        })
        .await;

        let report = supervised.stop().await;
        assert_eq!(report.signal, "SIGTERM");
        assert!(report.exited_in_time && !report.killed, "{report:?}");
        assert!(!is_alive(first.pid, first.start_time));
        assert_eq!(find_by_marker(&marker), None);
        assert_eq!(supervised.pid(), None);
        assert_eq!(
            supervised.status(),
            Status::Stopped {
                exit: "killed by SIGTERM".into()
            }
        );
        assert_eq!(*supervised.exits().borrow(), 0);
        assert_eq!(supervised.last_exit(), None);
    }

    #[tokio::test]
    async fn the_environment_is_exactly_the_specs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let mut spec = spec(dir.path(), "sleep 30");
        spec.env.push(("GREETING".into(), "hello world".into()));
        let marker = spec.marker.clone();
        let supervised =
            Supervised::start(spec, quick_policy(), recorder.on_start()).expect("start");
        let pid = recorder.first().pid;
        let environ = || {
            let bytes = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let mut entries: Vec<String> = bytes
                .split(|byte| *byte == 0)
                .filter(|entry| !entry.is_empty())
                .map(|entry| String::from_utf8_lossy(entry).into_owned())
                .collect();
            entries.sort();
            entries
        };
        let mut expected = vec![
            format!("{MARKER_VAR}={marker}"),
            "GREETING=hello world".to_owned(),
            "PATH=/usr/bin:/bin".to_owned(),
        ];
        expected.sort();
        // The shell has exec'd sleep once comm says so; its environment
        // becomes readable a moment later in the exec (the kernel names the
        // process before it lays out the new stack).
        eventually("sleep to replace the shell", || {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "sleep")
        })
        .await;
        eventually("sleep's environment", || !environ().is_empty()).await;
        assert_eq!(environ(), expected);
        supervised.stop().await;
    }

    #[tokio::test]
    async fn stdout_and_stderr_share_the_log_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let spec = spec(
            dir.path(),
            "sh -c 'echo one; echo two >&2; echo three; exec sleep 30'",
        );
        let log = spec.log_file.clone();
        assert!(!log.parent().expect("log dir").exists());
        let supervised =
            Supervised::start(spec, quick_policy(), recorder.on_start()).expect("start");
        eventually("three lines", || tail_lines(&log, 3).len() == 3).await;
        assert_eq!(tail_lines(&log, 3), ["one", "two", "three"]);
        supervised.stop().await;
    }

    #[tokio::test]
    async fn exits_are_counted_and_restarts_back_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let policy = RestartPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            reset_after: Duration::from_secs(60),
        };
        let spec = spec(dir.path(), "sh -c 'echo ran; exit 3'");
        let supervised = Supervised::start(spec, policy, recorder.on_start()).expect("start");
        let mut exits = supervised.exits();
        tokio::time::timeout(Duration::from_secs(20), exits.wait_for(|n| *n >= 5))
            .await
            .expect("five exits in time")
            .expect("exits watch");
        eventually("five restarts", || recorder.len() >= 6).await;
        supervised.stop().await;

        let seen = recorder.all();
        for (n, (incarnation, _)) in seen.iter().enumerate() {
            assert_eq!(incarnation.restarts as usize, n);
        }
        // The delay before restart n is at least backoff(n): 50, 100, 200,
        // 200, 200 ms.
        for (n, pair) in seen.windows(2).take(5).enumerate() {
            let gap = pair[1].1 - pair[0].1;
            let floor = backoff(&policy, n as u32 + 1);
            assert!(gap >= floor, "restart {}: {gap:?} < {floor:?}", n + 1);
        }
        assert!(supervised.restarts() >= 5);
        assert_eq!(
            supervised.last_exit().as_deref(),
            Some("exited with status 3")
        );
        assert!(log_text(supervised.spec()).matches("ran\n").count() >= 5);
        assert!(matches!(supervised.status(), Status::Stopped { .. }));
    }

    #[tokio::test]
    async fn stop_during_backoff_cancels_the_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let policy = RestartPolicy {
            initial: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
            ..quick_policy()
        };
        let supervised = Supervised::start(
            spec(dir.path(), "sh -c 'exit 1'"),
            policy,
            recorder.on_start(),
        )
        .expect("start");
        let mut exits = supervised.exits();
        exits.wait_for(|n| *n == 1).await.expect("exits watch");
        eventually("the restarting status", || {
            matches!(supervised.status(), Status::Restarting { .. })
        })
        .await;
        assert_eq!(
            supervised.status(),
            Status::Restarting {
                after: Duration::from_secs(3600),
                last_exit: "exited with status 1".into()
            }
        );
        assert_eq!(supervised.pid(), None);

        let report = supervised.stop().await;
        assert_eq!(report, StopReport::nothing_running());
        assert_eq!(
            supervised.status(),
            Status::Stopped {
                exit: "exited with status 1".into()
            }
        );
        assert_eq!(recorder.len(), 1);
        // A second stop answers the same.
        assert_eq!(supervised.stop().await, StopReport::nothing_running());
    }

    #[tokio::test]
    async fn stop_sends_the_stop_signal_and_does_not_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let spec = spec(dir.path(), POLITE);
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        eventually("the trap", || log_text(&spec).contains("ready")).await;

        let report = supervised.stop().await;
        assert_eq!(report.signal, "SIGTERM");
        assert!(report.exited_in_time, "{report:?}");
        assert!(!report.killed, "{report:?}");
        assert!(log_text(&spec).contains("got-term"));
        assert_eq!(
            supervised.status(),
            Status::Stopped {
                exit: "exited with status 0".into()
            }
        );
        assert_eq!(*supervised.exits().borrow(), 0);
        assert_eq!(supervised.restarts(), 0);
        assert_eq!(recorder.len(), 1);
    }

    #[tokio::test]
    async fn stop_uses_the_specs_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let mut spec = spec(
            dir.path(),
            "sh -c 'trap \"echo got-int; exit 0\" INT; echo ready; while :; do sleep 0.05; done'",
        );
        spec.stop_signal = Signal::SIGINT;
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        eventually("the trap", || log_text(&spec).contains("ready")).await;
        let report = supervised.stop().await;
        assert_eq!(report.signal, "SIGINT");
        assert!(log_text(&spec).contains("got-int"));
    }

    #[tokio::test]
    async fn stop_escalates_to_sigkill_when_the_signal_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let mut spec = spec(
            dir.path(),
            "sh -c 'trap \"\" TERM; echo ready; while :; do sleep 0.05; done'",
        );
        spec.stop_timeout = Duration::from_millis(300);
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        eventually("the trap", || log_text(&spec).contains("ready")).await;
        let first = recorder.first();

        let report = supervised.stop().await;
        assert_eq!(report.signal, "SIGTERM");
        assert!(!report.exited_in_time, "{report:?}");
        assert!(report.killed, "{report:?}");
        assert!(report.waited >= spec.stop_timeout, "{report:?}");
        assert!(!is_alive(first.pid, first.start_time));
        assert_eq!(
            supervised.status(),
            Status::Stopped {
                exit: "killed by SIGKILL".into()
            }
        );
        assert_eq!(recorder.len(), 1);
    }

    #[tokio::test]
    async fn stop_leaves_nothing_in_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        // The app exits on TERM; its background child ignores TERM.
        let mut spec = spec(
            dir.path(),
            "sh -c '(trap \"\" TERM; echo child-ready; while :; do sleep 0.05; done) & \
             echo $! > child.pid; trap \"exit 0\" TERM; while :; do sleep 0.05; done'",
        );
        spec.stop_timeout = Duration::from_millis(500);
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        let pid_file = dir.path().join("child.pid");
        eventually("the child", || {
            log_text(&spec).contains("child-ready")
                && fs::read_to_string(&pid_file).is_ok_and(|text| text.ends_with('\n'))
        })
        .await;
        let child: u32 = fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        let _guard = GroupGuard(child);
        let child_start = process_start_time(child).expect("child alive");

        let report = supervised.stop().await;
        assert!(report.exited_in_time, "{report:?}");
        assert!(report.killed, "{report:?}");
        assert!(!is_alive(child, child_start));
        assert_eq!(
            supervised.status(),
            Status::Stopped {
                exit: "exited with status 0".into()
            }
        );
    }

    #[tokio::test]
    async fn detach_leaves_the_process_and_adopt_restarts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = spec(dir.path(), POLITE);
        let first_daemon = Recorder::new();
        let original = Supervised::start(spec.clone(), quick_policy(), first_daemon.on_start())
            .expect("start");
        let first = first_daemon.first();
        original.detach();
        assert_eq!(original.status(), Status::Detached);
        assert_eq!(original.pid(), Some(first.pid));
        assert!(is_alive(first.pid, first.start_time));

        let second_daemon = Recorder::new();
        let adopted = Supervised::adopt(
            spec.clone(),
            first.pid,
            first.start_time,
            4,
            quick_policy(),
            second_daemon.on_start(),
        )
        .expect("still alive");
        assert_eq!(adopted.pid(), Some(first.pid));
        assert_eq!(adopted.restarts(), 4);
        assert_eq!(second_daemon.len(), 0, "adoption is no new incarnation");
        match adopted.status() {
            Status::Running { pid, since } => {
                assert_eq!(pid, first.pid);
                let skew = since
                    .duration_since(first.started_at)
                    .or_else(|error| Ok::<_, ()>(error.duration()))
                    .unwrap_or_default();
                assert!(skew < Duration::from_secs(2), "since off by {skew:?}");
            }
            other => panic!("not running: {other:?}"),
        }

        kill_group(first.pid, Signal::SIGKILL).expect("kill");
        eventually("a restart", || second_daemon.len() == 1).await;
        let next = second_daemon.first();
        assert_eq!(next.restarts, 5);
        assert!(is_alive(next.pid, next.start_time));
        assert_eq!(adopted.pid(), Some(next.pid));
        assert_eq!(*adopted.exits().borrow(), 1);
        assert_eq!(adopted.last_exit().as_deref(), Some(ADOPTED_EXIT));
        // The first daemon's handle no longer restarts anything.
        assert_eq!(first_daemon.len(), 1);
        assert_eq!(original.pid(), None);

        let report = adopted.stop().await;
        assert!(report.exited_in_time, "{report:?}");
        assert!(!is_alive(next.pid, next.start_time));
    }

    #[tokio::test]
    async fn an_adopted_process_is_stopped_by_polling() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = spec(dir.path(), POLITE);
        let first_daemon = Recorder::new();
        let original = Supervised::start(spec.clone(), quick_policy(), first_daemon.on_start())
            .expect("start");
        eventually("the trap", || log_text(&spec).contains("ready")).await;
        let first = first_daemon.first();
        original.detach();

        let second_daemon = Recorder::new();
        let adopted = Supervised::adopt(
            spec.clone(),
            first.pid,
            first.start_time,
            0,
            quick_policy(),
            second_daemon.on_start(),
        )
        .expect("still alive");
        let report = adopted.stop().await;
        assert_eq!(report.signal, "SIGTERM");
        assert!(report.exited_in_time && !report.killed, "{report:?}");
        assert!(log_text(&spec).contains("got-term"));
        assert!(!is_alive(first.pid, first.start_time));
        assert_eq!(
            adopted.status(),
            Status::Stopped {
                exit: ADOPTED_EXIT.into()
            }
        );
        assert_eq!(second_daemon.len(), 0);
    }

    #[tokio::test]
    async fn stop_after_detach_still_stops_the_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let spec = spec(dir.path(), POLITE);
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        eventually("the trap", || log_text(&spec).contains("ready")).await;
        let first = recorder.first();
        supervised.detach();
        let report = supervised.stop().await;
        assert!(report.exited_in_time, "{report:?}");
        assert!(!is_alive(first.pid, first.start_time));
        assert!(matches!(supervised.status(), Status::Stopped { .. }));
    }

    #[tokio::test]
    async fn adopt_refuses_a_process_that_is_not_the_one_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let spec = spec(dir.path(), "sleep 30");
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        let first = recorder.first();
        // Same pid, other start time: the pid was reused.
        let reused = Supervised::adopt(
            spec.clone(),
            first.pid,
            first.start_time + 1,
            0,
            quick_policy(),
            recorder.on_start(),
        );
        assert!(reused.is_none());
        supervised.stop().await;
        let gone = Supervised::adopt(
            spec,
            first.pid,
            first.start_time,
            0,
            quick_policy(),
            recorder.on_start(),
        );
        assert!(gone.is_none());
        assert_eq!(recorder.len(), 1);
    }

    #[tokio::test]
    async fn a_running_process_has_its_log_rotated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let mut spec = spec(
            dir.path(),
            "sh -c 'while :; do echo 0123456789012345678901234567890123456789; sleep 0.01; done'",
        );
        spec.log_rotation = LogRotation {
            max_bytes: 2_000,
            keep: 2,
        };
        let supervised =
            Supervised::start(spec.clone(), quick_policy(), recorder.on_start()).expect("start");
        let mut first_copy = spec.log_file.as_os_str().to_owned();
        first_copy.push(".1");
        let first_copy = PathBuf::from(first_copy);
        eventually("a rotation", || first_copy.exists()).await;
        // The writer carries on at the start of the emptied file.
        eventually("new output", || !log_text(&spec).is_empty()).await;
        supervised.stop().await;
        let current = fs::read(&spec.log_file).expect("log");
        assert!(!current.contains(&0), "a hole of zeros in the log");
        assert!(
            fs::read_to_string(&first_copy)
                .expect("rotated copy")
                .starts_with("0123456789")
        );
    }

    #[tokio::test]
    async fn a_missing_directory_fails_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let mut spec = spec(dir.path(), "sleep 30");
        spec.dir = dir.path().join("not-there");
        let error =
            Supervised::start(spec, quick_policy(), recorder.on_start()).expect_err("start fails");
        assert!(matches!(error, SpawnError::Spawn { .. }), "{error}");
        assert_eq!(recorder.len(), 0);
    }

    #[test]
    fn start_outside_a_runtime_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder::new();
        let error = Supervised::start(
            spec(dir.path(), "sleep 30"),
            quick_policy(),
            recorder.on_start(),
        )
        .expect_err("start fails");
        assert!(matches!(error, SpawnError::NoRuntime { .. }), "{error}");
        assert_eq!(recorder.len(), 0);
    }

    #[tokio::test]
    async fn a_failing_restart_counts_as_an_exit_and_is_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app_dir = dir.path().join("app");
        fs::create_dir(&app_dir).expect("app dir");
        let recorder = Recorder::new();
        let mut spec = spec(dir.path(), "sh -c 'exit 2'");
        spec.dir = app_dir.clone();
        let supervised =
            Supervised::start(spec, quick_policy(), recorder.on_start()).expect("start");
        fs::remove_dir(&app_dir).expect("remove app dir");
        let mut exits = supervised.exits();
        tokio::time::timeout(Duration::from_secs(20), exits.wait_for(|n| *n >= 3))
            .await
            .expect("three exits in time")
            .expect("exits watch");
        let last = supervised.last_exit().unwrap_or_default();
        assert!(last.starts_with("could not restart"), "{last}");
        supervised.stop().await;
        assert!(matches!(supervised.status(), Status::Stopped { .. }));
    }
}
