//! A canary: a staged version beside a service's stable one, taking a
//! weighted share of its traffic until it is promoted or aborted.
//!
//! The split is not saved: a daemon that restarts mid-canary serves the
//! stable version alone (the saved route), which is what an abort does.
//! While a canary runs, no other change to its service is accepted.

use std::sync::Arc;

use baton_api::DeployOutcome;
use baton_proxy::{DrainReport, Shadow, Split, Version};
use baton_state::ServiceRecord;

use super::{RouteError, RouteManager, StagedRoute, lock};

/// How a canary takes traffic when it starts.
#[derive(Clone, Debug)]
pub struct CanaryTraffic {
    /// Its share of live requests, in basis points.
    pub weight_bp: u32,
    /// Copies of a share of stable's requests, compared and dropped.
    pub shadow: Option<Shadow>,
    /// A client stays on the version it first got (cookie `baton_version`).
    pub sticky: bool,
    /// `X-Baton-Version: candidate|stable` forces a version.
    pub override_header: bool,
}

/// A candidate in a service's split, and what promoting it must save.
pub(super) struct Canary {
    record: ServiceRecord,
    previous: Option<ServiceRecord>,
    version: Arc<Version>,
}

impl RouteManager {
    /// Puts `staged` beside the live service's stable version, taking
    /// traffic as `traffic` says. The service must already serve a stable
    /// version.
    pub async fn start_canary(
        &self,
        mut staged: StagedRoute,
        traffic: CanaryTraffic,
    ) -> Result<(), RouteError> {
        let name = staged.record.name.clone();
        let busy = self.claim(&name)?;
        let service = self.live_service(&name)?;
        let CanaryTraffic {
            weight_bp,
            shadow,
            sticky,
            override_header,
        } = traffic;
        let left = service.set_split(Some(Split {
            candidate: Arc::clone(&staged.version),
            weight_bp,
            sticky,
            override_header,
            shadow,
        }));
        staged.installed();
        if let Some(left) = left {
            // A canary replaced without promote or abort (not done by this
            // manager, but never leave a version undrained).
            self.router.track_draining(&name, Arc::clone(&left));
            left.retire();
            self.router.untrack_draining(&left);
        }
        lock(&self.canaries).insert(
            name.clone(),
            Canary {
                record: staged.record.clone(),
                previous: staged.previous.clone(),
                version: Arc::clone(&staged.version),
            },
        );
        // The claim outlives this call: it ends at promote or abort.
        std::mem::forget(busy);
        tracing::info!(
            service = name,
            candidate = staged.version.label(),
            weight_bp,
            "Canary started"
        );
        Ok(())
    }

    /// Moves the canary of `name` to `weight_bp` of live traffic and to
    /// `shadow` (`None`: no copies), in one change; false without a canary.
    pub fn set_canary_traffic(&self, name: &str, weight_bp: u32, shadow: Option<Shadow>) -> bool {
        if !lock(&self.canaries).contains_key(name) {
            return false;
        }
        self.live_service(name)
            .is_ok_and(|service| service.set_traffic(weight_bp, shadow))
    }

    /// The stable and the candidate version of `name`'s canary, for the
    /// numbers a rollout decides on.
    pub fn canary_versions(&self, name: &str) -> Option<(Arc<Version>, Arc<Version>)> {
        let candidate = Arc::clone(&lock(&self.canaries).get(name)?.version);
        let service = self.live_service(name).ok()?;
        Some((Arc::clone(&service.active), candidate))
    }

    /// Makes the canary the service's stable version (saved), then drains
    /// the version it replaced.
    pub async fn promote_canary(&self, name: &str) -> Result<DeployOutcome, RouteError> {
        let canary = lock(&self.canaries)
            .remove(name)
            .ok_or_else(|| RouteError::NotFound(name.to_string()))?;
        let staged = StagedRoute {
            record: canary.record,
            previous: canary.previous,
            version: canary.version,
            healthy_after: std::time::Duration::ZERO,
            routed: false,
        };
        let outcome = self.swap(staged).await;
        lock(&self.busy).remove(name);
        outcome
    }

    /// Sends all of `name`'s traffic back to its stable version and drains
    /// the candidate.
    pub async fn abort_canary(&self, name: &str) -> Result<DrainReport, RouteError> {
        let canary = lock(&self.canaries)
            .remove(name)
            .ok_or_else(|| RouteError::NotFound(name.to_string()));
        let result = match canary {
            Ok(canary) => {
                let drain_timeout =
                    std::time::Duration::from_millis(canary.record.options.drain_timeout_ms);
                let left = self
                    .live_service(name)
                    .ok()
                    .and_then(|service| service.set_split(None))
                    .unwrap_or(canary.version);
                self.router.track_draining(name, Arc::clone(&left));
                tracing::info!(service = name, candidate = left.label(), "Canary aborted");
                Ok(self.drain(name, Some(left), drain_timeout).await)
            }
            Err(error) => Err(error),
        };
        lock(&self.busy).remove(name);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use baton_api::{Balance, DeployRoute};
    use baton_proxy::Router;
    use baton_state::Store;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An upstream that answers every request 200.
    async fn upstream() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 2048];
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
        address
    }

    fn route(target: String, label: &str) -> DeployRoute {
        DeployRoute {
            targets: vec![target],
            hosts: vec![],
            path_prefix: "/".into(),
            version: Some(label.into()),
            health_path: "/health".into(),
            health_interval_ms: 20,
            healthy_after: 1,
            health_timeout_ms: 1000,
            deploy_timeout_ms: 10_000,
            drain_timeout_ms: 1000,
            balance: Balance::RoundRobin,
            max_request_body: None,
            inject_flags: None,
        }
    }

    fn traffic(weight_bp: u32, sticky: bool) -> CanaryTraffic {
        CanaryTraffic {
            weight_bp,
            shadow: None,
            sticky,
            override_header: false,
        }
    }

    #[tokio::test]
    async fn a_canary_is_weighted_then_promoted_or_aborted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let router = Arc::new(Router::new());
        let routes = RouteManager::new(Arc::clone(&router), Arc::clone(&store));
        routes
            .deploy("web", route(upstream().await, "v1"))
            .await
            .unwrap();

        // No canary yet: nothing to weigh, promote or abort.
        assert!(!routes.set_canary_traffic("web", 100, None));
        assert!(routes.promote_canary("web").await.is_err());

        let staged = routes
            .stage("web", route(upstream().await, "v2"), std::future::pending())
            .await
            .unwrap();
        routes
            .start_canary(staged, traffic(100, true))
            .await
            .unwrap();
        let split = router
            .load()
            .service("web")
            .unwrap()
            .current_split()
            .unwrap();
        assert_eq!((split.candidate.label(), split.weight_bp), ("v2", 100));
        let busy = routes.deploy("web", route(upstream().await, "v9")).await;
        assert!(matches!(busy, Err(RouteError::Busy(_))), "{busy:?}");
        let shadow = Shadow {
            share_bp: 500,
            methods: vec![http::Method::GET],
        };
        assert!(routes.set_canary_traffic("web", 0, Some(shadow.clone())));
        let split = router
            .load()
            .service("web")
            .unwrap()
            .current_split()
            .unwrap();
        assert_eq!((split.weight_bp, split.shadow.as_ref()), (0, Some(&shadow)));
        assert!(routes.set_canary_traffic("web", 5000, None));
        let (stable, candidate) = routes.canary_versions("web").unwrap();
        assert_eq!((stable.label(), candidate.label()), ("v1", "v2"));

        let outcome = routes.promote_canary("web").await.unwrap();
        assert_eq!(outcome.version, "v2");
        assert_eq!(outcome.previous_version.as_deref(), Some("v1"));
        let service = Arc::clone(router.load().service("web").unwrap());
        assert_eq!(service.active.label(), "v2");
        assert!(service.current_split().is_none());
        assert!(stable.retired().is_cancelled(), "the old stable drained");
        let saved = store.service("web").unwrap().unwrap();
        assert_eq!(saved.active.unwrap().label, "v2");

        let staged = routes
            .stage("web", route(upstream().await, "v3"), std::future::pending())
            .await
            .unwrap();
        routes
            .start_canary(staged, traffic(1000, false))
            .await
            .unwrap();
        let (_, v3) = routes.canary_versions("web").unwrap();
        routes.abort_canary("web").await.unwrap();
        let service = Arc::clone(router.load().service("web").unwrap());
        assert_eq!(service.active.label(), "v2");
        assert!(service.current_split().is_none());
        assert!(v3.retired().is_cancelled(), "the candidate drained");
        assert!(routes.canary_versions("web").is_none());
        // The service takes changes again.
        routes
            .deploy("web", route(upstream().await, "v4"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
