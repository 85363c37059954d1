//! Route changes asked through the control API: health-gated deploys,
//! removals and pauses, each persisted and applied in order, one at a time
//! per service.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_api::{
    Balance as WireBalance, DeployOutcome, DeployRoute, PauseRequest, PauseState, RouteInfo,
    StatusRole, TargetInfo, TargetingKey, VersionInfo, VersionRole,
};
use baton_proxy::{
    Balance, DrainReport, FULL_WEIGHT, HealthCheck, LoadBalancer, PauseGate, RequestAnnotator,
    Router, Service, Target, Version, normalize_prefix, spawn_health_checks,
};
use baton_state::{
    FlagInjection, PauseRecord, ServiceOptions, ServiceRecord, Store, VersionRecord,
};
use tokio::time::Instant;

use crate::flag_annotator::FlagAnnotator;
use crate::flag_service::FlagService;

mod canary;

pub use canary::CanaryTraffic;

/// Why a route change was refused or failed; the running routes are unchanged.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// No such service.
    #[error("no service named {0:?}; `baton route list` shows the services")]
    NotFound(String),
    /// Another change to the service is running.
    #[error("a change to service {0:?} is already running; wait for it to finish, then try again")]
    Busy(String),
    /// The new targets never became healthy.
    #[error(
        "the new targets of {service:?} did not become healthy within {timeout:?} \
         (unhealthy: {unhealthy}); traffic still goes to the previous version. \
         Check that the app answers 2xx on {health_path}"
    )]
    Unhealthy {
        /// The service.
        service: String,
        /// The deploy timeout.
        timeout: Duration,
        /// The targets that failed.
        unhealthy: String,
        /// The health path.
        health_path: String,
    },
    /// The health wait was cut short.
    #[error("{0}")]
    Aborted(String),
    /// The route would collide with another service's.
    #[error(transparent)]
    Conflict(#[from] baton_proxy::RouteConflict),
    /// The state store failed; nothing was changed.
    #[error("saving the route failed, nothing was changed: {0}")]
    State(#[from] baton_state::StateError),
    /// A state call died (a bug); nothing was changed.
    #[error("the state store call failed inside the daemon: {0}; see the daemon's log")]
    Internal(String),
}

/// A version that passed its health gate and waits to be routed. Dropped
/// without [`RouteManager::install`], it stops its health checks.
pub struct StagedRoute {
    record: ServiceRecord,
    previous: Option<ServiceRecord>,
    version: Arc<Version>,
    healthy_after: Duration,
    routed: bool,
}

impl StagedRoute {
    /// The version's label.
    pub fn label(&self) -> &str {
        self.version.label()
    }

    /// How long the targets took to become healthy.
    pub fn healthy_after(&self) -> Duration {
        self.healthy_after
    }

    fn installed(&mut self) {
        // The router owns the version now; Drop must not retire it.
        self.routed = true;
    }
}

impl Drop for StagedRoute {
    fn drop(&mut self) {
        if !self.routed {
            self.version.retire();
        }
    }
}

/// A version in a service's route, as `baton status` shows it.
pub struct RoutedVersion {
    /// The version, with its request stats.
    pub version: Arc<Version>,
    /// What it does in the route.
    pub role: StatusRole,
    /// Its share of the requests the split places, in basis points.
    pub weight_bp: u32,
}

/// Applies route changes to the live router and the state store.
pub struct RouteManager {
    router: Arc<Router>,
    store: Arc<Store>,
    busy: Mutex<HashSet<String>>,
    /// Candidates beside a stable version, by service (see `canary`).
    canaries: Mutex<std::collections::HashMap<String, canary::Canary>>,
    /// The host's flags, for services that inject them into requests.
    flags: Option<Arc<FlagService>>,
}

/// Marks a service busy while a change runs.
struct BusyGuard<'a> {
    manager: &'a RouteManager,
    service: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.manager.busy).remove(&self.service);
    }
}

impl RouteManager {
    /// A manager over the live `router`, persisting to `store`.
    pub fn new(router: Arc<Router>, store: Arc<Store>) -> Self {
        RouteManager {
            router,
            store,
            busy: Mutex::new(HashSet::new()),
            canaries: Mutex::new(std::collections::HashMap::new()),
            flags: None,
        }
    }

    /// The same manager, giving the services whose options ask for it the
    /// flags of `flags` in each request (`X-Baton-Flags`).
    pub fn with_flags(mut self, flags: Arc<FlagService>) -> Self {
        self.flags = Some(flags);
        self
    }

    /// Re-creates the stored routes. Restored targets get no traffic until a
    /// health check passes; requests that arrive first wait for it.
    pub async fn restore(&self) -> Result<usize, RouteError> {
        let mut restored = 0;
        for record in self.on_store(Store::services).await? {
            let Some(active) = &record.active else {
                continue;
            };
            let targets = match resolve_targets(&active.targets).await {
                Ok(targets) => targets,
                Err(error) => {
                    tracing::error!(service = record.name, %error, "Cannot restore route");
                    continue;
                }
            };
            let version = new_version(active.label.clone(), targets, record.options.balance);
            spawn_health_checks(Arc::clone(&version), health_check(&record.options));
            let service = service_from(&record, version, self.flags.as_ref());
            if let Some(pause) = &record.pause {
                service.gate.pause(Duration::from_millis(pause.max_ms));
            }
            self.router.install(service)?;
            restored += 1;
        }
        Ok(restored)
    }

    /// Health-gates the new targets, swaps them in, drains the old version.
    pub async fn deploy(
        &self,
        name: &str,
        request: DeployRoute,
    ) -> Result<DeployOutcome, RouteError> {
        validate(name, &request)?;
        let _busy = self.claim(name)?;
        let staged = self.stage(name, request, std::future::pending()).await?;
        self.swap(staged).await
    }

    /// First half of a deploy: the new targets, health-gated, not yet
    /// routed. `abort` ends the wait early with its reason (a new process
    /// that keeps crashing, say). Dropping the result un-stages it.
    pub async fn stage(
        &self,
        name: &str,
        request: DeployRoute,
        abort: impl Future<Output = String>,
    ) -> Result<StagedRoute, RouteError> {
        validate(name, &request)?;
        let targets = resolve_targets(&request.targets).await?;
        let previous = {
            let name = name.to_string();
            self.on_store(move |store| store.service(&name)).await?
        };
        let label = request.version.clone().unwrap_or_else(|| {
            next_label(previous.as_ref().and_then(|record| record.active.as_ref()))
        });
        let options = ServiceOptions {
            health_path: request.health_path.clone(),
            health_interval_ms: request.health_interval_ms,
            healthy_after: request.healthy_after,
            health_timeout_ms: request.health_timeout_ms,
            drain_timeout_ms: request.drain_timeout_ms,
            balance: match request.balance {
                WireBalance::RoundRobin => baton_state::Balance::RoundRobin,
                WireBalance::LeastInFlight => baton_state::Balance::LeastInFlight,
            },
            max_request_body: request.max_request_body,
            flags: request.inject_flags.as_ref().map(|inject| FlagInjection {
                targeting_key: inject.targeting_key.as_ref().map(ToString::to_string),
            }),
        };
        let record = ServiceRecord {
            name: name.to_string(),
            hosts: request
                .hosts
                .iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
            path_prefix: normalize_prefix(&request.path_prefix),
            options,
            active: Some(VersionRecord {
                label: label.clone(),
                targets: request.targets.clone(),
                activated_at_ms: 0,
            }),
            pause: previous.as_ref().and_then(|record| record.pause),
        };
        let version = new_version(label, targets, record.options.balance);
        // A route that collides with another service fails now, not after
        // the health wait.
        self.router.check(&service_from(
            &record,
            Arc::clone(&version),
            self.flags.as_ref(),
        ))?;
        let mut staged = StagedRoute {
            record,
            previous,
            version,
            healthy_after: Duration::ZERO,
            routed: false,
        };
        spawn_health_checks(
            Arc::clone(&staged.version),
            health_check(&staged.record.options),
        );

        let started = Instant::now();
        let deploy_timeout = Duration::from_millis(request.deploy_timeout_ms);
        let healthy = tokio::select! {
            healthy = staged.version.wait_all_healthy(deploy_timeout) => healthy,
            reason = abort => return Err(RouteError::Aborted(reason)),
        };
        if !healthy {
            let unhealthy: Vec<&str> = staged
                .version
                .targets()
                .iter()
                .filter(|target| !target.is_healthy())
                .map(|target| target.address())
                .collect();
            return Err(RouteError::Unhealthy {
                service: name.to_string(),
                timeout: deploy_timeout,
                unhealthy: unhealthy.join(", "),
                health_path: request.health_path.clone(),
            });
        }
        staged.healthy_after = started.elapsed();
        Ok(staged)
    }

    /// Second half of a deploy: routes the staged version, saves the route,
    /// drains the version it replaced.
    pub async fn install(&self, staged: StagedRoute) -> Result<DeployOutcome, RouteError> {
        let _busy = self.claim(&staged.record.name)?;
        self.swap(staged).await
    }

    async fn swap(&self, mut staged: StagedRoute) -> Result<DeployOutcome, RouteError> {
        let name = staged.record.name.clone();
        let version = Arc::clone(&staged.version);
        let label = version.label().to_string();
        if let Some(active) = staged.record.active.as_mut() {
            active.activated_at_ms = unix_ms();
        }
        let record = staged.record.clone();
        let replaced = self.router.install(service_from(
            &record,
            Arc::clone(&version),
            self.flags.as_ref(),
        ))?;
        staged.installed();
        tracing::info!(service = name, version = label, "Route switched");
        // From the swap on, the old version only finishes what it has: list
        // it as draining now, not after the state write (which may wait on
        // the disk for a while).
        if let Some(old) = &replaced {
            self.router.track_draining(&name, Arc::clone(old));
        }
        let saved = {
            let record = record.clone();
            self.on_store(move |store| store.put_service(&record)).await
        };
        if let Err(error) = saved {
            if let Some(old) = &replaced {
                self.router.untrack_draining(old);
            }
            // Put the previous route back: a route that is not saved would
            // silently vanish on the next restart.
            match (&replaced, &staged.previous) {
                (Some(old), Some(previous)) => {
                    let _ = self.router.install(service_from(
                        previous,
                        Arc::clone(old),
                        self.flags.as_ref(),
                    ));
                }
                _ => {
                    self.router.remove(&name);
                }
            }
            version.retire();
            return Err(error);
        }
        let drain = self
            .drain(
                &name,
                replaced.clone(),
                Duration::from_millis(record.options.drain_timeout_ms),
            )
            .await;
        Ok(DeployOutcome {
            service: name,
            version: label,
            previous_version: replaced.map(|old| old.label().to_string()),
            healthy_after_ms: millis(staged.healthy_after),
            drain_ms: millis(drain.duration),
            requests_cut_at_drain_timeout: drain.requests_cut,
            upgraded_connections_closed: drain.upgraded_closed,
        })
    }

    /// Takes the service out of the route and drains its version.
    pub async fn remove(&self, name: &str) -> Result<DeployOutcome, RouteError> {
        let _busy = self.claim(name)?;
        let removed = {
            let name = name.to_string();
            self.on_store(move |store| store.remove_service(&name))
                .await?
        };
        if !removed {
            return Err(RouteError::NotFound(name.to_string()));
        }
        let removed = self.router.remove(name);
        let drain_timeout = removed
            .as_ref()
            .map_or(Duration::ZERO, |service| service.drain_timeout);
        // A candidate mid-canary leaves with the service and drains beside it.
        let candidate = removed.as_ref().and_then(|service| service.set_split(None));
        if let Some(candidate) = &candidate {
            self.router.track_draining(name, Arc::clone(candidate));
        }
        let version = removed.map(|service| Arc::clone(&service.active));
        if let Some(old) = &version {
            self.router.track_draining(name, Arc::clone(old));
        }
        let (drain, _) = tokio::join!(
            self.drain(name, version.clone(), drain_timeout),
            self.drain(name, candidate, drain_timeout)
        );
        Ok(DeployOutcome {
            service: name.to_string(),
            version: String::new(),
            previous_version: version.map(|old| old.label().to_string()),
            healthy_after_ms: 0,
            drain_ms: millis(drain.duration),
            requests_cut_at_drain_timeout: drain.requests_cut,
            upgraded_connections_closed: drain.upgraded_closed,
        })
    }

    /// Holds the service's new requests up to `max` each.
    pub async fn pause(&self, name: &str, request: &PauseRequest) -> Result<RouteInfo, RouteError> {
        if request.max_ms == 0 {
            return Err(RouteError::Invalid(
                "--max must be longer than 0s".to_string(),
            ));
        }
        let service = self.live_service(name)?;
        let pause = PauseRecord {
            max_ms: request.max_ms,
            since_ms: unix_ms(),
        };
        let service_name = name.to_string();
        self.on_store(move |store| store.set_pause(&service_name, Some(&pause)))
            .await?;
        service.gate.pause(Duration::from_millis(request.max_ms));
        self.info(name)
    }

    /// Lets the service's requests through again.
    pub async fn resume(&self, name: &str) -> Result<RouteInfo, RouteError> {
        let service = self.live_service(name)?;
        let service_name = name.to_string();
        self.on_store(move |store| store.set_pause(&service_name, None))
            .await?;
        service.gate.resume();
        self.info(name)
    }

    /// Every service as `route list` shows it.
    pub fn list(&self) -> Vec<RouteInfo> {
        let table = self.router.load();
        let draining = self.router.draining();
        table
            .services()
            .iter()
            .map(|service| route_info(service, &draining))
            .collect()
    }

    /// The versions in `name`'s route, stable first, then the candidate of
    /// a split, then those draining; each with its share of the requests
    /// the split places (sticky clients stay where they are). Empty for no
    /// such service.
    pub fn versions(&self, name: &str) -> Vec<RoutedVersion> {
        let Ok(service) = self.live_service(name) else {
            return Vec::new();
        };
        let mut versions = in_route(&service);
        versions.extend(
            self.router
                .draining()
                .into_iter()
                .filter(|(service, _)| service == name)
                .map(|(_, version)| draining(version)),
        );
        versions
    }

    /// Every version that may still carry traffic, with its service's name:
    /// each service's stable and candidate, then every version draining (a
    /// removed service's too), as `/metrics` and the rollups count them.
    pub fn every_version(&self) -> Vec<(String, RoutedVersion)> {
        let table = self.router.load();
        let mut versions: Vec<(String, RoutedVersion)> = table
            .services()
            .iter()
            .flat_map(|service| {
                in_route(service)
                    .into_iter()
                    .map(|routed| (service.name.clone(), routed))
            })
            .collect();
        versions.extend(
            self.router
                .draining()
                .into_iter()
                .map(|(service, version)| (service, draining(version))),
        );
        versions
    }

    /// Runs a state call off the async workers: a commit waits for fsync,
    /// and the proxy must not stall behind the disk.
    async fn on_store<T, F>(&self, call: F) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, baton_state::StateError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || call(&store)).await {
            Ok(result) => Ok(result?),
            Err(error) => Err(RouteError::Internal(error.to_string())),
        }
    }

    fn info(&self, name: &str) -> Result<RouteInfo, RouteError> {
        let service = self.live_service(name)?;
        Ok(route_info(&service, &self.router.draining()))
    }

    fn live_service(&self, name: &str) -> Result<Arc<Service>, RouteError> {
        self.router
            .load()
            .service(name)
            .cloned()
            .ok_or_else(|| RouteError::NotFound(name.to_string()))
    }

    fn claim(&self, name: &str) -> Result<BusyGuard<'_>, RouteError> {
        if !lock(&self.busy).insert(name.to_string()) {
            return Err(RouteError::Busy(name.to_string()));
        }
        Ok(BusyGuard {
            manager: self,
            service: name.to_string(),
        })
    }

    /// Drains `version`, which the caller tracked as draining when it left
    /// the route, and forgets it.
    async fn drain(
        &self,
        name: &str,
        version: Option<Arc<Version>>,
        drain_timeout: Duration,
    ) -> DrainReport {
        let Some(version) = version else {
            return DrainReport::default();
        };
        let report = version.drain(drain_timeout).await;
        self.router.untrack_draining(&version);
        tracing::info!(
            service = name,
            version = version.label(),
            drain_ms = millis(report.duration),
            requests_cut = report.requests_cut,
            upgraded_closed = report.upgraded_closed,
            "Old version drained"
        );
        report
    }
}

/// A service's stable version and the candidate of its split, each with its
/// share of the requests the split places.
fn in_route(service: &Service) -> Vec<RoutedVersion> {
    let split = service.current_split();
    let candidate_bp = split.as_ref().map_or(0, |split| split.weight_bp);
    let mut versions = vec![RoutedVersion {
        version: Arc::clone(&service.active),
        role: StatusRole::Stable,
        weight_bp: FULL_WEIGHT.saturating_sub(candidate_bp),
    }];
    versions.extend(split.map(|split| RoutedVersion {
        version: Arc::clone(&split.candidate),
        role: StatusRole::Candidate,
        weight_bp: split.weight_bp,
    }));
    versions
}

fn draining(version: Arc<Version>) -> RoutedVersion {
    RoutedVersion {
        version,
        role: StatusRole::Draining,
        weight_bp: 0,
    }
}

fn validate(name: &str, request: &DeployRoute) -> Result<(), RouteError> {
    let invalid = |message: String| Err(RouteError::Invalid(message));
    if let Err(message) = baton_api::check_service_name(name) {
        return invalid(message);
    }
    if request.targets.is_empty() {
        return invalid("at least one --target HOST:PORT is needed".to_string());
    }
    if !request.health_path.starts_with('/') {
        return invalid(format!(
            "--health-path {:?} must start with '/'",
            request.health_path
        ));
    }
    if !request.path_prefix.is_empty() && !request.path_prefix.starts_with('/') {
        return invalid(format!(
            "--path-prefix {:?} must start with '/'",
            request.path_prefix
        ));
    }
    for host in &request.hosts {
        if !baton_api::is_host_name(host) {
            return invalid(format!(
                "--host {host:?} is not a host name (use e.g. app.example.com or *.example.com)"
            ));
        }
    }
    if request.health_interval_ms == 0
        || request.deploy_timeout_ms == 0
        || request.health_timeout_ms == 0
    {
        return invalid(
            "health interval, health timeout and deploy timeout must be longer than 0s".to_string(),
        );
    }
    if let Some(label) = &request.version
        && (label.is_empty()
            || label.len() > 64
            || label.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return invalid(format!(
            "--version {label:?} must be 1 to 64 characters without spaces"
        ));
    }
    Ok(())
}

async fn resolve_targets(addresses: &[String]) -> Result<Vec<Arc<Target>>, RouteError> {
    let mut targets = Vec::with_capacity(addresses.len());
    for address in addresses {
        let resolved: Option<SocketAddr> = match tokio::net::lookup_host(address.as_str()).await {
            Ok(mut found) => found.next(),
            Err(_) => None,
        };
        let Some(resolved) = resolved else {
            return Err(RouteError::Invalid(format!(
                "target {address:?} is not a reachable HOST:PORT (e.g. 127.0.0.1:3000)"
            )));
        };
        targets.push(Arc::new(Target::new(address.clone(), resolved)));
    }
    Ok(targets)
}

fn new_version(
    label: String,
    targets: Vec<Arc<Target>>,
    balance: baton_state::Balance,
) -> Arc<Version> {
    let balance = match balance {
        baton_state::Balance::RoundRobin => Balance::RoundRobin,
        baton_state::Balance::LeastInFlight => Balance::LeastInFlight,
    };
    Arc::new(Version::new(label, targets, LoadBalancer::new(balance)))
}

fn health_check(options: &ServiceOptions) -> HealthCheck {
    HealthCheck {
        path: options.health_path.clone(),
        interval: Duration::from_millis(options.health_interval_ms),
        threshold: options.healthy_after,
        timeout: Duration::from_millis(options.health_timeout_ms),
    }
}

fn service_from(
    record: &ServiceRecord,
    version: Arc<Version>,
    flags: Option<&Arc<FlagService>>,
) -> Service {
    let annotator = match (&record.options.flags, flags) {
        (Some(injection), Some(flags)) => {
            Some(flag_annotator(record, injection, Arc::clone(flags)))
        }
        _ => None,
    };
    Service {
        name: record.name.clone(),
        hosts: record.hosts.clone(),
        path_prefix: normalize_prefix(&record.path_prefix),
        max_request_body: record.options.max_request_body,
        drain_timeout: Duration::from_millis(record.options.drain_timeout_ms),
        gate: Arc::new(PauseGate::default()),
        active: version,
        split: Arc::default(),
        annotator,
    }
}

/// The flag injection `injection` asks of service `record`. The key was
/// checked when the app's `baton.toml` was read; one that no longer reads
/// (a hand-edited state file) injects without a user rather than not at all.
fn flag_annotator(
    record: &ServiceRecord,
    injection: &FlagInjection,
    flags: Arc<FlagService>,
) -> Arc<dyn RequestAnnotator> {
    let targeting_key = injection
        .targeting_key
        .as_deref()
        .and_then(|text| match text.parse::<TargetingKey>() {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::error!(service = record.name, %error, "Stored targeting key unreadable; flags are evaluated without a user");
                None
            }
        });
    Arc::new(FlagAnnotator::new(flags, targeting_key, &record.name))
}

/// `v1`, then `v2`, … after the previous label's number.
fn next_label(previous: Option<&VersionRecord>) -> String {
    let number = previous
        .and_then(|record| record.label.strip_prefix('v'))
        .and_then(|digits| digits.parse::<u64>().ok())
        .unwrap_or(0);
    format!("v{}", number + 1)
}

fn route_info(service: &Service, draining: &[(String, Arc<Version>)]) -> RouteInfo {
    let mut versions = vec![version_info(&service.active, VersionRole::Stable)];
    if let Some(split) = service.current_split() {
        versions.push(version_info(&split.candidate, VersionRole::Candidate));
    }
    versions.extend(
        draining
            .iter()
            .filter(|(name, _)| *name == service.name)
            .map(|(_, version)| version_info(version, VersionRole::Draining)),
    );
    RouteInfo {
        service: service.name.clone(),
        hosts: service.hosts.clone(),
        path_prefix: service.path_prefix.clone(),
        paused: service.gate.paused().map(|max| PauseState {
            max_ms: millis(max),
            held: service.gate.held(),
        }),
        versions,
    }
}

fn version_info(version: &Version, role: VersionRole) -> VersionInfo {
    VersionInfo {
        label: version.label().to_string(),
        role,
        targets: version
            .targets()
            .iter()
            .map(|target| TargetInfo {
                address: target.address().to_string(),
                healthy: target.is_healthy(),
                in_flight: target.in_flight(),
            })
            .collect(),
        in_flight: version.in_flight(),
        last_minute: version
            .stats()
            .snapshot(Instant::now().into_std(), Duration::from_secs(60)),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_count_up() {
        assert_eq!(next_label(None), "v1");
        let record = |label: &str| VersionRecord {
            label: label.to_string(),
            targets: vec![],
            activated_at_ms: 0,
        };
        assert_eq!(next_label(Some(&record("v41"))), "v42");
        assert_eq!(next_label(Some(&record("blue"))), "v1");
    }
}
