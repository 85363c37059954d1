//! The whole set of flags as a document: Unleash's `/api/client/features`
//! shape, read and written as JSON.

use std::collections::HashMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::delta::{Delta, DeltaEvent};
use crate::error::FlagsError;
use crate::feature::Feature;
use crate::lenient::null_as_default;
use crate::segment::Segment;

/// Every flag and segment, as Unleash's client API serves them. This is the
/// form to store, edit and export; [`crate::Features`] is the same made
/// ready to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFeatures {
    /// The document's format version (Unleash serves 2).
    #[serde(default = "format_version")]
    pub version: u32,
    /// The flags, names unique.
    #[serde(default, deserialize_with = "null_as_default")]
    pub features: Vec<Feature>,
    /// The segments strategies refer to, ids unique.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub segments: Vec<Segment>,
}

fn format_version() -> u32 {
    2
}

impl Default for ClientFeatures {
    fn default() -> Self {
        Self {
            version: format_version(),
            features: Vec::new(),
            segments: Vec::new(),
        }
    }
}

impl ClientFeatures {
    /// Reads Unleash's JSON: the client features document
    /// (`{"version", "features", "segments"}`), or a list of delta events
    /// (`{"events": [...]}`) applied to an empty set.
    pub fn from_unleash_json(json: &str) -> Result<Self, FlagsError> {
        // A first look tells the two documents apart, so that a mistake is
        // then reported against the document the text meant to be.
        let fields: HashMap<String, IgnoredAny> =
            serde_json::from_str(json).map_err(FlagsError::Read)?;
        if !fields.contains_key("events") {
            return serde_json::from_str(json).map_err(FlagsError::Read);
        }
        let delta: Delta = serde_json::from_str(json).map_err(FlagsError::Read)?;
        let mut features = Self::default();
        for event in delta.events {
            features.apply(event);
        }
        Ok(features)
    }

    /// Writes the document as Unleash's JSON.
    pub fn to_unleash_json(&self) -> Result<String, FlagsError> {
        serde_json::to_string_pretty(self).map_err(FlagsError::Write)
    }

    /// The flag with this name.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|feature| feature.name == name)
    }

    /// Applies one delta event: a flag or segment replaced (or added at the
    /// end) by name or id, removed, or everything replaced.
    pub fn apply(&mut self, event: DeltaEvent) {
        match event {
            DeltaEvent::Hydration {
                features, segments, ..
            } => {
                self.features = features;
                self.segments = segments;
            }
            DeltaEvent::FeatureUpdated { feature, .. } => {
                match self
                    .features
                    .iter_mut()
                    .find(|old| old.name == feature.name)
                {
                    Some(old) => *old = feature,
                    None => self.features.push(feature),
                }
            }
            DeltaEvent::FeatureRemoved { feature_name, .. } => {
                self.features.retain(|feature| feature.name != feature_name);
            }
            DeltaEvent::SegmentUpdated { segment, .. } => {
                match self.segments.iter_mut().find(|old| old.id == segment.id) {
                    Some(old) => *old = segment,
                    None => self.segments.push(segment),
                }
            }
            DeltaEvent::SegmentRemoved { segment_id, .. } => {
                self.segments.retain(|segment| segment.id != segment_id);
            }
            DeltaEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests;
