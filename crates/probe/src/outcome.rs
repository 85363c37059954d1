//! What became of one request: [`Outcome`], and the rules that classify
//! statuses and errors into it.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// The result of one request: ok, or exactly one kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 2xx response whose whole body was read.
    Ok,
    /// The connection could not be established: refused, unreachable,
    /// connect timeout, TLS handshake failure.
    Connect,
    /// The connection broke under the request: reset, unexpected EOF,
    /// closed before the response was complete, HTTP/2 stream reset or
    /// `GOAWAY` from the server.
    Reset,
    /// No complete response within the request timeout.
    Timeout,
    /// A 5xx response.
    Status5xx,
    /// Any other non-2xx response (1xx, 3xx, 4xx).
    StatusOther,
    /// Anything else (e.g. a malformed response, an HTTP/2 protocol
    /// violation).
    Other,
}

impl Outcome {
    /// A short lowercase label, as used in reports: `ok`, `connect`,
    /// `reset`, `timeout`, `5xx`, `status`, `other`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Connect => "connect",
            Outcome::Reset => "reset",
            Outcome::Timeout => "timeout",
            Outcome::Status5xx => "5xx",
            Outcome::StatusOther => "status",
            Outcome::Other => "other",
        }
    }

    /// Whether this outcome is a failure (anything but [`Outcome::Ok`]).
    pub fn is_failure(self) -> bool {
        self != Outcome::Ok
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Classifies a response status whose body was read completely: 2xx is ok,
/// 5xx is [`Outcome::Status5xx`], anything else [`Outcome::StatusOther`].
pub fn classify_status(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Ok,
        500..=599 => Outcome::Status5xx,
        _ => Outcome::StatusOther,
    }
}

/// Classifies an error raised while sending a request or reading its
/// response on an established connection (a `hyper::Error`, an
/// `io::Error`, an `h2::Error`, or anything wrapping one of them).
///
/// The error and its sources are examined outermost first; the first one
/// that says what happened decides. Nothing recognisable gives
/// [`Outcome::Other`]. (Errors while *establishing* a connection are
/// always [`Outcome::Connect`] and never come through here.)
pub fn classify_error(error: &(dyn StdError + 'static)) -> Outcome {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(e) = err.downcast_ref::<hyper::Error>() {
            if e.is_timeout() {
                return Outcome::Timeout;
            }
            // Incomplete message: the connection closed before the
            // response was complete. Canceled/closed: the connection went
            // away with the request queued on it.
            if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
                return Outcome::Reset;
            }
        }
        if let Some(e) = err.downcast_ref::<h2::Error>() {
            if let Some(outcome) = e.get_io().and_then(classify_io) {
                return outcome;
            }
            // The peer broke the response off (RST_STREAM, GOAWAY with an
            // error) or the transport failed: the stream ended under the
            // request. A protocol violation that h2 itself detected means
            // the server did not speak HTTP/2 properly: other.
            if e.is_library() {
                return Outcome::Other;
            }
            if e.is_remote() || e.is_io() || e.reason().is_some() {
                return Outcome::Reset;
            }
        }
        if let Some(outcome) = err.downcast_ref::<io::Error>().and_then(classify_io) {
            return outcome;
        }
        current = err.source();
    }
    Outcome::Other
}

fn classify_io(error: &io::Error) -> Option<Outcome> {
    use io::ErrorKind::*;
    match error.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Some(Outcome::Reset)
        }
        TimedOut => Some(Outcome::Timeout),
        ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable => {
            Some(Outcome::Connect)
        }
        _ => None,
    }
}

/// Whether an HTTP/2 error proves the server never processed the request,
/// so that sending it again elsewhere is safe and is what a client does
/// (RFC 9113 §8.7): the stream was refused (`REFUSED_STREAM`), or the
/// server is shutting down gracefully (`GOAWAY` with `NO_ERROR` covers only
/// streams it did not process).
pub(crate) fn never_processed(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(e) = err.downcast_ref::<h2::Error>() {
            return e.is_remote()
                && (e.reason() == Some(h2::Reason::REFUSED_STREAM)
                    || (e.is_go_away() && e.reason() == Some(h2::Reason::NO_ERROR)));
        }
        current = err.source();
    }
    false
}

/// Whether an HTTP/2 error means the connection is going away, so the
/// shared connection must be replaced before the next request.
pub(crate) fn connection_going_away(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(e) = err.downcast_ref::<h2::Error>() {
            return e.is_go_away() || e.is_io();
        }
        if let Some(e) = err.downcast_ref::<hyper::Error>()
            && (e.is_canceled() || e.is_closed())
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// One line describing an error and its sources, for the report's error
/// samples.
pub(crate) fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(err) = current {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn statuses_classify_by_class() {
        assert_eq!(classify_status(200), Outcome::Ok);
        assert_eq!(classify_status(204), Outcome::Ok);
        assert_eq!(classify_status(299), Outcome::Ok);
        assert_eq!(classify_status(101), Outcome::StatusOther);
        assert_eq!(classify_status(301), Outcome::StatusOther);
        assert_eq!(classify_status(404), Outcome::StatusOther);
        assert_eq!(classify_status(429), Outcome::StatusOther);
        assert_eq!(classify_status(500), Outcome::Status5xx);
        assert_eq!(classify_status(503), Outcome::Status5xx);
        assert_eq!(classify_status(599), Outcome::Status5xx);
    }

    #[test]
    fn io_errors_classify_by_kind() {
        let of = |kind| classify_error(&io::Error::new(kind, "x"));
        assert_eq!(of(io::ErrorKind::ConnectionReset), Outcome::Reset);
        assert_eq!(of(io::ErrorKind::BrokenPipe), Outcome::Reset);
        assert_eq!(of(io::ErrorKind::UnexpectedEof), Outcome::Reset);
        assert_eq!(of(io::ErrorKind::ConnectionAborted), Outcome::Reset);
        assert_eq!(of(io::ErrorKind::TimedOut), Outcome::Timeout);
        assert_eq!(of(io::ErrorKind::ConnectionRefused), Outcome::Connect);
        assert_eq!(of(io::ErrorKind::InvalidData), Outcome::Other);
    }

    #[test]
    fn wrapped_errors_classify_by_their_source() {
        let wrapped = Wrapper(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(classify_error(&wrapped), Outcome::Reset);
        assert_eq!(describe(&wrapped), "wrapped: connection reset");
    }

    #[test]
    fn h2_errors_classify_as_reset() {
        let reset = h2::Error::from(h2::Reason::INTERNAL_ERROR);
        assert_eq!(classify_error(&reset), Outcome::Reset);
        // Locally made errors are not the server's refusal.
        assert!(!never_processed(&reset));
    }

    #[test]
    fn unknown_errors_are_other() {
        let err = io::Error::other("strange");
        assert_eq!(classify_error(&err), Outcome::Other);
        assert!(!never_processed(&err));
        assert!(!connection_going_away(&err));
    }

    #[test]
    fn labels_and_failure() {
        assert!(!Outcome::Ok.is_failure());
        assert!(Outcome::Status5xx.is_failure());
        assert_eq!(Outcome::Status5xx.to_string(), "5xx");
    }
}
