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
    /// pause gate it keeps). Returns the version that left the route, if any.
    pub fn install(&self, mut service: Service) -> Result<Option<Arc<Version>>, RouteConflict> {
        let _writer = lock(&self.writer);
        let current = self.table.load_full();
        let existing = current.service(&service.name).cloned();
        if let Some(existing) = &existing {
            service.gate = Arc::clone(&existing.gate);
        }
        let name = service.name.clone();
        let mut services: Vec<Arc<Service>> = current
            .services()
            .iter()
            .filter(|other| other.name != name)
            .cloned()
            .collect();
        services.push(Arc::new(service));
        let table = RouteTable::new(services)?;
        self.table.store(Arc::new(table));
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

    /// Takes a service out of the table; returns it.
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

    /// Every version that may still carry traffic: active and draining.
    pub fn all_versions(&self) -> Vec<Arc<Version>> {
        let mut versions: Vec<_> = self
            .load()
            .services()
            .iter()
            .map(|service| Arc::clone(&service.active))
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
