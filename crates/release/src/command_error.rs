//! Why a build or hook command failed.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why [`crate::run_command`] failed. Each message names the command, says
/// how it ended and ends with the last lines it printed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The shell could not be started.
    #[error(
        "cannot start `{command}` in {}: {source}; check that the directory exists and that \
         /bin/sh is installed",
        dir.display()
    )]
    Spawn {
        /// The command line.
        command: String,
        /// The directory it was to run in.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The command exited unsuccessfully.
    #[error(
        "`{command}` failed ({status}); fix the command or the code it builds and deploy \
         again{}",
        show_tail(tail)
    )]
    Failed {
        /// The command line.
        command: String,
        /// How it ended, e.g. "exit status: 1" or "signal: 9 (SIGKILL)".
        status: String,
        /// Its last lines of output (at most 20).
        tail: Vec<String>,
    },
    /// The command ran past its time limit and was killed with everything it
    /// started.
    #[error(
        "`{command}` did not finish within {} and was killed; make it faster or raise its \
         timeout in baton.toml{}",
        humantime::format_duration(*timeout),
        show_tail(tail)
    )]
    TimedOut {
        /// The command line.
        command: String,
        /// The time limit.
        timeout: Duration,
        /// Its last lines of output (at most 20).
        tail: Vec<String>,
    },
    /// The command's output could not be read; it was killed.
    #[error("reading the output of `{command}` failed: {source}; it was stopped, deploy again")]
    Output {
        /// The command line.
        command: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl CommandError {
    /// The last lines the command printed, when it got to run.
    pub fn tail(&self) -> &[String] {
        match self {
            CommandError::Failed { tail, .. } | CommandError::TimedOut { tail, .. } => tail,
            CommandError::Spawn { .. } | CommandError::Output { .. } => &[],
        }
    }
}

fn show_tail(tail: &[String]) -> String {
    if tail.is_empty() {
        return "; it printed nothing".to_owned();
    }
    let mut text = format!("; its last {} lines of output:", tail.len());
    for line in tail {
        let _ = write!(text, "\n    {line}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_names_command_status_and_tail() {
        let err = CommandError::Failed {
            command: "npm ci".into(),
            status: "exit status: 1".into(),
            tail: vec!["npm ERR! missing lockfile".into(), "bye".into()],
        };
        let text = err.to_string();
        assert!(
            text.starts_with("`npm ci` failed (exit status: 1)"),
            "{text}"
        );
        assert!(text.contains("last 2 lines of output:\n    npm ERR! missing lockfile\n    bye"));
        assert_eq!(err.tail().len(), 2);
    }

    #[test]
    fn timed_out_names_the_limit() {
        let err = CommandError::TimedOut {
            command: "make".into(),
            timeout: Duration::from_secs(90),
            tail: vec![],
        };
        let text = err.to_string();
        assert!(text.contains("within 1m 30s"), "{text}");
        assert!(text.contains("printed nothing"), "{text}");
    }
}
