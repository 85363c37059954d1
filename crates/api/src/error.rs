//! Errors of the control API, on the wire and in the client.

use serde::{Deserialize, Serialize};

/// The JSON body of every non-2xx answer of the control API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, to what, and what to do about it.
    pub error: String,
}

/// Why a control API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The daemon could not be reached at all.
    #[error(
        "cannot reach the baton daemon at {socket}: {reason}; is `baton daemon` running? \
         (point to its socket with --socket or BATON_SOCKET)"
    )]
    Unreachable {
        /// The socket path tried.
        socket: String,
        /// The underlying I/O error (in the message, so not also a source
        /// that error chains would print twice).
        reason: std::io::Error,
    },
    /// The connection broke while talking to the daemon.
    #[error("the connection to the baton daemon broke: {0}")]
    Transport(#[from] hyper::Error),
    /// The daemon answered with an error.
    #[error("{message}")]
    Rejected {
        /// HTTP status of the answer.
        status: u16,
        /// The daemon's explanation.
        message: String,
    },
    /// The daemon's answer could not be understood.
    #[error(
        "the baton daemon sent an answer this client cannot read ({0}); are the CLI and daemon the same version?"
    )]
    Decode(#[from] serde_json::Error),
    /// The daemon ended a progress stream before its last event.
    #[error(
        "the baton daemon ended the progress stream early (did it stop?); \
         `baton history` shows how the run ended"
    )]
    StreamEnded,
    /// A request could not be built (a bad service name, say).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}
