//! What the evaluating host supplies that no request does: its name, for
//! the `applicationHostname` strategy, and its random source.

use std::fmt;
use std::sync::Arc;

use crate::random::{RandomSource, ThreadRandom};

/// The host's part of every evaluation.
#[derive(Clone)]
pub(crate) struct Host {
    /// The host's name, lowered (Unleash compares host names without case);
    /// `None` until the daemon, which may read the OS, says it.
    pub(crate) hostname: Option<String>,
    pub(crate) random: Arc<dyn RandomSource>,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            hostname: None,
            random: Arc::new(ThreadRandom),
        }
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Host")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}
