//! Active health checks: each target of a version is asked `GET <path>` on a
//! fresh connection every interval; N answers in a row decide its health.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::target::Target;
use crate::version::Version;

/// How a version's targets are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path asked on each target.
    pub path: String,
    /// Time between checks of one target.
    pub interval: Duration,
    /// Consecutive passes that make a target healthy (and failures that make it unhealthy).
    pub threshold: u32,
    /// Longest wait for one answer.
    pub timeout: Duration,
}

/// The verdict so far for one target: consecutive passes or failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Streak {
    passes: u32,
    failures: u32,
}

impl Streak {
    /// Folds one check result in; returns the new health if it changed.
    pub fn observe(&mut self, passed: bool, healthy_now: bool, threshold: u32) -> Option<bool> {
        let threshold = threshold.max(1);
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
            (!healthy_now && self.passes >= threshold).then_some(true)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.passes = 0;
            (healthy_now && self.failures >= threshold).then_some(false)
        }
    }
}

/// Checks every target of `version` until the version retires.
pub fn spawn(version: Arc<Version>, check: HealthCheck) {
    for index in 0..version.targets().len() {
        let version = Arc::clone(&version);
        let check = check.clone();
        tokio::spawn(async move {
            let retired = version.retired().clone();
            tokio::select! {
                _ = retired.cancelled() => {}
                _ = check_target(&version, index, &check) => {}
            }
        });
    }
}

/// A healthy target is checked at least this far apart: the fast interval
/// serves deploys (a new version is gated in milliseconds); steady state
/// needs no more than this, and passive checks catch refused connects at once.
const STEADY_INTERVAL: Duration = Duration::from_secs(1);

async fn check_target(version: &Version, index: usize, check: &HealthCheck) {
    let Some(target) = version.targets().get(index).cloned() else {
        return;
    };
    let mut streak = Streak::default();
    let mut prober = Prober::default();
    let interval = check.interval.max(Duration::from_millis(10));
    let mut ever_healthy = false;
    loop {
        let verdict = prober.check(&target, check).await;
        let passed = verdict == Verdict::Passed;
        if let Some(healthy) = streak.observe(passed, target.is_healthy(), check.threshold) {
            if healthy {
                tracing::info!(
                    target = target.address(),
                    version = version.label(),
                    "Target is healthy"
                );
            } else {
                tracing::warn!(
                    target = target.address(),
                    version = version.label(),
                    "Target is unhealthy"
                );
            }
            version.set_target_health(index, healthy);
        }
        ever_healthy |= target.is_healthy();
        let pause = if target.is_healthy() {
            interval.max(STEADY_INTERVAL)
        } else if verdict == Verdict::NotListening && !ever_healthy {
            // A booting app is not listening yet: ask again soon, so its
            // first pass comes right after it binds, not up to a whole
            // interval later.
            BOOT_RETRY.min(interval)
        } else {
            interval
        };
        tokio::time::sleep(pause).await;
    }
}

/// How soon a target that refused the connection is asked again while it
/// boots.
const BOOT_RETRY: Duration = Duration::from_millis(10);

/// What one check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// A 2xx answer.
    Passed,
    /// Another answer, a broken exchange or a timeout.
    Failed,
    /// Nothing listens on the port (yet).
    NotListening,
}

/// Checks over one keep-alive connection per target, reopened when it
/// breaks, so a fast interval does not churn sockets.
#[derive(Default)]
struct Prober {
    connection: Option<http1::SendRequest<Empty<Bytes>>>,
}

impl Prober {
    async fn check(&mut self, target: &Target, check: &HealthCheck) -> Verdict {
        let attempt = self.attempt(target, check);
        let verdict = match tokio::time::timeout(check.timeout, attempt).await {
            Ok(Some(verdict)) => verdict,
            _ => Verdict::Failed,
        };
        if verdict != Verdict::Passed {
            // A failed or timed-out exchange leaves the connection unusable.
            self.connection = None;
        }
        verdict
    }

    async fn attempt(&mut self, target: &Target, check: &HealthCheck) -> Option<Verdict> {
        let mut sender = match self.connection.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = match TcpStream::connect(target.socket_address()).await {
                    Ok(stream) => stream,
                    Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                        return Some(Verdict::NotListening);
                    }
                    Err(_) => return None,
                };
                let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
                tokio::spawn(connection);
                sender
            }
        };
        sender.ready().await.ok()?;
        let request = Request::get(check.path.as_str())
            .header(header::HOST, target.address())
            .header(header::USER_AGENT, "baton-health-check")
            .body(Empty::<Bytes>::new())
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let passed = response.status().is_success();
        // Read the body so the connection can take the next check.
        response.into_body().collect().await.ok()?;
        self.connection = Some(sender);
        Some(if passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streak_needs_threshold_in_a_row() {
        let mut streak = Streak::default();
        assert_eq!(streak.observe(true, false, 2), None);
        assert_eq!(streak.observe(false, false, 2), None);
        assert_eq!(streak.observe(true, false, 2), None);
        assert_eq!(streak.observe(true, false, 2), Some(true));
        assert_eq!(streak.observe(true, true, 2), None);
        assert_eq!(streak.observe(false, true, 2), None);
        assert_eq!(streak.observe(false, true, 2), Some(false));
    }

    /// A target that starts listening only after its first check passes as
    /// soon as it answers, not a whole (here: 30 s) interval later.
    #[tokio::test]
    async fn a_booting_target_is_checked_again_soon() {
        use crate::load_balancer::{Balance, LoadBalancer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = reserved.local_addr().unwrap();
        drop(reserved);
        let target = Arc::new(Target::new(address.to_string(), address));
        let version = Arc::new(Version::new(
            "v1".into(),
            vec![target],
            LoadBalancer::new(Balance::RoundRobin),
        ));
        spawn(
            Arc::clone(&version),
            HealthCheck {
                path: "/health".into(),
                interval: Duration::from_secs(30),
                threshold: 1,
                timeout: Duration::from_secs(1),
            },
        );
        // The app binds a moment after the first check was refused.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 {
                            break;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        assert!(
            version.wait_first_healthy(Duration::from_secs(10)).await,
            "a refused first check made the target wait out its 30 s interval"
        );
        version.retire();
    }

    #[test]
    fn threshold_zero_means_one() {
        let mut streak = Streak::default();
        assert_eq!(streak.observe(true, false, 0), Some(true));
    }
}
