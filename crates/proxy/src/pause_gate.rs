//! Holding a service's new requests while it is paused.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// A paused request waited the whole `max` and must be answered 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldTooLong {
    /// How long it waited.
    pub waited: Duration,
}

/// Open by default; while closed, requests wait for it to open again, up to
/// the pause's maximum.
#[derive(Debug)]
pub struct PauseGate {
    // The atomic keeps the common, unpaused case to one load.
    paused: AtomicBool,
    max_hold: watch::Sender<Option<Duration>>,
    held: AtomicU64,
}

impl Default for PauseGate {
    fn default() -> Self {
        PauseGate {
            paused: AtomicBool::new(false),
            max_hold: watch::Sender::new(None),
            held: AtomicU64::new(0),
        }
    }
}

impl PauseGate {
    /// Holds new requests for up to `max_hold` each.
    pub fn pause(&self, max_hold: Duration) {
        self.max_hold.send_replace(Some(max_hold));
        self.paused.store(true, Ordering::Release);
    }

    /// Lets held and new requests through.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.max_hold.send_replace(None);
    }

    /// The pause's maximum hold while paused.
    pub fn paused(&self) -> Option<Duration> {
        *self.max_hold.borrow()
    }

    /// Requests held right now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Returns at once when open; otherwise waits for a resume, or fails once
    /// the maximum hold has passed.
    pub async fn pass(&self) -> Result<(), HeldTooLong> {
        if !self.paused.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.max_hold.subscribe();
        let Some(max_hold) = *state.borrow_and_update() else {
            return Ok(());
        };
        self.held.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let resumed = tokio::time::timeout(max_hold, state.wait_for(Option::is_none)).await;
        self.held.fetch_sub(1, Ordering::Relaxed);
        match resumed {
            Ok(_) => Ok(()),
            Err(_) => Err(HeldTooLong {
                waited: started.elapsed(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn open_gate_passes_at_once() {
        let gate = PauseGate::default();
        assert_eq!(gate.pass().await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn resume_releases_held_requests() {
        let gate = Arc::new(PauseGate::default());
        gate.pause(Duration::from_secs(10));
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.pass().await })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(gate.held(), 1);
        gate.resume();
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(gate.held(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn held_past_max_fails() {
        let gate = PauseGate::default();
        gate.pause(Duration::from_secs(2));
        let result = gate.pass().await;
        assert_eq!(
            result,
            Err(HeldTooLong {
                waited: Duration::from_secs(2)
            })
        );
    }
}
