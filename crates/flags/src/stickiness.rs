//! Stickiness: which context field keeps a user in the same bucket from one
//! request to the next.

use std::borrow::Cow;

use crate::context::Context;

/// The field a rollout or a variant pick hashes, from Unleash's `stickiness`
/// parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stickiness {
    /// `default`: the user, else the session, else a random draw.
    Default,
    /// `random`: a fresh draw on every evaluation.
    Random,
    /// Any other name: that context field (`userId`, `sessionId`, or a
    /// property such as `tenantId`).
    Field(String),
}

/// What a [`Stickiness`] resolves to for one context.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sticky<'c> {
    /// Hash this value.
    Value(Cow<'c, str>),
    /// Draw a random bucket.
    Random,
    /// The named field is absent: a rollout leaves the user out, a variant
    /// pick draws at random (as Unleash's SDKs do).
    Missing,
}

impl Stickiness {
    /// The stickiness a `stickiness` parameter names; absent or empty means
    /// `default`.
    pub(crate) fn named(name: Option<&str>) -> Self {
        match name.map(str::trim) {
            None | Some("" | "default") => Self::Default,
            Some("random") => Self::Random,
            Some(field) => Self::Field(field.to_string()),
        }
    }

    /// What to hash for this context.
    pub(crate) fn resolve<'c>(&self, context: &'c Context) -> Sticky<'c> {
        match self {
            Self::Default => context
                .user_id
                .as_deref()
                .or(context.session_id.as_deref())
                .map_or(Sticky::Random, |value| Sticky::Value(Cow::Borrowed(value))),
            Self::Random => Sticky::Random,
            Self::Field(field) => context.value(field).map_or(Sticky::Missing, Sticky::Value),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{Stickiness, Sticky};
    use crate::context::Context;

    #[test]
    fn default_prefers_user_then_session_then_random() {
        let both = Context {
            user_id: Some("u".into()),
            session_id: Some("s".into()),
            ..Context::default()
        };
        let session = Context {
            session_id: Some("s".into()),
            ..Context::default()
        };
        let default = Stickiness::named(None);
        assert_eq!(default, Stickiness::named(Some("default")));
        assert_eq!(default.resolve(&both), Sticky::Value(Cow::Borrowed("u")));
        assert_eq!(default.resolve(&session), Sticky::Value(Cow::Borrowed("s")));
        assert_eq!(default.resolve(&Context::default()), Sticky::Random);
    }

    #[test]
    fn named_fields_and_random() {
        let context = Context {
            session_id: Some("s".into()),
            properties: [("tenant".to_string(), "t1".to_string())].into(),
            ..Context::default()
        };
        assert_eq!(
            Stickiness::named(Some("sessionId")).resolve(&context),
            Sticky::Value(Cow::Borrowed("s"))
        );
        assert_eq!(
            Stickiness::named(Some("tenant")).resolve(&context),
            Sticky::Value(Cow::Borrowed("t1"))
        );
        assert_eq!(
            Stickiness::named(Some("userId")).resolve(&context),
            Sticky::Missing
        );
        assert_eq!(
            Stickiness::named(Some("random")).resolve(&context),
            Sticky::Random
        );
    }
}
