//! Shadow traffic: which requests a split copies to its candidate, and when
//! the candidate's answer to a copy counts as different from the stable
//! version's answer to the original.

use std::time::Duration;

use baton_telemetry::Outcome;
use http::Method;

/// Mirrored copies a candidate may have in flight at once. Past this the
/// candidate is not keeping up, and copying more would only pile up tasks
/// and sockets on the host that serves the live traffic; the copies are
/// skipped, never the clients delayed.
pub(crate) const MAX_MIRRORS_IN_FLIGHT: u64 = 256;

/// Set on every mirrored copy, so an app can tell a shadow request from a
/// live one (and skip side effects such as sending mail).
pub static SHADOW_HEADER: http::HeaderName = http::HeaderName::from_static("x-baton-shadow");

/// A candidate slower than `LATENCY_FACTOR` × stable's latency plus
/// `LATENCY_SLACK` answered differently. The slack keeps scheduling noise
/// on fast requests (a millisecond against three) from reading as a
/// regression; the factor catches a candidate that is really slower.
const LATENCY_FACTOR: u32 = 2;
const LATENCY_SLACK: Duration = Duration::from_millis(250);

/// Copies of a share of a service's requests sent to the split's candidate
/// while it takes no live traffic; the client only ever sees the stable
/// version's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    /// The share of eligible requests copied, in basis points (0..=10,000).
    pub share_bp: u32,
    /// Only requests with these methods are copied (GET and HEAD by
    /// default: copying a POST would run its side effects twice).
    pub methods: Vec<Method>,
}

impl Shadow {
    /// Whether a request with `method` may be copied.
    pub(crate) fn mirrors(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }
}

/// One version's answer to one request, as compared: what came back and
/// how long the response head took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) outcome: Outcome,
    pub(crate) latency: Duration,
}

/// Whether the candidate answered a copy differently from how stable
/// answered the original: another status class (a failure to answer is a
/// class of its own), or much slower.
pub(crate) fn answers_differ(stable: Answer, candidate: Answer) -> bool {
    let slowest_alike = stable.latency.saturating_mul(LATENCY_FACTOR) + LATENCY_SLACK;
    class_of(stable.outcome) != class_of(candidate.outcome) || candidate.latency > slowest_alike
}

/// The status class (1 to 5), or 0 for no answer at all: a refused
/// connection and a timeout are the same failure to the client.
fn class_of(outcome: Outcome) -> u16 {
    match outcome {
        Outcome::Status(code) => code / 100,
        Outcome::ConnectFailure | Outcome::Timeout | Outcome::UpstreamError => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(outcome: Outcome, millis: u64) -> Answer {
        Answer {
            outcome,
            latency: Duration::from_millis(millis),
        }
    }

    #[test]
    fn the_same_class_at_a_similar_speed_is_alike() {
        let stable = answer(Outcome::Status(200), 3);
        assert!(!answers_differ(stable, answer(Outcome::Status(204), 4)));
        // Fast requests get the slack: 250 ms over 2 × 3 ms still holds.
        assert!(!answers_differ(stable, answer(Outcome::Status(200), 256)));
        assert!(!answers_differ(
            answer(Outcome::Status(404), 100),
            answer(Outcome::Status(410), 300)
        ));
        // Two failures to answer are alike whatever their kind.
        assert!(!answers_differ(
            answer(Outcome::Timeout, 5_000),
            answer(Outcome::ConnectFailure, 1)
        ));
    }

    #[test]
    fn another_class_differs() {
        let stable = answer(Outcome::Status(200), 3);
        assert!(answers_differ(stable, answer(Outcome::Status(500), 3)));
        assert!(answers_differ(stable, answer(Outcome::Status(302), 3)));
        assert!(answers_differ(stable, answer(Outcome::ConnectFailure, 0)));
        assert!(answers_differ(answer(Outcome::Status(503), 3), stable));
    }

    #[test]
    fn a_much_slower_candidate_differs() {
        let stable = answer(Outcome::Status(200), 3);
        assert!(answers_differ(stable, answer(Outcome::Status(200), 257)));
        assert!(answers_differ(
            answer(Outcome::Status(200), 400),
            answer(Outcome::Status(200), 1_051)
        ));
        // Faster is never a difference.
        assert!(!answers_differ(
            answer(Outcome::Status(200), 400),
            answer(Outcome::Status(200), 1)
        ));
    }

    #[test]
    fn only_the_listed_methods_are_copied() {
        let shadow = Shadow {
            share_bp: 10_000,
            methods: vec![Method::GET, Method::HEAD],
        };
        assert!(shadow.mirrors(&Method::GET));
        assert!(shadow.mirrors(&Method::HEAD));
        assert!(!shadow.mirrors(&Method::POST));
        assert!(!shadow.mirrors(&Method::DELETE));
    }
}
