//! An immutable routing table: Host, then longest path prefix, to a service.
//! A new table is built for every change and swapped in whole.

use std::collections::HashMap;
use std::sync::Arc;

use crate::service::{Service, prefix_matches};

/// Two services claim the same host and path prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "service {existing:?} already routes host {host:?} path prefix {path_prefix:?}; \
     remove it first or choose another host or prefix for {incoming:?}"
)]
pub struct RouteConflict {
    /// The service holding the route.
    pub existing: String,
    /// The service that asked for it.
    pub incoming: String,
    /// The host (`*` for catch-all).
    pub host: String,
    /// The prefix.
    pub path_prefix: String,
}

/// Services sorted for lookup. Each list is ordered longest prefix first.
#[derive(Debug, Default)]
pub struct RouteTable {
    services: Vec<Arc<Service>>,
    exact: HashMap<String, Vec<Arc<Service>>>,
    // (".example.com", services), longest suffix first.
    wildcard: Vec<(String, Vec<Arc<Service>>)>,
    catch_all: Vec<Arc<Service>>,
}

impl RouteTable {
    /// Builds a table, refusing two services on the same host and prefix.
    pub fn new(mut services: Vec<Arc<Service>>) -> Result<Self, RouteConflict> {
        services.sort_by(|a, b| a.name.cmp(&b.name));
        let mut claimed: HashMap<(String, String), String> = HashMap::new();
        let mut exact: HashMap<String, Vec<Arc<Service>>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<Arc<Service>>> = HashMap::new();
        let mut catch_all = Vec::new();
        for service in &services {
            let hosts: Vec<String> = if service.hosts.is_empty() {
                vec!["*".to_string()]
            } else {
                service
                    .hosts
                    .iter()
                    .map(|host| host.to_ascii_lowercase())
                    .collect()
            };
            for host in hosts {
                let key = (host.clone(), service.path_prefix.clone());
                if let Some(existing) = claimed.insert(key, service.name.clone()) {
                    return Err(RouteConflict {
                        existing,
                        incoming: service.name.clone(),
                        host,
                        path_prefix: service.path_prefix.clone(),
                    });
                }
                if host == "*" {
                    catch_all.push(Arc::clone(service));
                } else if let Some(suffix) = host.strip_prefix('*') {
                    wildcard
                        .entry(suffix.to_string())
                        .or_default()
                        .push(Arc::clone(service));
                } else {
                    exact.entry(host).or_default().push(Arc::clone(service));
                }
            }
        }
        let longest_prefix_first = |list: &mut Vec<Arc<Service>>| {
            list.sort_by_key(|s| std::cmp::Reverse(s.path_prefix.len()))
        };
        exact.values_mut().for_each(longest_prefix_first);
        longest_prefix_first(&mut catch_all);
        let mut wildcard: Vec<_> = wildcard.into_iter().collect();
        wildcard
            .iter_mut()
            .for_each(|(_, list)| longest_prefix_first(list));
        wildcard.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Ok(RouteTable {
            services,
            exact,
            wildcard,
            catch_all,
        })
    }

    /// Every service, by name.
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&Arc<Service>> {
        self.services.iter().find(|service| service.name == name)
    }

    /// The service for a request: exact host, then the most specific
    /// wildcard, then catch-all; within each, the longest matching prefix.
    /// `host` may carry a port; it is ignored.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Arc<Service>> {
        let host = strip_port(host);
        // Most clients send lower-case hosts: fold case only when needed.
        let folded;
        let host = if host.bytes().any(|byte| byte.is_ascii_uppercase()) {
            folded = host.to_ascii_lowercase();
            folded.as_str()
        } else {
            host
        };
        if let Some(found) = self
            .exact
            .get(host)
            .and_then(|list| first_match(list, path))
        {
            return Some(found);
        }
        for (suffix, list) in &self.wildcard {
            // `*.example.com` covers `a.example.com` but not `example.com`.
            if host.len() > suffix.len()
                && host.ends_with(suffix.as_str())
                && let Some(found) = first_match(list, path)
            {
                return Some(found);
            }
        }
        first_match(&self.catch_all, path)
    }
}

fn first_match<'a>(list: &'a [Arc<Service>], path: &str) -> Option<&'a Arc<Service>> {
    list.iter()
        .find(|service| prefix_matches(&service.path_prefix, path))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:8080
        return host
            .split_once(']')
            .map_or(host, |(address, _)| &host[..address.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_balancer::LoadBalancer;
    use crate::pause_gate::PauseGate;
    use crate::service::normalize_prefix;
    use crate::version::Version;
    use std::time::Duration;

    fn service(name: &str, hosts: &[&str], prefix: &str) -> Arc<Service> {
        Arc::new(Service {
            name: name.to_string(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            path_prefix: normalize_prefix(prefix),
            max_request_body: None,
            drain_timeout: Duration::from_secs(1),
            gate: Arc::new(PauseGate::default()),
            active: Arc::new(Version::new("v1".into(), vec![], LoadBalancer::default())),
            split: Arc::default(),
            annotator: None,
        })
    }

    fn name(table: &RouteTable, host: &str, path: &str) -> Option<String> {
        table.lookup(host, path).map(|s| s.name.clone())
    }

    #[test]
    fn host_then_longest_prefix_then_catch_all() {
        let table = RouteTable::new(vec![
            service("app", &["app.test"], "/"),
            service("api", &["app.test"], "/api"),
            service("wild", &["*.test"], "/"),
            service("deep", &["*.a.test"], "/"),
            service("fallback", &[], "/"),
            service("fallback-admin", &[], "/admin"),
        ])
        .unwrap();
        assert_eq!(name(&table, "app.test", "/").as_deref(), Some("app"));
        assert_eq!(
            name(&table, "APP.test:8080", "/api/users").as_deref(),
            Some("api")
        );
        assert_eq!(name(&table, "app.test", "/apiary").as_deref(), Some("app"));
        assert_eq!(name(&table, "other.test", "/").as_deref(), Some("wild"));
        assert_eq!(name(&table, "x.a.test", "/").as_deref(), Some("deep"));
        assert_eq!(name(&table, "test", "/").as_deref(), Some("fallback"));
        assert_eq!(
            name(&table, "elsewhere.org", "/admin/x").as_deref(),
            Some("fallback-admin")
        );
        assert_eq!(name(&table, "[::1]:80", "/").as_deref(), Some("fallback"));
    }

    #[test]
    fn a_host_with_no_matching_prefix_falls_through() {
        let table = RouteTable::new(vec![
            service("api", &["app.test"], "/api"),
            service("fallback", &[], "/"),
        ])
        .unwrap();
        assert_eq!(
            name(&table, "app.test", "/other").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn no_catch_all_means_no_route() {
        let table = RouteTable::new(vec![service("app", &["app.test"], "/")]).unwrap();
        assert_eq!(name(&table, "nope.test", "/"), None);
    }

    #[test]
    fn conflicts_are_refused() {
        let conflict = RouteTable::new(vec![
            service("a", &["app.test"], "/"),
            service("b", &["App.test"], "/"),
        ])
        .unwrap_err();
        assert_eq!(conflict.existing, "a");
        assert_eq!(conflict.incoming, "b");
        assert!(RouteTable::new(vec![service("a", &[], "/"), service("b", &[], "/")]).is_err());
        assert!(RouteTable::new(vec![service("a", &[], "/"), service("b", &[], "/b")]).is_ok());
    }
}
