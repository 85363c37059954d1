//! What a run applied.

use std::time::Duration;

use crate::phase::Phase;
use crate::progress::took;

/// The migrations one run applied, in the order it applied them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The phase run.
    pub phase: Phase,
    /// Each migration applied.
    pub applied: Vec<AppliedNow>,
}

/// One migration a run applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedNow {
    /// The file name.
    pub file: String,
    /// From its start to its record, waits between tries included.
    pub duration: Duration,
    /// Failed tries (lock timeouts, deadlocks) before it went through.
    pub retries: u32,
}

impl RunReport {
    /// One line for people: `applied 2 expand migrations: 001_a.sql (12
    /// ms), 002_b.sql (1.2 s, 3 retries)`.
    pub fn summary(&self) -> String {
        if self.applied.is_empty() {
            return format!("no {} migrations pending", self.phase);
        }
        let each: Vec<String> = self
            .applied
            .iter()
            .map(|applied| {
                let took = took(applied.duration);
                match applied.retries {
                    0 => format!("{} ({took})", applied.file),
                    1 => format!("{} ({took}, 1 retry)", applied.file),
                    n => format!("{} ({took}, {n} retries)", applied.file),
                }
            })
            .collect();
        format!(
            "applied {} {} migration{}: {}",
            self.applied.len(),
            self.phase,
            if self.applied.len() == 1 { "" } else { "s" },
            each.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_file_with_its_time_and_retries() {
        let mut report = RunReport {
            phase: Phase::Expand,
            applied: Vec::new(),
        };
        assert_eq!(report.summary(), "no expand migrations pending");
        report.applied = vec![
            AppliedNow {
                file: "001_a.sql".into(),
                duration: Duration::from_millis(12),
                retries: 0,
            },
            AppliedNow {
                file: "002_b.sql".into(),
                duration: Duration::from_millis(1234),
                retries: 3,
            },
        ];
        assert_eq!(
            report.summary(),
            "applied 2 expand migrations: 001_a.sql (12 ms), 002_b.sql (1.2 s, 3 retries)"
        );
    }
}
