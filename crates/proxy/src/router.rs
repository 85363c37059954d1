//! The live route table and the versions still draining out of it.
//!
//! Readers load the table without a lock (arc-swap); writers build a new
//! table and swap it in one step, one writer at a time.

use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Guard};

use crate::route_table::{RouteConflict, RouteTable};
use crate::service::Service;
use crate::version::Version;

/// The route table every request reads, and the writes that replace it.
#[derive(Debug, Default)]
pub struct Router {
    table: ArcSwap<RouteTable>,
    writer: Mutex<()>,
    draining: Mutex<Vec<(String, Arc<Version>)>>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Router::default()
    }

    /// The current table (lock-free).
    pub fn load(&self) -> Guard<Arc<RouteTable>> {
        self.table.load()
    }

    /// Puts `service` in the table, replacing the one of the same name (whose
    /// pause gate and split it keeps). Returns the version that left the
    /// route, if any.
    ///
    /// Installing the split's candidate as the active version promotes it:
    /// the split ends, and the stable version it replaced is returned. Any
    /// other install leaves the split running; only
    /// [`Service::set_split`] ends it otherwise.
    pub fn install(&self, mut service: Service) -> Result<Option<Arc<Version>>, RouteConflict> {
        let _writer = lock(&self.writer);
        let current = self.table.load_full();
        let existing = current.service(&service.name).cloned();
        if let Some(existing) = &existing {
            service.gate = Arc::clone(&existing.gate);
            service.split = Arc::clone(&existing.split);
        }
        let name = service.name.clone();
        let split = Arc::clone(&service.split);
        let active = Arc::clone(&service.active);
        let mut services: Vec<Arc<Service>> = current
            .services()
            .iter()
            .filter(|other| other.name != name)
            .cloned()
            .collect();
        services.push(Arc::new(service));
        let table = RouteTable::new(services)?;
        self.table.store(Arc::new(table));
        // Only after the swap: until then requests on the old table still
        // send the candidate its share.
        split.end_if_candidate(&active);
        Ok(existing.map(|old| Arc::clone(&old.active)).filter(|old| {
            self.load()
                .service(&name)
                .is_none_or(|new| !Arc::ptr_eq(old, &new.active))
        }))
    }

    /// Whether `service` could be installed now without a route conflict.
    pub fn check(&self, service: &Service) -> Result<(), RouteConflict> {
        let current = self.table.load();
        let mut services: Vec<Arc<Service>> = current
            .services()
            .iter()
            .filter(|other| other.name != service.name)
            .cloned()
            .collect();
        services.push(Arc::new(service.clone()));
        RouteTable::new(services).map(drop)
    }

    /// Takes a service out of the table; returns it. Both its versions leave
    /// the route: the caller drains the active one and, while a split runs,
    /// the candidate that `set_split(None)` on the returned service gives.
    pub fn remove(&self, name: &str) -> Option<Arc<Service>> {
        let _writer = lock(&self.writer);
        let current = self.table.load_full();
        let removed = current.service(name).cloned()?;
        let services = current
            .services()
            .iter()
            .filter(|other| other.name != name)
            .cloned()
            .collect();
        // Removing a service cannot create a conflict.
        let table = RouteTable::new(services).unwrap_or_default();
        self.table.store(Arc::new(table));
        Some(removed)
    }

    /// Remembers a version draining out of `service`, for listings.
    pub fn track_draining(&self, service: &str, version: Arc<Version>) {
        lock(&self.draining).push((service.to_string(), version));
    }

    /// Forgets a drained version.
    pub fn untrack_draining(&self, version: &Arc<Version>) {
        lock(&self.draining).retain(|(_, other)| !Arc::ptr_eq(other, version));
    }

    /// Versions draining now, with their service names.
    pub fn draining(&self) -> Vec<(String, Arc<Version>)> {
        lock(&self.draining).clone()
    }

    /// Every version that may still carry traffic: active, candidates of
    /// splits, and draining.
    pub fn all_versions(&self) -> Vec<Arc<Version>> {
        let mut versions: Vec<_> = self
            .load()
            .services()
            .iter()
            .flat_map(|service| {
                let candidate = service
                    .current_split()
                    .map(|split| Arc::clone(&split.candidate));
                std::iter::once(Arc::clone(&service.active)).chain(candidate)
            })
            .collect();
        versions.extend(self.draining().into_iter().map(|(_, version)| version));
        versions
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves the data whole (plain swaps).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_balancer::LoadBalancer;
    use crate::split::Split;
    use std::time::Duration;

    fn version(label: &str) -> Arc<Version> {
        Arc::new(Version::new(label.into(), vec![], LoadBalancer::default()))
    }

    fn service(active: &Arc<Version>, max_request_body: Option<u64>) -> Service {
        Service {
            name: "app".to_string(),
            hosts: vec![],
            path_prefix: "/".to_string(),
            max_request_body,
            drain_timeout: Duration::from_secs(1),
            gate: Arc::default(),
            active: Arc::clone(active),
            split: Arc::default(),
            annotator: None,
        }
    }

    fn live(router: &Router) -> Arc<Service> {
        router.load().service("app").cloned().unwrap()
    }

    fn labels(versions: Vec<Arc<Version>>) -> Vec<String> {
        versions.iter().map(|v| v.label().to_string()).collect()
    }

    #[test]
    fn a_split_survives_route_changes_and_ends_on_promotion() {
        let router = Router::new();
        let (stable, candidate) = (version("v1"), version("v2"));
        router.install(service(&stable, None)).unwrap();
        live(&router).set_split(Some(Split {
            candidate: Arc::clone(&candidate),
            weight_bp: 100,
            sticky: true,
            override_header: false,
            shadow: None,
        }));
        assert_eq!(labels(router.all_versions()), ["v1", "v2"]);

        // Another route change: same versions, the split carries on.
        assert!(
            router
                .install(service(&stable, Some(10)))
                .unwrap()
                .is_none()
        );
        assert!(live(&router).set_weight(1_000));
        assert_eq!(live(&router).current_split().unwrap().weight_bp, 1_000);

        // The candidate installed as active: promoted, the stable leaves.
        let left = router.install(service(&candidate, Some(10))).unwrap();
        assert!(Arc::ptr_eq(&left.unwrap(), &stable));
        assert!(live(&router).current_split().is_none());
        assert_eq!(labels(router.all_versions()), ["v2"]);
    }

    #[test]
    fn an_abort_returns_the_candidate() {
        let router = Router::new();
        let (stable, candidate) = (version("v1"), version("v2"));
        router.install(service(&stable, None)).unwrap();
        let split = Split {
            candidate: Arc::clone(&candidate),
            weight_bp: 5_000,
            sticky: false,
            override_header: false,
            shadow: None,
        };
        assert!(live(&router).set_split(Some(split)).is_none());
        let left = live(&router).set_split(None).unwrap();
        assert!(Arc::ptr_eq(&left, &candidate));
        assert_eq!(labels(router.all_versions()), ["v1"]);
    }
}
