//! Which old releases to prune.

use std::collections::HashSet;

/// The releases to delete, oldest first.
///
/// `releases` is oldest first. Kept: the newest `keep`, the one `current`
/// points at, the rollback target, and every release with processes still
/// `running` (deleting the directory of a running process breaks its
/// relative paths and reloads).
pub fn retention(
    releases: &[String],
    keep: usize,
    current: Option<&str>,
    rollback_target: Option<&str>,
    running: &HashSet<String>,
) -> Vec<String> {
    let newest_start = releases.len().saturating_sub(keep);
    releases
        .iter()
        .enumerate()
        .filter(|(index, id)| {
            let id = id.as_str();
            *index < newest_start
                && Some(id) != current
                && Some(id) != rollback_target
                && !running.contains(id)
        })
        .map(|(_, id)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("r{i}")).collect()
    }

    #[test]
    fn keeps_the_newest_and_deletes_the_rest_oldest_first() {
        let none = HashSet::new();
        assert_eq!(retention(&ids(5), 2, None, None, &none), ["r1", "r2", "r3"]);
    }

    #[test]
    fn fewer_releases_than_keep_deletes_nothing() {
        let none = HashSet::new();
        assert!(retention(&ids(3), 5, None, None, &none).is_empty());
        assert!(retention(&[], 5, None, None, &none).is_empty());
    }

    #[test]
    fn current_rollback_target_and_running_are_kept_however_old() {
        let running: HashSet<String> = ["r3".to_owned()].into();
        assert_eq!(
            retention(&ids(6), 2, Some("r1"), Some("r2"), &running),
            ["r4"]
        );
    }

    #[test]
    fn keep_zero_keeps_only_the_protected_ones() {
        let none = HashSet::new();
        assert_eq!(retention(&ids(3), 0, Some("r3"), None, &none), ["r1", "r2"]);
    }

    #[test]
    fn protected_ids_among_the_newest_do_not_extend_what_is_kept() {
        let none = HashSet::new();
        assert_eq!(
            retention(&ids(4), 2, Some("r4"), Some("r3"), &none),
            ["r1", "r2"]
        );
    }
}
