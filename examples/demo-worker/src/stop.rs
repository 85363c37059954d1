//! The stop request: SIGTERM, SIGINT, SIGQUIT and SIGUSR1 all mean "finish
//! the job in hand, then exit".
//!
//! No handler runs in signal context (the workspace forbids `unsafe`, which
//! installing one would need). Instead the signals are blocked and a thread
//! takes them with `sigwait`, so they never interrupt a job or kill the
//! process, and the worker loop merely reads what the thread recorded.

use std::{
    sync::{Arc, OnceLock},
    thread,
};

use nix::sys::signal::{SigSet, Signal};

/// The signals that ask the worker to stop.
pub const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
];

/// Remembers the first stop signal received.
pub struct StopSignal {
    received: Arc<OnceLock<Signal>>,
}

impl StopSignal {
    /// Blocks the stop signals and starts the thread that waits for them.
    ///
    /// Call it before any other thread exists: a thread inherits the signal
    /// mask it is created with, and one that did not block these signals
    /// could receive them and die of the default action.
    pub fn install() -> anyhow::Result<Self> {
        let signals: SigSet = STOP_SIGNALS.into_iter().collect();
        signals.thread_block()?;
        let received = Arc::new(OnceLock::new());
        let record = Arc::clone(&received);
        thread::Builder::new()
            .name("stop-signals".to_owned())
            .spawn(move || {
                loop {
                    match signals.wait() {
                        // Later signals change nothing: the job in hand
                        // still finishes (SIGKILL is the way to cut it short).
                        Ok(signal) => {
                            let _ = record.set(signal);
                        }
                        Err(err) => {
                            eprintln!("demo-worker: waiting for signals failed: {err}");
                            return;
                        }
                    }
                }
            })?;
        Ok(Self { received })
    }

    /// The first stop signal, once one has arrived.
    pub fn received(&self) -> Option<Signal> {
        self.received.get().copied()
    }
}
