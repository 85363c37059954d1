//! The host's feature flags: the compiled set every evaluation reads, and
//! the one way to change it.
//!
//! Evaluations (OFREP, the proxy's injection) load the current set from an
//! [`ArcSwap`]: no lock, no wait, whatever a change is doing. A change is
//! serialised with the others, compiled (so a set that cannot be made
//! ready is refused before anything is saved), saved with its audit
//! entries in one transaction, swapped in, and only then announced and
//! answered: once `baton flags off X` returns, no evaluation on this host
//! can still see X on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use baton_api::{FlagAuditEntry, FlagChanged, FlagInfo, FlagList, StaleFlags, VariantWeight};
use baton_flags::{ClientFeatures, Feature, Features, FlagsError, Segment};
use baton_state::{FlagChange, FlagSetRecord, StateError, Store};
use tokio::sync::{Mutex, watch};

use crate::flag_staleness::{LastChange, stale_flags};
use crate::flag_summary::describe_strategy;
use crate::flag_tally::{EvaluationSource, FlagTallies, FlagTally};

/// Why a flag change or read was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// No flag of that name.
    #[error("no flag named {0:?}; `baton flags list` shows the flags")]
    NotFound(String),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// The flags would not make a usable set (a duplicate name, say).
    #[error("{0}")]
    Model(#[from] FlagsError),
    /// The state store failed, or the flags moved on meanwhile.
    #[error("{0}")]
    State(#[from] StateError),
    /// A state call died (a bug).
    #[error("the state store call failed inside the daemon: {0}; see the daemon's log")]
    Internal(String),
}

/// One revision of the flags, ready to evaluate.
#[derive(Debug)]
pub struct FlagSnapshot {
    /// The revision: one more on every change.
    pub revision: u64,
    /// The flags, compiled.
    pub features: Features,
    /// When this revision was made, unix epoch millis (0 before any).
    pub at_ms: u64,
    /// For each flag, the revision that last changed it and when.
    changed: HashMap<String, (u64, u64)>,
    /// Each flag's evaluation counters, in the order of `features`' flags.
    tallies: Vec<Arc<FlagTally>>,
}

impl FlagSnapshot {
    /// Counts an evaluation of the flag at `index` in `features`' order.
    pub fn record(&self, index: usize, source: EvaluationSource, enabled: bool) {
        if let Some(tally) = self.tallies.get(index) {
            tally.record(source, enabled);
        }
    }

    /// Counts an evaluation of the flag `name`.
    pub fn record_named(&self, name: &str, source: EvaluationSource, enabled: bool) {
        if let Some(index) = self.features.names().position(|flag| flag == name) {
            self.record(index, source, enabled);
        }
    }
}

/// The flags of this host.
pub struct FlagService {
    store: Arc<Store>,
    current: ArcSwap<FlagSnapshot>,
    revisions: watch::Sender<u64>,
    /// One change at a time: each is made against the revision before it.
    writer: Mutex<()>,
    hostname: Option<String>,
    tallies: FlagTallies,
}

/// What a change asks to be done to the whole document.
pub type Edit<'a> =
    Box<dyn FnOnce(&ClientFeatures) -> Result<ClientFeatures, FlagError> + Send + 'a>;

impl FlagService {
    /// Loads the stored flags. A stored set that no longer compiles (it
    /// was checked when saved, so only a damaged file does that) is
    /// logged and served as no flags, which evaluate off: the daemon must
    /// still route traffic.
    pub fn load(store: Arc<Store>, hostname: Option<String>) -> Result<Self, StateError> {
        let record = store.flag_set()?;
        let tallies = FlagTallies::default();
        let mut snapshot = match compile_record(&record, hostname.as_deref()) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(%error, revision = record.revision, "Stored flags cannot be used; every flag is off until they are imported again");
                FlagSnapshot {
                    revision: record.revision,
                    features: Features::default(),
                    at_ms: 0,
                    changed: HashMap::new(),
                    tallies: Vec::new(),
                }
            }
        };
        snapshot.tallies = tallies.for_flags(snapshot.features.names());
        let (revisions, _) = watch::channel(snapshot.revision);
        Ok(FlagService {
            store,
            current: ArcSwap::from_pointee(snapshot),
            revisions,
            writer: Mutex::new(()),
            hostname,
            tallies,
        })
    }

    /// The flags in force now; never waits.
    pub fn current(&self) -> Arc<FlagSnapshot> {
        self.current.load_full()
    }

    /// The flags in force now, without taking a reference count: for the
    /// request path.
    pub fn current_guard(&self) -> arc_swap::Guard<Arc<FlagSnapshot>> {
        self.current.load()
    }

    /// Every flag's evaluations since the daemon started, for `/metrics`.
    pub fn evaluations(&self) -> Vec<baton_telemetry::exposition::FlagEvaluationSeries> {
        self.tallies.expose()
    }

    /// Receives each new revision as soon as it is in force.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revisions.subscribe()
    }

    /// Every flag as `baton flags list` shows it.
    pub fn list(&self) -> FlagList {
        let snapshot = self.current();
        let state = snapshot.features.state();
        FlagList {
            revision: snapshot.revision,
            flags: state
                .features
                .iter()
                .map(|feature| info(&snapshot, feature))
                .collect(),
            segments: state.segments.len(),
        }
    }

    /// One flag.
    pub fn show(&self, name: &str) -> Result<FlagInfo, FlagError> {
        let snapshot = self.current();
        let feature = snapshot
            .features
            .state()
            .feature(name)
            .ok_or_else(|| FlagError::NotFound(name.to_string()))?;
        Ok(info(&snapshot, feature))
    }

    /// Every flag as Unleash's JSON, with its revision.
    pub fn export(&self) -> Result<(u64, String), FlagError> {
        let snapshot = self.current();
        Ok((snapshot.revision, snapshot.features.to_unleash_json()?))
    }

    /// Applies `edit` to the flags as `who`: compiled, saved with its audit
    /// entries, then in force for every evaluation, then announced; all
    /// before this returns. `flag` names the flag the answer shows.
    pub async fn change(
        &self,
        action: &str,
        who: &str,
        flag: Option<&str>,
        edit: Edit<'_>,
    ) -> Result<FlagChanged, FlagError> {
        let _one_at_a_time = self.writer.lock().await;
        let before = self.current();
        let document = edit(before.features.state())?;
        let features = self.ready(Features::new(document)?);
        let change = FlagChange {
            base_revision: before.revision,
            action: action.to_string(),
            who: who.to_string(),
            at_ms: unix_ms(),
            flags: definitions(&features.state().features, |feature| &feature.name)?,
            segments: definitions(&features.state().segments, |segment| &segment.id)?,
        };
        let at_ms = change.at_ms;
        let store = Arc::clone(&self.store);
        let outcome = tokio::task::spawn_blocking(move || store.change_flags(&change))
            .await
            .map_err(|error| FlagError::Internal(error.to_string()))??;
        let warnings = features
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        let snapshot = if outcome.touched == 0 {
            before
        } else {
            let mut changed = before.changed.clone();
            changed.retain(|name, _| features.contains(name));
            for feature in &features.state().features {
                let old = before.features.state().feature(&feature.name);
                if old != Some(feature) {
                    changed.insert(feature.name.clone(), (outcome.revision, at_ms));
                }
            }
            let tallies = self.tallies.for_flags(features.names());
            let snapshot = Arc::new(FlagSnapshot {
                revision: outcome.revision,
                features,
                at_ms,
                changed,
                tallies,
            });
            // The swap first: from here on every evaluation sees the change.
            self.current.store(Arc::clone(&snapshot));
            self.revisions.send_replace(outcome.revision);
            tracing::info!(
                action,
                who,
                flag,
                revision = outcome.revision,
                touched = outcome.touched,
                "Flags changed"
            );
            snapshot
        };
        let flag = flag.and_then(|name| {
            let feature = snapshot.features.state().feature(name)?;
            Some(info(&snapshot, feature))
        });
        Ok(FlagChanged {
            revision: snapshot.revision,
            changed: outcome.touched > 0,
            touched: outcome.touched,
            flag,
            warnings,
        })
    }

    /// The audit entries of one flag, or of every flag and segment, newest
    /// first.
    pub async fn history(
        &self,
        name: Option<String>,
        limit: usize,
    ) -> Result<Vec<FlagAuditEntry>, FlagError> {
        let store = Arc::clone(&self.store);
        let records =
            tokio::task::spawn_blocking(move || store.flag_history(name.as_deref(), limit))
                .await
                .map_err(|error| FlagError::Internal(error.to_string()))??;
        let parse = |json: Option<String>| {
            json.map(|json| serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)))
        };
        Ok(records
            .into_iter()
            .map(|record| FlagAuditEntry {
                revision: record.revision,
                subject: record.subject,
                name: record.name,
                action: record.action,
                who: record.who,
                at_ms: record.at_ms,
                before: parse(record.before_json),
                after: parse(record.after_json),
            })
            .collect())
    }

    /// `baton flags stale`: the flags that give every request the same
    /// answer and whose last change (their last audit entry) is more than
    /// `days` days before `now_ms`, the longest unchanged first.
    pub async fn stale(&self, days: u32, now_ms: u64) -> Result<StaleFlags, FlagError> {
        if days == 0 {
            return Err(FlagError::Invalid(
                "days must be 1 or more: stale flags are those unchanged for more than that \
                 many days"
                    .to_string(),
            ));
        }
        // The flags first, then the audit: an entry is never older than the
        // flag it describes.
        let snapshot = self.current();
        let store = Arc::clone(&self.store);
        let entries = tokio::task::spawn_blocking(move || store.flag_last_changes())
            .await
            .map_err(|error| FlagError::Internal(error.to_string()))??;
        // A flag with no audit entry (none is made without one) keeps the
        // date stored with it.
        let mut changes: HashMap<String, LastChange> = snapshot
            .changed
            .iter()
            .map(|(name, (_, at_ms))| {
                let change = LastChange {
                    at_ms: *at_ms,
                    who: "unknown".to_string(),
                };
                (name.clone(), change)
            })
            .collect();
        for entry in entries {
            let change = LastChange {
                at_ms: entry.at_ms,
                who: entry.who,
            };
            changes.insert(entry.name, change);
        }
        Ok(StaleFlags {
            days,
            now_ms,
            flags: stale_flags(&snapshot.features.state().features, &changes, now_ms, days),
        })
    }

    fn ready(&self, features: Features) -> Features {
        match &self.hostname {
            Some(hostname) => features.with_hostname(hostname.clone()),
            None => features,
        }
    }
}

/// The stored set, compiled.
fn compile_record(
    record: &FlagSetRecord,
    hostname: Option<&str>,
) -> Result<FlagSnapshot, FlagError> {
    let corrupt = |what: String, error: serde_json::Error| {
        FlagError::Invalid(format!("the stored {what} is not Unleash's JSON: {error}"))
    };
    let mut document = ClientFeatures::default();
    for flag in &record.flags {
        let feature: Feature = serde_json::from_str(&flag.definition_json)
            .map_err(|error| corrupt(format!("flag {:?}", flag.name), error))?;
        document.features.push(feature);
    }
    for segment in &record.segments {
        let parsed: Segment = serde_json::from_str(&segment.definition_json)
            .map_err(|error| corrupt(format!("segment {}", segment.id), error))?;
        document.segments.push(parsed);
    }
    let mut features = Features::new(document)?;
    if let Some(hostname) = hostname {
        features = features.with_hostname(hostname);
    }
    Ok(FlagSnapshot {
        revision: record.revision,
        features,
        at_ms: record
            .flags
            .iter()
            .map(|flag| flag.updated_at_ms)
            .max()
            .unwrap_or(0),
        changed: record
            .flags
            .iter()
            .map(|flag| (flag.name.clone(), (flag.revision, flag.updated_at_ms)))
            .collect(),
        tallies: Vec::new(),
    })
}

/// Each item as `(key, its JSON)`, in order.
fn definitions<T: serde::Serialize, K: Clone>(
    items: &[T],
    key: impl Fn(&T) -> &K,
) -> Result<Vec<(K, String)>, FlagError> {
    items
        .iter()
        .map(|item| {
            let json = serde_json::to_string(item).map_err(FlagsError::Write)?;
            Ok((key(item).clone(), json))
        })
        .collect()
}

fn info(snapshot: &FlagSnapshot, feature: &Feature) -> FlagInfo {
    let (revision, updated_at_ms) = snapshot
        .changed
        .get(&feature.name)
        .copied()
        .unwrap_or((snapshot.revision, snapshot.at_ms));
    let about = format!("flag {:?}", feature.name);
    FlagInfo {
        name: feature.name.clone(),
        enabled: feature.enabled,
        description: feature.description.clone(),
        strategies: feature
            .strategies
            .iter()
            .map(|strategy| describe_strategy(&feature.name, strategy))
            .collect(),
        variants: feature
            .variants
            .iter()
            .map(|variant| VariantWeight {
                name: variant.name.clone(),
                weight: variant.weight,
            })
            .collect(),
        revision,
        updated_at_ms,
        warnings: snapshot
            .features
            .warnings()
            .iter()
            .filter(|warning| warning.about == about)
            .map(|warning| warning.problem.clone())
            .collect(),
        definition: serde_json::to_value(feature).unwrap_or_default(),
    }
}

/// This host's name, for Unleash's `applicationHostname` strategy.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

/// The daemon's clock, unix epoch millis.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> FlagService {
        FlagService::load(Arc::new(Store::open_in_memory().unwrap()), None).unwrap()
    }

    fn import(json: &str) -> Edit<'_> {
        Box::new(move |_| Ok(ClientFeatures::from_unleash_json(json)?))
    }

    fn switch(name: &'static str, on: bool) -> Edit<'static> {
        Box::new(move |document| {
            let mut document = document.clone();
            let feature = document
                .features
                .iter_mut()
                .find(|feature| feature.name == name)
                .ok_or_else(|| FlagError::NotFound(name.to_string()))?;
            feature.enabled = on;
            Ok(document)
        })
    }

    const TWO: &str = r#"{"features": [
        {"name": "a", "enabled": true},
        {"name": "b", "enabled": true, "strategies": [{"name": "userWithId", "parameters": {"userIds": "x"}}]}
    ]}"#;

    #[tokio::test]
    async fn a_change_is_in_force_and_announced_when_it_returns() {
        let flags = service();
        let mut revisions = flags.subscribe();
        let changed = flags
            .change("import", "alice", None, import(TWO))
            .await
            .unwrap();
        assert_eq!((changed.revision, changed.touched), (1, 2));
        assert!(revisions.has_changed().unwrap());
        assert_eq!(*revisions.borrow_and_update(), 1);

        let nobody = baton_flags::Context::default();
        assert!(flags.current().features.is_enabled("a", &nobody));
        let off = flags
            .change("off", "bob", Some("a"), switch("a", false))
            .await
            .unwrap();
        // In force before the answer: no later evaluation sees it on.
        assert!(!flags.current().features.is_enabled("a", &nobody));
        assert_eq!(off.revision, 2);
        assert!(!off.flag.unwrap().enabled);
        assert_eq!(flags.show("a").unwrap().revision, 2);
        assert_eq!(flags.show("b").unwrap().revision, 1);
    }

    #[tokio::test]
    async fn a_change_to_what_already_is_keeps_the_revision() {
        let flags = service();
        flags
            .change("import", "alice", None, import(TWO))
            .await
            .unwrap();
        let revisions = flags.subscribe();
        let same = flags
            .change("on", "bob", Some("a"), switch("a", true))
            .await
            .unwrap();
        assert!(!same.changed);
        assert_eq!(same.revision, 1);
        assert!(!revisions.has_changed().unwrap());
    }

    #[tokio::test]
    async fn a_refused_change_changes_nothing() {
        let flags = service();
        flags
            .change("import", "alice", None, import(TWO))
            .await
            .unwrap();
        let duplicate =
            r#"{"features": [{"name": "a", "enabled": true}, {"name": "a", "enabled": false}]}"#;
        let error = flags
            .change("import", "alice", None, import(duplicate))
            .await
            .unwrap_err();
        assert!(
            matches!(error, FlagError::Model(FlagsError::DuplicateFlag(_))),
            "{error}"
        );
        let missing = flags
            .change("off", "bob", Some("zz"), switch("zz", false))
            .await
            .unwrap_err();
        assert!(matches!(missing, FlagError::NotFound(_)));
        assert_eq!(flags.list().revision, 1);
        assert_eq!(flags.list().flags.len(), 2);
        assert_eq!(flags.history(None, 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn stale_flags_are_counted_from_their_last_audit_entry() {
        use crate::flag_staleness::DAY_MS;

        let store = Arc::new(Store::open_in_memory().unwrap());
        let old = 1_700_000_000_000;
        let definitions = [
            ("on", r#"{"name":"on","enabled":true}"#),
            ("off", r#"{"name":"off","enabled":false}"#),
            (
                "half",
                r#"{"name":"half","enabled":true,"strategies":[{"name":"flexibleRollout","parameters":{"rollout":"50"}}]}"#,
            ),
        ];
        store
            .change_flags(&FlagChange {
                base_revision: 0,
                action: "import".to_string(),
                who: "carol".to_string(),
                at_ms: old,
                flags: definitions
                    .iter()
                    .map(|(name, json)| (name.to_string(), json.to_string()))
                    .collect(),
                segments: Vec::new(),
            })
            .unwrap();
        let flags = FlagService::load(store, None).unwrap();
        let now = old + 40 * DAY_MS;
        let stale = flags.stale(30, now).await.unwrap();
        let seen: Vec<(&str, u64, &str)> = stale
            .flags
            .iter()
            .map(|flag| (flag.name.as_str(), flag.days, flag.changed_by.as_str()))
            .collect();
        assert_eq!(seen, [("off", 40, "carol"), ("on", 40, "carol")]);
        assert!(flags.stale(40, now).await.unwrap().flags.is_empty());

        // A change (made now, by the real clock) makes the flag fresh.
        flags
            .change("off", "bob", Some("on"), switch("on", false))
            .await
            .unwrap();
        let stale = flags.stale(30, unix_ms()).await.unwrap();
        assert!(
            stale.flags.iter().all(|flag| flag.name != "on"),
            "{stale:?}"
        );
        assert!(matches!(
            flags.stale(0, now).await,
            Err(FlagError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn flags_and_their_answers_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let rollout = r#"{"features": [{"name": "r", "enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId"}}]}]}"#;
        let users: Vec<baton_flags::Context> = (0..200)
            .map(|id| baton_flags::Context {
                user_id: Some(format!("user-{id}")),
                ..baton_flags::Context::default()
            })
            .collect();
        let before: Vec<bool> = {
            let flags = FlagService::load(Arc::new(Store::open(&path).unwrap()), None).unwrap();
            flags
                .change("import", "alice", None, import(rollout))
                .await
                .unwrap();
            let snapshot = flags.current();
            users
                .iter()
                .map(|user| snapshot.features.is_enabled("r", user))
                .collect()
        };
        let flags = FlagService::load(Arc::new(Store::open(&path).unwrap()), None).unwrap();
        let snapshot = flags.current();
        let after: Vec<bool> = users
            .iter()
            .map(|user| snapshot.features.is_enabled("r", user))
            .collect();
        assert_eq!(before, after);
        assert_eq!(snapshot.revision, 1);
        assert!(before.iter().any(|on| *on) && before.iter().any(|on| !on));
    }
}
