//! Admission to a version: counts requests in flight and, once the version
//! has left the route and drained, refuses late arrivals so the caller looks
//! up the route again instead of reaching a process about to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Set in the counter once the version is closed: no new request may enter.
const CLOSED: u64 = 1 << 63;

/// A closeable in-flight counter.
///
/// Closing is a compare-and-swap from "zero in flight" to "closed", so a
/// request that read the old route table just before the swap either enters
/// before the close (and is waited for) or is refused after it (and re-routed);
/// it can never slip in after the drain declared the version empty.
#[derive(Debug, Default)]
pub struct Admission {
    state: AtomicU64,
    idle: Notify,
}

/// Proof that one request is in flight; leaving is dropping it.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
}

impl Admission {
    /// Enters one request, or `None` when the version is closed.
    pub fn enter(self: &Arc<Self>) -> Option<Admitted> {
        let previous = self.state.fetch_add(1, Ordering::AcqRel);
        if previous & CLOSED != 0 {
            self.leave();
            return None;
        }
        Some(Admitted {
            admission: Arc::clone(self),
        })
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        self.state.load(Ordering::Acquire) & !CLOSED
    }

    /// Whether the version refuses new requests.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Waits until nothing is in flight, then closes. Cancel-safe.
    pub async fn close_when_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self
                .state
                .compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(current) if current & CLOSED != 0 => return,
                Err(_) => notified.await,
            }
        }
    }

    /// Closes at once, whatever is in flight.
    pub fn close_now(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        self.idle.notify_waiters();
    }

    fn leave(&self) {
        let previous = self.state.fetch_sub(1, Ordering::AcqRel);
        if previous & !CLOSED == 1 {
            self.idle.notify_waiters();
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_and_refuses_after_close() {
        let admission = Arc::new(Admission::default());
        let first = admission.enter().unwrap();
        let second = admission.enter().unwrap();
        assert_eq!(admission.in_flight(), 2);
        drop(first);
        assert_eq!(admission.in_flight(), 1);
        admission.close_now();
        assert!(admission.enter().is_none());
        assert_eq!(admission.in_flight(), 1);
        drop(second);
        assert_eq!(admission.in_flight(), 0);
        assert!(admission.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn close_waits_for_the_last_request() {
        let admission = Arc::new(Admission::default());
        let held = admission.enter().unwrap();
        let closer = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.close_when_idle().await })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!closer.is_finished());
        assert!(!admission.is_closed());
        // A request that arrives while the drain waits is still admitted.
        let late = admission.enter().unwrap();
        drop(held);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!closer.is_finished());
        drop(late);
        tokio::time::timeout(Duration::from_secs(1), closer)
            .await
            .unwrap()
            .unwrap();
        assert!(admission.enter().is_none());
    }
}
