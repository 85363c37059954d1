//! What happened to one proxied request, and the counter it lands in.

/// What happened to one proxied request.
///
/// A request is recorded once, with the outcome the upstream produced: when
/// the proxy answers a client with its own 502 because the upstream refused
/// the connection, that is a [`Outcome::ConnectFailure`], not a
/// `Status(502)`, so upstream errors and proxy-made errors stay apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The upstream sent a response head with this status code. Codes outside
    /// 100..=599 count as requests but in no status class.
    Status(u16),
    /// No connection to the upstream could be established.
    ConnectFailure,
    /// The upstream did not answer within the proxy's timeout.
    Timeout,
    /// The upstream reset or broke the exchange after the connection was made.
    UpstreamError,
}

/// The counter an outcome lands in, as an index into a fixed array so that
/// per-slice and lifetime counters share one layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Status1xx,
    Status2xx,
    Status3xx,
    Status4xx,
    Status5xx,
    ConnectFailure,
    Timeout,
    UpstreamError,
}

impl Class {
    /// How many classes there are, i.e. the length of a counter array.
    pub(crate) const COUNT: usize = 8;

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl Outcome {
    /// `None` for a status code no HTTP class covers: such a response still
    /// counts as a request, but inventing a class for it would skew either
    /// the success or the error side.
    pub(crate) const fn class(self) -> Option<Class> {
        match self {
            Outcome::Status(code) => match code / 100 {
                1 => Some(Class::Status1xx),
                2 => Some(Class::Status2xx),
                3 => Some(Class::Status3xx),
                4 => Some(Class::Status4xx),
                5 => Some(Class::Status5xx),
                _ => None,
            },
            Outcome::ConnectFailure => Some(Class::ConnectFailure),
            Outcome::Timeout => Some(Class::Timeout),
            Outcome::UpstreamError => Some(Class::UpstreamError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_fall_into_their_class() {
        assert_eq!(Outcome::Status(100).class(), Some(Class::Status1xx));
        assert_eq!(Outcome::Status(200).class(), Some(Class::Status2xx));
        assert_eq!(Outcome::Status(299).class(), Some(Class::Status2xx));
        assert_eq!(Outcome::Status(304).class(), Some(Class::Status3xx));
        assert_eq!(Outcome::Status(404).class(), Some(Class::Status4xx));
        assert_eq!(Outcome::Status(503).class(), Some(Class::Status5xx));
        assert_eq!(Outcome::Status(599).class(), Some(Class::Status5xx));
    }

    #[test]
    fn codes_outside_http_classes_have_none() {
        assert_eq!(Outcome::Status(0).class(), None);
        assert_eq!(Outcome::Status(99).class(), None);
        assert_eq!(Outcome::Status(600).class(), None);
        assert_eq!(Outcome::Status(u16::MAX).class(), None);
    }

    #[test]
    fn failures_have_their_own_class() {
        assert_eq!(Outcome::ConnectFailure.class(), Some(Class::ConnectFailure));
        assert_eq!(Outcome::Timeout.class(), Some(Class::Timeout));
        assert_eq!(Outcome::UpstreamError.class(), Some(Class::UpstreamError));
    }

    #[test]
    fn class_indices_cover_the_counter_array_exactly() {
        let all = [
            Class::Status1xx,
            Class::Status2xx,
            Class::Status3xx,
            Class::Status4xx,
            Class::Status5xx,
            Class::ConnectFailure,
            Class::Timeout,
            Class::UpstreamError,
        ];
        assert_eq!(all.len(), Class::COUNT);
        for (i, class) in all.into_iter().enumerate() {
            assert_eq!(class.index(), i);
        }
    }
}
