//! Unleash's delta events: the changes its streaming and delta APIs send
//! instead of the whole document. The client specification states some of
//! its cases this way, and a flag service can feed them in as they come.

use serde::{Deserialize, Serialize};

use crate::feature::Feature;
use crate::lenient::null_as_default;
use crate::segment::Segment;

/// A list of delta events, as Unleash sends it: `{"events": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// The events, to be applied in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<DeltaEvent>,
}

/// One change to the flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum DeltaEvent {
    /// Everything, replacing whatever was there.
    Hydration {
        /// The event's position in Unleash's stream.
        event_id: u64,
        /// Every flag.
        #[serde(default, deserialize_with = "null_as_default")]
        features: Vec<Feature>,
        /// Every segment.
        #[serde(default, deserialize_with = "null_as_default")]
        segments: Vec<Segment>,
    },
    /// A flag created or changed.
    FeatureUpdated {
        /// The event's position in Unleash's stream.
        event_id: u64,
        /// The flag, whole.
        feature: Feature,
    },
    /// A flag deleted.
    FeatureRemoved {
        /// The event's position in Unleash's stream.
        event_id: u64,
        /// The flag's name.
        feature_name: String,
        /// Its project, informative only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
    },
    /// A segment created or changed.
    SegmentUpdated {
        /// The event's position in Unleash's stream.
        event_id: u64,
        /// The segment, whole.
        segment: Segment,
    },
    /// A segment deleted.
    SegmentRemoved {
        /// The event's position in Unleash's stream.
        event_id: u64,
        /// The segment's id.
        segment_id: u32,
    },
    /// An event type this version does not know; applying it changes
    /// nothing, as in Unleash's SDKs, so a newer server does not stop an
    /// older reader.
    #[serde(other)]
    Unknown,
}
