//! Shared pieces of the tests that run real processes.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::backoff::RestartPolicy;
use crate::incarnation::Incarnation;
use crate::proc_info::group_members;
use crate::signal::kill_group;
use crate::spec::Spec;
use crate::supervised::OnStart;

/// A spec running `command` in `dir`, logging to `dir/logs/app.log`, with a
/// marker no other test uses.
pub(crate) fn spec(dir: &Path, command: &str) -> Spec {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let marker = format!(
        "supervisor-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut spec = Spec::new(command, dir, dir.join("logs/app.log"), marker);
    spec.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
    spec.stop_timeout = Duration::from_secs(10);
    spec
}

/// Restarts quickly enough for a test.
pub(crate) fn quick_policy() -> RestartPolicy {
    RestartPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        reset_after: Duration::from_secs(60),
    }
}

/// Records every incarnation it is told of, and kills their process groups
/// when dropped, so a failing test leaves nothing running.
#[derive(Default)]
pub(crate) struct Recorder {
    seen: Mutex<Vec<(Incarnation, Instant)>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn on_start(self: &Arc<Self>) -> OnStart {
        let recorder = Arc::clone(self);
        Arc::new(move |incarnation: &Incarnation| {
            recorder
                .seen
                .lock()
                .expect("recorder lock")
                .push((incarnation.clone(), Instant::now()));
        })
    }

    pub fn all(&self) -> Vec<(Incarnation, Instant)> {
        self.seen.lock().expect("recorder lock").clone()
    }

    pub fn len(&self) -> usize {
        self.seen.lock().expect("recorder lock").len()
    }

    pub fn first(&self) -> Incarnation {
        self.all().first().expect("an incarnation").0.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for (incarnation, _) in self.seen.get_mut().expect("recorder lock").iter() {
            kill_group_if_alive(incarnation.pid);
        }
    }
}

/// SIGKILLs the group led by `pid` if it still has members (which keep the
/// id from naming anyone else's group).
pub(crate) fn kill_group_if_alive(pid: u32) {
    if !group_members(pid).is_empty() {
        let _ = kill_group(pid, Signal::SIGKILL);
    }
}

/// Kills a process group when dropped.
pub(crate) struct GroupGuard(pub u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group_if_alive(self.0);
    }
}

/// Waits until `done` holds; panics naming `what` after a generous deadline.
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The log file's text, empty if it does not exist yet.
pub(crate) fn log_text(spec: &Spec) -> String {
    std::fs::read_to_string(&spec.log_file).unwrap_or_default()
}
