//! What the proxy should do with the app's traffic.

use serde::{Deserialize, Serialize};

use crate::Weight;

/// The candidate's place in the proxy's routing table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The candidate's share of live traffic; stable has the rest.
    pub live: Weight,
    /// The share of requests copied to the candidate (answers discarded);
    /// `None` when nothing is mirrored.
    pub mirror: Option<Weight>,
}
