//! Something in the flags that was read but cannot work as written: the part
//! concerned never matches, and the warning says so, so that an import can
//! tell its user instead of silently serving "off".

use std::fmt;

use serde::{Deserialize, Serialize};

/// One part of the flags that cannot work as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The flag or segment concerned, such as `flag "checkout"` or
    /// `segment 4`.
    pub about: String,
    /// What is wrong and what it does instead.
    pub problem: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.about, self.problem)
    }
}
