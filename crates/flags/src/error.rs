//! What can go wrong reading or writing flags.

use thiserror::Error;

/// A set of flags that cannot be read, written or made ready.
#[derive(Debug, Error)]
pub enum FlagsError {
    /// The text is not Unleash's JSON.
    #[error(
        "the flags are not Unleash's client features JSON ({{\"version\", \"features\", \
         \"segments\"}} or {{\"events\"}}): {0}; fix the place shown, or export the flags \
         again from Unleash's /api/client/features"
    )]
    Read(serde_json::Error),
    /// The flags could not be written as JSON.
    #[error("could not write the flags as JSON: {0}")]
    Write(serde_json::Error),
    /// Two flags share a name, so a lookup could not tell which is meant.
    #[error("two flags are named {0:?}; flag names must be unique: rename or remove one")]
    DuplicateFlag(String),
    /// Two segments share an id, so a strategy could not tell which is meant.
    #[error("two segments have id {0}; segment ids must be unique: renumber or remove one")]
    DuplicateSegment(u32),
}
