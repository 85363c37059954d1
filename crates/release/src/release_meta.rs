//! What a release's marker file records.

use serde::{Deserialize, Serialize};

/// The contents of `<release>/.baton-release`. The file's presence is what
/// makes a release complete; its contents say where the release came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseMeta {
    /// The release id, e.g. `20261122T021500Z-3f9a2c1`.
    pub id: String,
    /// When it was staged, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Where its code came from, as [`crate::Source`] displays it.
    pub source: String,
    /// The git commit (short) or the content hash of the source directory.
    pub revision: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let meta = ReleaseMeta {
            id: "20261122T021500Z-3f9a2c1".into(),
            created_at_ms: 1_795_313_700_000,
            source: "git /srv/repo (main)".into(),
            revision: "3f9a2c1".into(),
        };
        let json = serde_json::to_string(&meta).unwrap();
        assert!(json.contains("\"created_at_ms\":1795313700000"));
        assert_eq!(serde_json::from_str::<ReleaseMeta>(&json).unwrap(), meta);
    }
}
