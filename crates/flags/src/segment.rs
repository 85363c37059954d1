//! A segment: a named, reusable set of constraints that strategies refer to
//! by id.

use serde::{Deserialize, Serialize};

use crate::constraint::Constraint;
use crate::lenient::null_as_default;

/// Constraints shared by the strategies that list the segment's id; a
/// strategy holds only if all of them do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The id strategies refer to.
    pub id: u32,
    /// A name for people; evaluation ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The constraints, all of which must hold.
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
}
