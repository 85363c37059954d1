//! Run mode: claim, work, record, until asked to stop.

use std::{
    io::Write,
    thread,
    time::{Duration, Instant},
};

use crate::{queue::Queue, stop::StopSignal};

/// How long an idle worker waits before looking at the queue again.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Works through `queue` as `name` (`VERSION:pid`) until a stop signal,
/// always finishing and recording the claimed job before returning.
///
/// Prints a line at start, one per job (`job 17 done in 230 ms by v3:1234`)
/// and one at stop.
pub fn run(mut queue: Queue, name: &str, stop: &StopSignal) -> anyhow::Result<()> {
    say(&format!(
        "worker {name} started on queue {}",
        queue.path().display()
    ));
    let mut jobs: u64 = 0;
    let signal = loop {
        // Checked right before claiming, so a stop request never picks up
        // another job.
        if let Some(signal) = stop.received() {
            break signal;
        }
        let Some(job) = queue.claim(name)? else {
            thread::sleep(IDLE_POLL);
            continue;
        };
        let started = Instant::now();
        // Signals are blocked in this thread, so the sleep runs in full.
        thread::sleep(Duration::from_millis(u64::from(job.ms)));
        queue.finish(job, name)?;
        jobs += 1;
        say(&format!(
            "job {} done in {} ms by {name}",
            job.id,
            started.elapsed().as_millis()
        ));
    };
    say(&format!(
        "worker {name} stopped on {} after {jobs} jobs",
        signal.as_str()
    ));
    Ok(())
}

/// Writes one line to stdout.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not keep jobs from being run and recorded.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
