//! A version of a service: its targets, balancer, admission and numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use baton_telemetry::{MirrorStats, RequestStats};
use http::HeaderValue;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::load_balancer::{Candidate, LoadBalancer};
use crate::sticky_cookie::set_cookie_for;
use crate::target::Target;

/// How long upgraded connections get to finish their close handshake after
/// the drain timeout sent them a close frame.
const CLOSE_HANDSHAKE_GRACE: Duration = Duration::from_secs(2);

/// One version of a service (a set of targets running the same release).
pub struct Version {
    label: String,
    // Built once: a response that pins a client copies it, never formats it.
    sticky_cookie: Option<HeaderValue>,
    targets: Vec<Arc<Target>>,
    balancer: LoadBalancer,
    stats: Arc<RequestStats>,
    mirror_stats: MirrorStats,
    admission: Arc<Admission>,
    upgraded: AtomicU64,
    drain_deadline: CancellationToken,
    retired: CancellationToken,
    ever_healthy: watch::Sender<bool>,
    /// Bumped on every health verdict, so a deploy waiting for all targets
    /// wakes at once instead of polling.
    verdicts: watch::Sender<u64>,
}

/// What draining a version did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// How long the drain took.
    pub duration: Duration,
    /// Plain requests still running when the drain timeout ended the drain.
    pub requests_cut: u64,
    /// Upgraded connections (WebSockets) told to go away at the drain timeout.
    pub upgraded_closed: u64,
}

impl Version {
    /// A version over `targets`, none of them known healthy yet.
    pub fn new(label: String, targets: Vec<Arc<Target>>, balancer: LoadBalancer) -> Self {
        Version {
            sticky_cookie: set_cookie_for(&label),
            label,
            targets,
            balancer,
            stats: Arc::new(RequestStats::new(Instant::now().into_std())),
            mirror_stats: MirrorStats::new(Instant::now().into_std()),
            admission: Arc::new(Admission::default()),
            upgraded: AtomicU64::new(0),
            drain_deadline: CancellationToken::new(),
            retired: CancellationToken::new(),
            ever_healthy: watch::Sender::new(false),
            verdicts: watch::Sender::new(0),
        }
    }

    /// The version's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The `Set-Cookie` value that pins a client to this version during a
    /// sticky split; `None` when the label cannot be a cookie value.
    pub fn sticky_cookie(&self) -> Option<&HeaderValue> {
        self.sticky_cookie.as_ref()
    }

    /// Its targets.
    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// Its request numbers.
    pub fn stats(&self) -> &Arc<RequestStats> {
        &self.stats
    }

    /// How its answers to mirrored copies compared with the stable
    /// version's answers to the originals, while it was shadowed.
    pub fn mirror_stats(&self) -> &MirrorStats {
        &self.mirror_stats
    }

    /// Its admission counter.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u64 {
        self.admission.in_flight()
    }

    /// Upgraded connections relayed now.
    pub fn upgraded(&self) -> u64 {
        self.upgraded.load(Ordering::Relaxed)
    }

    /// Counts an upgraded connection in (out with [`Version::upgrade_ended`]).
    pub fn upgrade_started(&self) {
        self.upgraded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an upgraded connection out.
    pub fn upgrade_ended(&self) {
        self.upgraded.fetch_sub(1, Ordering::Relaxed);
    }

    /// Fires when upgraded connections must close (drain timeout reached).
    pub fn drain_deadline(&self) -> &CancellationToken {
        &self.drain_deadline
    }

    /// Fires when the version has left the route for good.
    pub fn retired(&self) -> &CancellationToken {
        &self.retired
    }

    /// Picks a target, skipping `exclude`.
    pub fn pick(&self, exclude: Option<usize>) -> Option<usize> {
        self.balancer.pick(&self.targets, exclude)
    }

    /// Whether every target passes its health checks.
    pub fn all_healthy(&self) -> bool {
        self.targets.iter().all(|target| target.is_healthy())
    }

    /// Records a health verdict for target `index`.
    pub fn set_target_health(&self, index: usize, healthy: bool) {
        if let Some(target) = self.targets.get(index) {
            target.set_healthy(healthy);
            if healthy {
                self.ever_healthy
                    .send_if_modified(|seen| !std::mem::replace(seen, true));
            }
            self.verdicts
                .send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Waits until every target is healthy, up to `limit`; whether they are.
    pub async fn wait_all_healthy(&self, limit: Duration) -> bool {
        let mut verdicts = self.verdicts.subscribe();
        let all = verdicts.wait_for(|_| self.all_healthy());
        tokio::time::timeout(limit, all)
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Waits until some target has been healthy at least once, up to `limit`.
    /// A restored route waits here for its first health check instead of
    /// refusing the requests that arrive in the first milliseconds.
    pub async fn wait_first_healthy(&self, limit: Duration) -> bool {
        let mut seen = self.ever_healthy.subscribe();
        tokio::time::timeout(limit, seen.wait_for(|healthy| *healthy))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Whether some target has been healthy at least once.
    pub fn was_ever_healthy(&self) -> bool {
        *self.ever_healthy.borrow()
    }

    /// Lets requests in flight finish, up to `drain_timeout`; then tells
    /// upgraded connections to go away, refuses new requests, stops health
    /// checks and closes pooled upstream connections.
    pub async fn drain(&self, drain_timeout: Duration) -> DrainReport {
        let started = Instant::now();
        let mut report = DrainReport::default();
        if tokio::time::timeout(drain_timeout, self.admission.close_when_idle())
            .await
            .is_err()
        {
            report.upgraded_closed = self.upgraded();
            self.drain_deadline.cancel();
            let closed =
                tokio::time::timeout(CLOSE_HANDSHAKE_GRACE, self.admission.close_when_idle()).await;
            if closed.is_err() {
                report.requests_cut = self.admission.in_flight().saturating_sub(self.upgraded());
                self.admission.close_now();
            }
        }
        self.retire();
        report.duration = started.elapsed();
        report
    }

    /// Stops health checks and closes idle upstream connections.
    pub fn retire(&self) {
        self.admission.close_now();
        self.retired.cancel();
        for target in &self.targets {
            target.pool().close();
        }
    }
}

impl Candidate for Arc<Target> {
    fn is_available(&self) -> bool {
        self.is_healthy()
    }

    fn load(&self) -> u64 {
        self.in_flight()
    }
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("label", &self.label)
            .field("targets", &self.targets)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_balancer::Balance;

    fn version(targets: usize) -> Arc<Version> {
        let targets = (0..targets)
            .map(|index| {
                let address: std::net::SocketAddr = ([127, 0, 0, 1], 1000 + index as u16).into();
                Arc::new(Target::new(address.to_string(), address))
            })
            .collect();
        Arc::new(Version::new(
            "v1".into(),
            targets,
            LoadBalancer::new(Balance::RoundRobin),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn a_deploy_wakes_when_the_last_target_turns_healthy() {
        let version = version(2);
        let checker = Arc::clone(&version);
        tokio::spawn(async move {
            checker.set_target_health(0, true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            checker.set_target_health(1, true);
        });
        let started = tokio::time::Instant::now();
        assert!(version.wait_all_healthy(Duration::from_secs(5)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_never_turns_healthy_times_out() {
        let version = version(2);
        version.set_target_health(0, true);
        assert!(!version.wait_all_healthy(Duration::from_secs(5)).await);
    }
}
