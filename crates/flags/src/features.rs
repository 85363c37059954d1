//! A set of flags made ready to evaluate: the document it came from, each
//! flag compiled once, and the host's name and random source. It never
//! changes; a change to the flags makes a new one, so a reader holding one
//! sees one consistent revision.

use std::collections::HashMap;
use std::sync::Arc;

use crate::client_features::ClientFeatures;
use crate::context::Context;
use crate::dependency::Dependency;
use crate::error::FlagsError;
use crate::evaluation::{Evaluation, Reason};
use crate::feature::{CompiledFeature, Decision};
use crate::host::Host;
use crate::random::RandomSource;
use crate::variant::Variant;
use crate::warning::Warning;

/// Flags ready to evaluate. The default is no flags at all.
#[derive(Debug, Clone, Default)]
pub struct Features {
    state: ClientFeatures,
    compiled: HashMap<String, CompiledFeature>,
    warnings: Vec<Warning>,
    host: Host,
}

impl Features {
    /// Makes a document ready to evaluate. Parts that cannot work as written
    /// (an unknown operator, a missing segment) never match and are listed
    /// in [`Features::warnings`]; duplicate flag names or segment ids are
    /// errors.
    pub fn new(state: ClientFeatures) -> Result<Self, FlagsError> {
        let mut warnings = Vec::new();
        let mut warn = |about: String, problems: Vec<String>| {
            warnings.extend(problems.into_iter().map(|problem| Warning {
                about: about.clone(),
                problem,
            }));
        };

        let mut segments = HashMap::with_capacity(state.segments.len());
        for segment in &state.segments {
            let mut problems = Vec::new();
            let conditions = segment
                .constraints
                .iter()
                .map(|constraint| constraint.compile(&mut problems))
                .collect::<Vec<_>>();
            warn(format!("segment {}", segment.id), problems);
            if segments.insert(segment.id, conditions).is_some() {
                return Err(FlagsError::DuplicateSegment(segment.id));
            }
        }

        let mut compiled = HashMap::with_capacity(state.features.len());
        for feature in &state.features {
            let mut problems = Vec::new();
            let ready = feature.compile(&segments, &mut problems);
            warn(format!("flag {:?}", feature.name), problems);
            if compiled.insert(feature.name.clone(), ready).is_some() {
                return Err(FlagsError::DuplicateFlag(feature.name.clone()));
            }
        }

        for feature in &state.features {
            let problems = feature
                .dependencies
                .iter()
                .filter_map(|dependency| match compiled.get(&dependency.feature) {
                    None => Some(format!(
                        "parent flag {:?} does not exist; this flag stays off",
                        dependency.feature
                    )),
                    Some(parent) if !parent.dependencies.is_empty() => Some(format!(
                        "parent flag {:?} has parents of its own, which Unleash does not \
                         allow; this flag stays off",
                        dependency.feature
                    )),
                    Some(_) => None,
                })
                .collect();
            warn(format!("flag {:?}", feature.name), problems);
        }

        Ok(Self {
            state,
            compiled,
            warnings,
            host: Host::default(),
        })
    }

    /// Reads Unleash's JSON (see [`ClientFeatures::from_unleash_json`]) and
    /// makes it ready.
    pub fn from_unleash_json(json: &str) -> Result<Self, FlagsError> {
        Self::new(ClientFeatures::from_unleash_json(json)?)
    }

    /// Writes the flags back as Unleash's JSON.
    pub fn to_unleash_json(&self) -> Result<String, FlagsError> {
        self.state.to_unleash_json()
    }

    /// The document these flags were made from.
    pub fn state(&self) -> &ClientFeatures {
        &self.state
    }

    /// What in the flags cannot work as written.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The same flags drawing their random buckets from `random`, such as a
    /// closure that always returns 1 in a test.
    pub fn with_random(mut self, random: impl RandomSource + 'static) -> Self {
        self.host.random = Arc::new(random);
        self
    }

    /// The same flags evaluated on the host named `hostname`, which the
    /// `applicationHostname` strategy compares without case. Until this is
    /// called that strategy never holds: this crate does not ask the OS.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.host.hostname = Some(hostname.into().to_lowercase());
        self
    }

    /// The flags' names, in the document's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.state
            .features
            .iter()
            .map(|feature| feature.name.as_str())
    }

    /// Whether a flag of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.compiled.contains_key(name)
    }

    /// Whether the flag is on for the context; an unknown flag is off.
    pub fn is_enabled(&self, name: &str, context: &Context) -> bool {
        self.compiled
            .get(name)
            .is_some_and(|feature| matches!(self.decide(feature, context), Decision::On { .. }))
    }

    /// The variant the context gets; Unleash's `disabled` variant when the
    /// flag is off, unknown, or has no variants.
    pub fn variant(&self, name: &str, context: &Context) -> Variant {
        self.evaluate(name, context)
            .map_or_else(|| Variant::disabled(false), |evaluation| evaluation.variant)
    }

    /// The whole answer for one flag: on or off, the variant, and why;
    /// `None` when there is no such flag.
    pub fn evaluate(&self, name: &str, context: &Context) -> Option<Evaluation> {
        self.compiled
            .get(name)
            .map(|feature| self.evaluate_feature(feature, context))
    }

    fn evaluate_feature(&self, feature: &CompiledFeature, context: &Context) -> Evaluation {
        match self.decide(feature, context) {
            Decision::Off(reason) => Evaluation {
                enabled: false,
                variant: Variant::disabled(false),
                reason,
            },
            Decision::On { strategy, reason } => {
                let (variant, reason) = feature.variant(strategy, reason, context, &self.host);
                Evaluation {
                    enabled: true,
                    variant,
                    reason,
                }
            }
        }
    }

    /// The switch, then the parents, then the strategies.
    fn decide<'f>(&self, feature: &'f CompiledFeature, context: &Context) -> Decision<'f> {
        if !feature.enabled {
            return Decision::Off(Reason::Disabled);
        }
        if !feature
            .dependencies
            .iter()
            .all(|dependency| self.parent_satisfies(dependency, context))
        {
            return Decision::Off(Reason::TargetingMatch);
        }
        feature.decide(context, &self.host)
    }

    fn parent_satisfies(&self, dependency: &Dependency, context: &Context) -> bool {
        let Some(parent) = self.compiled.get(&dependency.feature) else {
            return false;
        };
        // Unleash allows one level of parents; refusing deeper ones also
        // keeps a cycle from recursing.
        if !parent.dependencies.is_empty() {
            return false;
        }
        if !dependency.wants_enabled() {
            return !matches!(self.decide(parent, context), Decision::On { .. });
        }
        if dependency.variants.is_empty() {
            return matches!(self.decide(parent, context), Decision::On { .. });
        }
        let parent = self.evaluate_feature(parent, context);
        parent.enabled && dependency.variants.contains(&parent.variant.name)
    }
}

#[cfg(test)]
mod tests;
