//! Lifetime counters, kept in atomics beside the windows so that they never
//! expire and can be read without touching any slice lock.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::outcome::Class;

/// Counts since the stats were created; they never roll off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Every request recorded, whatever its outcome.
    pub requests: u64,
    /// Responses with a 1xx status.
    pub status_1xx: u64,
    /// Responses with a 2xx status.
    pub status_2xx: u64,
    /// Responses with a 3xx status.
    pub status_3xx: u64,
    /// Responses with a 4xx status.
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Requests whose upstream could not be connected to.
    pub connect_failures: u64,
    /// Requests whose upstream did not answer in time.
    pub timeouts: u64,
    /// Requests whose upstream broke the exchange after connecting.
    pub upstream_errors: u64,
}

impl Totals {
    /// The share of requests that failed on the upstream's side: 5xx
    /// responses, connect failures, timeouts and upstream errors over all
    /// requests. 0 when there were no requests, so that an idle version does
    /// not trip a guardrail; check `requests` for enough evidence.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.errors() as f64 / self.requests as f64
    }

    /// Adds `other`'s counts to these, field by field.
    pub fn merge(&mut self, other: &Totals) {
        let mut counts = Counts::from(*self);
        counts.merge(&Counts::from(*other));
        *self = Totals::from(counts);
    }

    /// Requests that failed on the upstream's side: 5xx responses, connect
    /// failures, timeouts and upstream errors.
    pub fn errors(&self) -> u64 {
        self.status_5xx
            .saturating_add(self.connect_failures)
            .saturating_add(self.timeouts)
            .saturating_add(self.upstream_errors)
    }
}

impl From<Counts> for Totals {
    fn from(c: Counts) -> Totals {
        Totals {
            requests: c.requests,
            status_1xx: c.get(Class::Status1xx),
            status_2xx: c.get(Class::Status2xx),
            status_3xx: c.get(Class::Status3xx),
            status_4xx: c.get(Class::Status4xx),
            status_5xx: c.get(Class::Status5xx),
            connect_failures: c.get(Class::ConnectFailure),
            timeouts: c.get(Class::Timeout),
            upstream_errors: c.get(Class::UpstreamError),
        }
    }
}

impl From<Totals> for Counts {
    fn from(t: Totals) -> Counts {
        let mut by_class = [0; Class::COUNT];
        for (class, count) in [
            (Class::Status1xx, t.status_1xx),
            (Class::Status2xx, t.status_2xx),
            (Class::Status3xx, t.status_3xx),
            (Class::Status4xx, t.status_4xx),
            (Class::Status5xx, t.status_5xx),
            (Class::ConnectFailure, t.connect_failures),
            (Class::Timeout, t.timeouts),
            (Class::UpstreamError, t.upstream_errors),
        ] {
            by_class[class.index()] = count;
        }
        Counts {
            requests: t.requests,
            by_class,
        }
    }
}

/// [`Counts`] that many threads add to at once.
///
/// Relaxed ordering: each counter is exact, and nothing else is published
/// through them. A reader racing a recorder may see a request in `requests`
/// before its class or the other way round; that is one request of skew.
#[derive(Debug, Default)]
pub(crate) struct AtomicCounts {
    requests: AtomicU64,
    by_class: [AtomicU64; Class::COUNT],
}

impl AtomicCounts {
    pub(crate) fn add(&self, class: Option<Class>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(class) = class {
            self.by_class[class.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn load(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            by_class: std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_merge_field_by_field() {
        let mut a = Totals {
            requests: 3,
            status_2xx: 2,
            timeouts: 1,
            ..Totals::default()
        };
        let b = Totals {
            requests: 5,
            status_2xx: 1,
            status_1xx: 1,
            status_3xx: 1,
            status_4xx: 1,
            status_5xx: 1,
            connect_failures: 1,
            timeouts: 1,
            upstream_errors: 1,
        };
        a.merge(&b);
        assert_eq!(
            a,
            Totals {
                requests: 8,
                status_1xx: 1,
                status_2xx: 3,
                status_3xx: 1,
                status_4xx: 1,
                status_5xx: 1,
                connect_failures: 1,
                timeouts: 2,
                upstream_errors: 1,
            }
        );
        assert_eq!(Totals::from(Counts::from(b)), b);
    }

    #[test]
    fn atomic_counts_load_what_was_added() {
        let counts = AtomicCounts::default();
        counts.add(Some(Class::Status3xx));
        counts.add(Some(Class::ConnectFailure));
        counts.add(None);
        let totals = Totals::from(counts.load());
        assert_eq!(
            totals,
            Totals {
                requests: 3,
                status_3xx: 1,
                connect_failures: 1,
                ..Totals::default()
            }
        );
    }
}
