//! Which version serves a request while a service splits its traffic between
//! its stable version and a candidate: the override header, then the sticky
//! cookie, then the weight.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName};

use crate::shadow::Shadow;
use crate::sticky_cookie::{STICKY_COOKIE, find_cookie};
use crate::version::Version;

/// `X-Baton-Version: candidate|stable`, honoured when the split allows it.
pub static OVERRIDE_HEADER: HeaderName = HeaderName::from_static("x-baton-version");

/// The whole of a service's traffic, in basis points.
pub const FULL_WEIGHT: u32 = 10_000;

/// Multiplying by ⌊2⁶⁴/φ⌋ walks the golden-ratio (Kronecker) sequence
/// `frac(n/φ)`: the points of any run of consecutive `n` spread over [0, 1)
/// more evenly than those of any other irrational step, so the share of
/// draws below a weight stays within a few draws of exact however many
/// requests have come before the run.
const GOLDEN_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// A candidate version taking a share of a service's traffic.
#[derive(Clone, Debug)]
pub struct Split {
    /// The version being rolled out.
    pub candidate: Arc<Version>,
    /// Its share of the requests the weight decides, in basis points
    /// (0..=10_000); larger values count as 10_000.
    pub weight_bp: u32,
    /// Whether a client stays on the version it was first given (cookie
    /// `baton_version`) until the split ends.
    pub sticky: bool,
    /// Whether `X-Baton-Version: candidate|stable` forces a version.
    pub override_header: bool,
    /// Copies of requests stable serves sent to the candidate, whose
    /// answers are compared and dropped; `None` sends none.
    pub shadow: Option<Shadow>,
}

/// One of the two versions of a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The service's active version.
    Stable,
    /// The split's candidate.
    Candidate,
}

/// Where a request goes, and whether its response must pin the client there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The version that serves the request.
    pub side: Side,
    /// The weight placed the request on a sticky split: the response sets
    /// the cookie naming the version.
    pub pin: bool,
}

/// Chooses the version for a request with `headers` under `split`, `stable`
/// being the service's active version. `ticket` is called only when the
/// weight decides and must give the next number of a per-service sequence
/// (an atomic counter): consecutive tickets spread exactly over the weight.
pub fn choose(
    split: &Split,
    stable: &Version,
    headers: &HeaderMap,
    ticket: impl FnOnce() -> u64,
) -> Choice {
    if split.override_header
        && let Some(side) = forced(headers)
    {
        // A tester's request must not move the tester's browser for good.
        return Choice { side, pin: false };
    }
    // A cookie cannot tell two versions with one label apart.
    let sticky = split.sticky && split.candidate.label() != stable.label();
    if sticky && let Some(value) = find_cookie(headers, STICKY_COOKIE) {
        if value == split.candidate.label().as_bytes() {
            return Choice {
                side: Side::Candidate,
                pin: false,
            };
        }
        if value == stable.label().as_bytes() {
            return Choice {
                side: Side::Stable,
                pin: false,
            };
        }
        // A version that left the split: the weight places the client anew.
    }
    let side = if takes_candidate(ticket(), split.weight_bp) {
        Side::Candidate
    } else {
        Side::Stable
    };
    Choice { side, pin: sticky }
}

/// The side an enabled override header names, if it names one.
fn forced(headers: &HeaderMap) -> Option<Side> {
    let value = headers.get(&OVERRIDE_HEADER)?.as_bytes().trim_ascii();
    if value.eq_ignore_ascii_case(b"candidate") {
        Some(Side::Candidate)
    } else if value.eq_ignore_ascii_case(b"stable") {
        Some(Side::Stable)
    } else {
        None
    }
}

/// Whether the request holding `ticket` goes to a candidate weighted
/// `weight_bp`.
pub fn takes_candidate(ticket: u64, weight_bp: u32) -> bool {
    let point = ticket.wrapping_mul(GOLDEN_STEP);
    // The point scaled to 0..10_000, by its high bits (no division).
    let slot = (u128::from(point) * u128::from(FULL_WEIGHT)) >> 64;
    slot < u128::from(weight_bp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_balancer::LoadBalancer;
    use http::HeaderValue;
    use http::header::COOKIE;

    fn version(label: &str) -> Arc<Version> {
        Arc::new(Version::new(label.into(), vec![], LoadBalancer::default()))
    }

    fn split(weight_bp: u32, sticky: bool, override_header: bool) -> Split {
        Split {
            candidate: version("v2"),
            weight_bp,
            sticky,
            override_header,
            shadow: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    /// The choice with ticket 0, which every weight above 0 gives the
    /// candidate.
    fn choice(split: &Split, pairs: &[(&'static str, &str)]) -> Choice {
        let stable = version("v1");
        choose(split, &stable, &headers(pairs), || 0)
    }

    const CANDIDATE: Choice = Choice {
        side: Side::Candidate,
        pin: false,
    };
    const STABLE: Choice = Choice {
        side: Side::Stable,
        pin: false,
    };

    #[test]
    fn ticket_zero_goes_to_any_candidate_with_weight() {
        // The tests below rely on it: ticket 0 is the point 0.
        assert!(takes_candidate(0, 1));
        assert!(!takes_candidate(0, 0));
    }

    #[test]
    fn the_override_header_forces_a_version_when_enabled() {
        let enabled = split(0, true, true);
        let to_candidate = [("x-baton-version", "candidate")];
        assert_eq!(choice(&enabled, &to_candidate), CANDIDATE);
        assert_eq!(
            choice(&enabled, &[("x-baton-version", " Candidate ")]),
            CANDIDATE
        );
        let full = split(FULL_WEIGHT, true, true);
        assert_eq!(choice(&full, &[("x-baton-version", "stable")]), STABLE);
        // It beats the cookie.
        assert_eq!(
            choice(
                &full,
                &[
                    ("x-baton-version", "STABLE"),
                    ("cookie", "baton_version=v2")
                ]
            ),
            STABLE
        );
        // Disabled, it is only a header: the weight decides (and pins).
        let disabled = split(0, true, false);
        assert_eq!(
            choice(&disabled, &to_candidate),
            Choice {
                side: Side::Stable,
                pin: true
            }
        );
        // An unknown value falls through to the weight.
        assert_eq!(
            choice(&enabled, &[("x-baton-version", "v2")]),
            Choice {
                side: Side::Stable,
                pin: true
            }
        );
    }

    #[test]
    fn a_sticky_cookie_pins_both_ways() {
        let nothing = split(0, true, false);
        assert_eq!(
            choice(&nothing, &[("cookie", "a=1; baton_version=v2")]),
            CANDIDATE
        );
        let everything = split(FULL_WEIGHT, true, false);
        assert_eq!(
            choice(&everything, &[("cookie", "baton_version=v1")]),
            STABLE
        );
    }

    #[test]
    fn a_cookie_for_a_version_that_left_is_replaced() {
        let everything = split(FULL_WEIGHT, true, false);
        assert_eq!(
            choice(&everything, &[("cookie", "baton_version=v0")]),
            Choice {
                side: Side::Candidate,
                pin: true
            }
        );
    }

    #[test]
    fn without_sticky_the_cookie_is_ignored_and_never_set() {
        let everything = split(FULL_WEIGHT, false, false);
        assert_eq!(
            choice(&everything, &[("cookie", "baton_version=v1")]),
            CANDIDATE
        );
        assert_eq!(choice(&everything, &[]), CANDIDATE);
        let nothing = split(0, false, false);
        assert_eq!(choice(&nothing, &[("cookie", "baton_version=v2")]), STABLE);
    }

    #[test]
    fn the_weight_places_a_client_without_a_cookie_and_pins_it() {
        let everything = split(FULL_WEIGHT, true, false);
        let placed = choice(&everything, &[(COOKIE.as_str(), "session=x")]);
        assert_eq!(
            placed,
            Choice {
                side: Side::Candidate,
                pin: true
            }
        );
    }

    #[test]
    fn only_the_weight_draws_a_ticket() {
        let sticky = split(5_000, true, true);
        let stable = version("v1");
        let drawn = std::cell::Cell::new(0);
        let ticket = || {
            drawn.set(drawn.get() + 1);
            0
        };
        choose(
            &sticky,
            &stable,
            &headers(&[("x-baton-version", "stable")]),
            ticket,
        );
        choose(
            &sticky,
            &stable,
            &headers(&[("cookie", "baton_version=v2")]),
            ticket,
        );
        assert_eq!(drawn.get(), 0);
        choose(&sticky, &stable, &headers(&[]), ticket);
        assert_eq!(drawn.get(), 1);
    }

    #[test]
    fn equal_labels_are_not_sticky() {
        let same = Split {
            candidate: version("v1"),
            ..split(FULL_WEIGHT, true, false)
        };
        assert_eq!(choice(&same, &[("cookie", "baton_version=v1")]), CANDIDATE);
    }

    fn candidates(first_ticket: u64, requests: u64, weight_bp: u32) -> u64 {
        (first_ticket..first_ticket + requests)
            .filter(|&ticket| takes_candidate(ticket, weight_bp))
            .count() as u64
    }

    #[test]
    fn weights_hold_within_a_point_over_ten_thousand_requests() {
        // Any run of tickets, not only the first: a weight changes mid-sequence.
        let starts = [0, 1, 9_999, 123_456_789, 1 << 40, u64::MAX / 3];
        for weight_bp in [100, 1_000, 5_000, 9_900] {
            for start in starts {
                let got = candidates(start, 10_000, weight_bp);
                let deviation = got.abs_diff(u64::from(weight_bp));
                // One percentage point of 10,000 requests is 100; the
                // sequence does far better, which the tighter bound guards.
                assert!(
                    deviation <= 5,
                    "weight {weight_bp} bp from ticket {start}: {got} of 10000"
                );
            }
        }
    }

    #[test]
    fn every_weight_holds_and_the_extremes_are_exact() {
        for weight_bp in (0..=FULL_WEIGHT).step_by(97) {
            let got = candidates(77, 10_000, weight_bp);
            assert!(
                got.abs_diff(u64::from(weight_bp)) <= 5,
                "{weight_bp}: {got}"
            );
        }
        assert_eq!(candidates(5, 10_000, 0), 0);
        assert_eq!(candidates(5, 10_000, FULL_WEIGHT), 10_000);
        assert_eq!(candidates(5, 10_000, u32::MAX), 10_000);
    }

    #[test]
    fn short_runs_stay_close_too() {
        // A 1% canary gets its first request within the first ~100, not by luck.
        for start in [0, 1_000, 55_555] {
            let got = candidates(start, 100, 100);
            assert!((0..=2).contains(&got), "{got}");
            assert!(candidates(start, 200, 100) >= 1);
        }
    }
}
