//! The deploy phase a migration belongs to.

/// When a migration runs during a deploy. A file whose first line is
/// `-- baton:phase contract` is a contract migration; every other file is an
/// expand migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Runs before traffic moves, while the old version still serves: it
    /// must not break the old code.
    #[default]
    Expand,
    /// Runs only after the old version has drained and stopped, so changes
    /// that only break old code (dropping a column it read) are allowed;
    /// locks and rewrites still hurt the new version and are still checked.
    Contract,
}

impl Phase {
    /// The phase named `word` in a `-- baton:phase` line.
    pub fn from_word(word: &str) -> Option<Phase> {
        match word {
            "expand" => Some(Phase::Expand),
            "contract" => Some(Phase::Contract),
            _ => None,
        }
    }

    /// The phase's name, as `-- baton:phase` and `--phase` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Expand => "expand",
            Phase::Contract => "contract",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
