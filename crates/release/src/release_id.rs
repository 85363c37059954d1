//! Release ids: when a release was staged and what it holds, readable in `ls`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ReleaseError;

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
const LAST_FORMATTABLE_SECOND: u64 = 253_402_300_799;

/// The id of a release staged at `now` from `revision`, e.g.
/// `20261122T021500Z-3f9a2c1`: the UTC time without separators, so that ids
/// sort by time and are safe in file names and URLs.
pub fn release_id(now: SystemTime, revision: &str) -> String {
    // humantime cannot format times before 1970 or after 9999; a clock that
    // far off still has to produce an id, so it is pinned to the nearest end.
    let last = UNIX_EPOCH + Duration::from_secs(LAST_FORMATTABLE_SECOND);
    let now = now.clamp(UNIX_EPOCH, last);
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{stamp}-{revision}")
}

/// Whether `id` can name a release directory: ASCII letters, digits, `.`, `_`
/// and `-`, not starting with `.` (names starting with `.` under `releases/`
/// are stagings and temporary files).
pub fn is_valid_release_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Refuses ids that could escape `releases/` or collide with stagings.
pub(crate) fn check_id(id: &str) -> Result<(), ReleaseError> {
    if is_valid_release_id(id) {
        Ok(())
    } else {
        Err(ReleaseError::InvalidId { id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_utc_time_without_separators_then_revision() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_400_100);
        assert_eq!(release_id(now, "3f9a2c1"), "20261123T021500Z-3f9a2c1");
    }

    #[test]
    fn sub_second_precision_is_dropped() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_400_100_999);
        assert_eq!(release_id(now, "abc"), "20261123T021500Z-abc");
    }

    #[test]
    fn clocks_outside_what_rfc3339_can_write_are_pinned() {
        let early = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(release_id(early, "r"), "19700101T000000Z-r");
        let late = UNIX_EPOCH + Duration::from_secs(LAST_FORMATTABLE_SECOND + 1000);
        assert_eq!(release_id(late, "r"), "99991231T235959Z-r");
    }

    #[test]
    fn ids_that_could_escape_releases_are_invalid() {
        assert!(is_valid_release_id("20261122T021500Z-3f9a2c1"));
        assert!(is_valid_release_id("20261122T021500Z-3f9a2c1-2"));
        for bad in [
            "",
            ".",
            "..",
            ".staging-1",
            "a/b",
            "../x",
            "a b",
            "a\0b",
            "ü",
        ] {
            assert!(!is_valid_release_id(bad), "{bad:?} should be invalid");
            assert!(check_id(bad).is_err());
        }
    }
}
