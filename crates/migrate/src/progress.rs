//! What the runner reports while it works: one line each, for the
//! terminal and for a deploy's event stream.

use std::fmt;
use std::time::Duration;

use crate::phase::Phase;

/// One step of a run, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Another runner holds the migration lock; this one waits for it.
    Waiting {
        /// The server process id of the session that holds it, if seen.
        holder: Option<i32>,
    },
    /// The lock was taken after waiting.
    Locked {
        /// How long it took.
        waited: Duration,
    },
    /// Nothing of the phase is pending.
    NothingToDo {
        /// The phase run.
        phase: Phase,
    },
    /// A migration of the other phase is pending and left for its phase.
    Deferred {
        /// The file name.
        file: String,
        /// Its phase.
        phase: Phase,
    },
    /// A migration starts.
    Started {
        /// The file name.
        file: String,
        /// Whether it runs statement by statement (it uses CONCURRENTLY).
        one_by_one: bool,
    },
    /// A try failed in a way that may pass later; the runner waits, then
    /// tries again.
    Retrying {
        /// The file name.
        file: String,
        /// 1-based line of the statement that failed.
        line: usize,
        /// The try that failed (1-based).
        attempt: u32,
        /// Tries in all.
        tries: u32,
        /// The wait before the next try.
        delay: Duration,
        /// The server's message.
        reason: String,
    },
    /// A failed `CREATE INDEX CONCURRENTLY` left an INVALID index, which
    /// was dropped.
    DroppedInvalidIndex {
        /// The file name.
        file: String,
        /// The index dropped.
        index: String,
        /// Why the build failed.
        reason: String,
    },
    /// A migration was applied and recorded.
    Applied {
        /// The file name.
        file: String,
        /// How long its successful try took.
        duration: Duration,
        /// Failed tries before it.
        retries: u32,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Waiting { holder } => {
                write!(f, "another migration runner holds the lock")?;
                if let Some(pid) = holder {
                    write!(f, " (server process {pid})")?;
                }
                write!(f, "; waiting for it to finish")
            }
            Progress::Locked { waited } => {
                write!(f, "got the migration lock after {}", seconds(*waited))
            }
            Progress::NothingToDo { phase } => write!(f, "no {phase} migrations pending"),
            Progress::Deferred { file, phase } => {
                write!(
                    f,
                    "{file} is a {phase} migration: it runs in the {phase} phase"
                )
            }
            Progress::Started { file, one_by_one } => {
                if *one_by_one {
                    write!(
                        f,
                        "running {file} statement by statement (it uses CONCURRENTLY, which cannot run in a transaction)"
                    )
                } else {
                    write!(f, "running {file} in a transaction")
                }
            }
            Progress::Retrying {
                file,
                line,
                attempt,
                tries,
                delay,
                reason,
            } => write!(
                f,
                "{file}:{line}: {reason} (try {attempt} of {tries}); trying again in {}",
                seconds(*delay)
            ),
            Progress::DroppedInvalidIndex {
                file,
                index,
                reason,
            } => write!(
                f,
                "{file}: CREATE INDEX CONCURRENTLY failed ({reason}) and left the INVALID index {index}; dropped it"
            ),
            Progress::Applied {
                file,
                duration,
                retries,
            } => {
                write!(f, "applied {file} in {}", took(*duration))?;
                match retries {
                    0 => Ok(()),
                    1 => write!(f, " after 1 retry"),
                    n => write!(f, " after {n} retries"),
                }
            }
        }
    }
}

/// `1.5 s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// `412 ms`, or `1.5 s` from a second on.
pub(crate) fn took(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        seconds(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_reads_as_one_line() {
        let lines = [
            Progress::Waiting { holder: Some(42) }.to_string(),
            Progress::Retrying {
                file: "002_b.sql".into(),
                line: 3,
                attempt: 1,
                tries: 10,
                delay: Duration::from_millis(150),
                reason: "canceling statement due to lock timeout".into(),
            }
            .to_string(),
            Progress::Applied {
                file: "002_b.sql".into(),
                duration: Duration::from_millis(1234),
                retries: 2,
            }
            .to_string(),
        ];
        assert_eq!(
            lines,
            [
                "another migration runner holds the lock (server process 42); waiting for it to finish",
                "002_b.sql:3: canceling statement due to lock timeout (try 1 of 10); trying again in 0.1 s",
                "applied 002_b.sql in 1.2 s after 2 retries",
            ]
        );
        assert!(lines.iter().all(|line| !line.contains('\n')));
    }
}
