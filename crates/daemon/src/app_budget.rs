//! An app's error budget: its `[slo]` judged over the minute rollups in the
//! store plus the minute so far, which is still only in the proxy's memory.
//! The arithmetic is `baton_telemetry::budget`'s; this reads the numbers.
//!
//! The minute so far is the proxy's window since the minute began, rounded
//! out to its 5-second slices, so a request served in the few seconds
//! around the minute's turn may count in both it and the last rollup.

use std::time::Duration;

use baton_api::{BudgetStatus, SloSection};
use baton_state::{StateError, Store};
use baton_telemetry::budget::{Tally, allowed_errors, budget_left, burn_rate};
use baton_telemetry::rollup::minute_start;
use tokio::time::Instant;

use crate::route_manager::RouteManager;

const HOUR_MS: u64 = 3_600_000;

/// The minutes `app`'s rollups hold from `from_ms` on: (minute start,
/// counts).
pub fn read_minutes(
    store: &Store,
    app: &str,
    from_ms: u64,
) -> Result<Vec<(u64, Tally)>, StateError> {
    Ok(store
        .rollups(app, from_ms, u64::MAX)?
        .into_iter()
        .map(|record| {
            (
                record.minute_ms,
                Tally {
                    requests: record.requests,
                    errors: record.errors,
                },
            )
        })
        .collect())
}

/// The earliest minute a budget of `slo` at `now_ms` reads: the window's,
/// or 6 hours back for the slower burn rate if the window is shorter.
pub fn first_minute(slo: &SloSection, now_ms: u64) -> u64 {
    let window_ms = u64::try_from(slo.window.get().as_millis()).unwrap_or(u64::MAX);
    minute_start(now_ms.saturating_sub(window_ms.max(6 * HOUR_MS)))
}

/// What `app`'s versions in `routes` served since the minute of `now_ms`
/// began.
pub fn this_minute(routes: &RouteManager, app: &str, now_ms: u64) -> Tally {
    let since = Duration::from_millis(now_ms - minute_start(now_ms));
    let now = Instant::now().into_std();
    let mut sum = Tally::default();
    for routed in routes.versions(app) {
        let counts = routed.version.stats().snapshot(now, since).counts;
        sum.add(Tally {
            requests: counts.requests,
            errors: counts.errors(),
        });
    }
    sum
}

/// The budget of `slo` at `now_ms`, over the rollup `minutes` (as
/// [`read_minutes`] gives them) and `live`, the minute so far.
pub fn status(
    slo: &SloSection,
    minutes: &[(u64, Tally)],
    live: Tally,
    now_ms: u64,
) -> BudgetStatus {
    let availability = slo.availability.fraction();
    let window_ms = u64::try_from(slo.window.get().as_millis()).unwrap_or(u64::MAX);
    let over = |span_ms: u64| {
        let mut tally = Tally::since(minutes, minute_start(now_ms.saturating_sub(span_ms)));
        tally.add(live);
        tally
    };
    let window = over(window_ms);
    BudgetStatus {
        availability: slo.availability.percent(),
        window: baton_api::DurationText(slo.window.get()),
        requests: window.requests,
        errors: window.errors,
        allowed_errors: allowed_errors(availability, window),
        left: budget_left(availability, window),
        burn_rate_1h: burn_rate(availability, over(HOUR_MS)),
        burn_rate_6h: burn_rate(availability, over(6 * HOUR_MS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use baton_api::{Availability, SloWindow};

    #[test]
    fn the_window_and_burn_rates_each_read_their_own_minutes() {
        let slo = SloSection {
            availability: Availability::parse("99%").expect("availability"),
            window: SloWindow::new(Duration::from_secs(2 * 3600)).expect("window"),
        };
        let now = 10 * HOUR_MS + 30_000;
        let minutes = [
            // Before the window: left out.
            (
                7 * HOUR_MS,
                Tally {
                    requests: 1000,
                    errors: 1000,
                },
            ),
            // In the window, not in the last hour.
            (
                9 * HOUR_MS - 60_000,
                Tally {
                    requests: 1000,
                    errors: 0,
                },
            ),
            // In the last hour.
            (
                10 * HOUR_MS - 60_000,
                Tally {
                    requests: 900,
                    errors: 5,
                },
            ),
        ];
        let live = Tally {
            requests: 100,
            errors: 5,
        };
        let budget = status(&slo, &minutes, live, now);
        assert_eq!((budget.requests, budget.errors), (2000, 10));
        assert!((budget.allowed_errors - 20.0).abs() < 1e-9);
        assert!((budget.left - 0.5).abs() < 1e-9);
        // The last hour: 10 errors in 1000 requests, 1% against 1% allowed.
        assert!((budget.burn_rate_1h - 1.0).abs() < 1e-9);
        // Six hours reach the minute before the window too.
        assert!((budget.burn_rate_6h - 1010.0 / 3000.0 / 0.01).abs() < 1e-9);
        assert_eq!(first_minute(&slo, now), minute_start(now - 6 * HOUR_MS));
    }
}
