//! Checking out a git repository at a branch, tag or commit into a staging
//! directory.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::ReleaseError;

/// How many lines of git's stderr an error keeps: the cause is at the end.
const STDERR_TAIL_LINES: usize = 5;

/// Clones `repo` into the existing empty directory `dst`, checks out
/// `reference` detached, removes `.git` and returns the short commit hash.
/// `root` is only named in errors.
pub(crate) fn checkout(
    repo: &str,
    reference: &str,
    dst: &Path,
    root: &Path,
) -> Result<String, ReleaseError> {
    let unknown_ref = || ReleaseError::UnknownRef {
        repo: repo.to_owned(),
        reference: reference.to_owned(),
    };
    // A ref starting with '-' would be read as an option by git.
    if reference.is_empty() || reference.starts_with('-') {
        return Err(unknown_ref());
    }
    let git = Git { repo, dst, root };
    git.run(&[
        OsStr::new("clone"),
        OsStr::new("--quiet"),
        OsStr::new("--"),
        OsStr::new(repo),
        dst.as_os_str(),
    ])?;
    // A clone has local branches only for the remote's default branch; any
    // other branch exists as origin/<name>, which `checkout --detach <name>`
    // would not find on its own.
    let remote_branch = format!("refs/remotes/origin/{reference}");
    let commit = [reference, remote_branch.as_str()]
        .into_iter()
        .find_map(|candidate| git.resolve(candidate))
        .ok_or_else(unknown_ref)?;
    git.run_in(&["checkout", "--quiet", "--detach", &commit])?;
    let revision = git.run_in(&["rev-parse", "--short=7", "HEAD"])?;
    let dot_git = dst.join(".git");
    crate::disk::remove_path(&dot_git)
        .map_err(|e| ReleaseError::io("removing", &dot_git, root, e))?;
    Ok(revision)
}

/// One checkout's git invocations.
struct Git<'a> {
    repo: &'a str,
    dst: &'a Path,
    root: &'a Path,
}

impl Git<'_> {
    /// The full commit hash `candidate` names, if it names one.
    fn resolve(&self, candidate: &str) -> Option<String> {
        let spec = format!("{candidate}^{{commit}}");
        let output = self
            .command(&[
                OsStr::new("-C"),
                self.dst.as_os_str(),
                OsStr::new("rev-parse"),
                OsStr::new("--verify"),
                OsStr::new("--quiet"),
                OsStr::new("--end-of-options"),
                OsStr::new(&spec),
            ])
            .output()
            .ok()?;
        let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (output.status.success() && !hash.is_empty()).then_some(hash)
    }

    /// Runs `git -C <dst> ARGS`, returning its trimmed stdout.
    fn run_in(&self, args: &[&str]) -> Result<String, ReleaseError> {
        let mut full: Vec<&OsStr> = vec![OsStr::new("-C"), self.dst.as_os_str()];
        full.extend(args.iter().map(OsStr::new));
        self.run(&full)
    }

    /// Runs `git ARGS`, returning its trimmed stdout.
    fn run(&self, args: &[&OsStr]) -> Result<String, ReleaseError> {
        let output = self
            .command(args)
            .output()
            .map_err(|source| ReleaseError::GitUnavailable { source })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let shown = shown.join(" ");
        if stderr.contains("No space left on device") {
            return Err(ReleaseError::NoSpace {
                action: format!("running `git {shown}` into"),
                path: self.dst.to_path_buf(),
                root: self.root.to_path_buf(),
            });
        }
        Err(ReleaseError::Git {
            args: shown,
            repo: self.repo.to_owned(),
            stderr: stderr_tail(&stderr, &output.status),
        })
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new("git");
        command
            .args(args)
            // A daemon has nobody to type a password: fail instead of waiting.
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        command
    }
}

fn stderr_tail(stderr: &str, status: &std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return format!("{status}, no message");
    }
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitStatus;

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let status = ExitStatus::default();
        let text = "one\n\ntwo\nthree\nfour\nfive\nsix\n";
        assert_eq!(
            stderr_tail(text, &status),
            "two / three / four / five / six"
        );
        assert!(stderr_tail("", &status).contains("no message"));
    }

    #[test]
    fn refs_that_look_like_options_are_refused_before_running_git() {
        let dst = tempfile::tempdir().unwrap();
        let err = checkout("/nonexistent", "--upload-pack=x", dst.path(), dst.path()).unwrap_err();
        assert!(matches!(err, ReleaseError::UnknownRef { .. }), "{err}");
    }
}
