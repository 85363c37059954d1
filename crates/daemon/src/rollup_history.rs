//! Reading the minute rollups back: an app's traffic over a span longer
//! than the proxy's memory, or from before this daemon started, added up per
//! version. `baton status` reads it for its 5-minute numbers after a
//! restart; an error budget over 30 days reads the same.

use std::collections::BTreeMap;

use baton_state::{RollupRecord, StateError, Store};
use baton_telemetry::LatencyBuckets;
use baton_telemetry::rollup::{MinuteRollup, RollupSummary, merge_by_version};

/// `app`'s rollups of the minutes from `from_ms` on whose counts were read
/// by `until_ms`, added up per version. A rollup whose latencies cannot be
/// decoded (written by a newer baton) is left out, with a warning.
pub fn read(
    store: &Store,
    app: &str,
    from_ms: u64,
    until_ms: u64,
) -> Result<BTreeMap<String, RollupSummary>, StateError> {
    let records = store.rollups(app, from_ms, until_ms)?;
    Ok(merge_by_version(records.into_iter().filter_map(decode)))
}

/// `app`'s rollups of the minutes from `from_ms` on, one by one with their
/// versions, for charts that show each minute. Undecodable ones are left
/// out as for [`read`].
pub fn read_minutes(
    store: &Store,
    app: &str,
    from_ms: u64,
) -> Result<Vec<(String, MinuteRollup)>, StateError> {
    read_minutes_until(store, app, from_ms, u64::MAX)
}

/// Like [`read_minutes`], but only the minutes whose counts were read by
/// `until_ms`.
pub fn read_minutes_until(
    store: &Store,
    app: &str,
    from_ms: u64,
    until_ms: u64,
) -> Result<Vec<(String, MinuteRollup)>, StateError> {
    let records = store.rollups(app, from_ms, until_ms)?;
    Ok(records.into_iter().filter_map(decode).collect())
}

fn decode(record: RollupRecord) -> Option<(String, MinuteRollup)> {
    match LatencyBuckets::decode(&record.latency) {
        Ok(latency) => Some((
            record.version,
            MinuteRollup {
                minute_ms: record.minute_ms,
                until_ms: record.until_ms,
                requests: record.requests,
                errors: record.errors,
                latency,
            },
        )),
        Err(error) => {
            tracing::warn!(
                app = record.app,
                version = record.version,
                minute_ms = record.minute_ms,
                %error,
                "Skipping a minute rollup"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollups_add_up_per_version_and_bad_ones_are_skipped() {
        let store = Store::open_in_memory().expect("store");
        let row = |version: &str, minute_ms: u64, requests: u64, latency: Vec<u8>| RollupRecord {
            app: "web".into(),
            version: version.into(),
            minute_ms,
            until_ms: minute_ms + 60_000,
            requests,
            errors: 1,
            latency,
        };
        let mut buckets = LatencyBuckets::default();
        buckets.add(5_000, 10);
        store
            .add_rollups(&[
                row("v1", 0, 10, buckets.encode()),
                row("v1", 60_000, 10, buckets.encode()),
                row("v2", 60_000, 10, buckets.encode()),
                row("v2", 120_000, 99, vec![200]),
            ])
            .expect("rollups");
        let all = read(&store, "web", 0, u64::MAX).expect("read");
        assert_eq!((all["v1"].requests, all["v1"].errors), (20, 2));
        assert_eq!(all["v1"].latency.count(), 20);
        assert_eq!(all["v1"].first_minute_ms, Some(0));
        assert_eq!(all["v2"].requests, 10);
        let minute_1 = read(&store, "web", 60_000, 120_000).expect("read");
        assert_eq!((minute_1["v1"].requests, minute_1["v2"].requests), (10, 10));
    }
}
