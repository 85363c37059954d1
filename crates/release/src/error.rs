//! Why an operation on releases failed.

use std::io;
use std::path::{Path, PathBuf};

/// Why staging, linking, switching or removing a release failed.
///
/// Messages name the path or command involved and say what to do. None of
/// them carries a value read from an env file.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The disk holding the app root filled up.
    #[error(
        "no space left on device while {action} {}; free space under {} and deploy again",
        path.display(),
        root.display()
    )]
    NoSpace {
        /// What was being done, e.g. "copying /src/app.js to".
        action: String,
        /// The path being written.
        path: PathBuf,
        /// The app root whose disk is full.
        root: PathBuf,
    },
    /// A file system operation failed.
    #[error(
        "{action} {} failed: {source}; check that the path exists and that baton's user may \
         read and write there, then try again",
        path.display()
    )]
    Io {
        /// What was being done, e.g. "creating directory".
        action: String,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The source directory of a deploy is missing.
    #[error(
        "source directory {} does not exist or is not a directory; pass the directory that holds \
         the app's code",
        path.display()
    )]
    SourceMissing {
        /// The directory asked for.
        path: PathBuf,
    },
    /// `git` could not be started.
    #[error("cannot run git: {source}; install git on this host, or deploy from a directory")]
    GitUnavailable {
        /// The underlying error.
        source: io::Error,
    },
    /// A git command failed.
    #[error(
        "`git {args}` failed for repository {repo}: {stderr}; check the repository address and \
         that this host may read it"
    )]
    Git {
        /// The git arguments, e.g. "clone --quiet".
        args: String,
        /// The repository deployed from.
        repo: String,
        /// The last lines git wrote to stderr.
        stderr: String,
    },
    /// The ref to deploy names nothing in the repository.
    #[error(
        "{reference:?} is not a branch, tag or commit of {repo}; check the name \
         (`git ls-remote {repo}` lists branches and tags)"
    )]
    UnknownRef {
        /// The repository deployed from.
        repo: String,
        /// The branch, tag or commit asked for.
        reference: String,
    },
    /// A release id that cannot name a directory under `releases/`.
    #[error(
        "{id:?} is not a valid release id; ids look like 20261122T021500Z-3f9a2c1 \
         (letters, digits, '.', '_' and '-', not starting with '.')"
    )]
    InvalidId {
        /// The id given.
        id: String,
    },
    /// No release with this id exists.
    #[error(
        "release {id} does not exist ({} is missing); pick one of the releases under {}",
        path.display(),
        path.parent().map_or(Path::new(""), |p| p).display()
    )]
    NoSuchRelease {
        /// The id given.
        id: String,
        /// Where the release would be.
        path: PathBuf,
    },
    /// The release exists but was never marked complete.
    #[error(
        "release {id} at {} is incomplete: its staging or build did not finish; deploy again \
         or pick another release",
        path.display()
    )]
    Incomplete {
        /// The id given.
        id: String,
        /// The release directory.
        path: PathBuf,
    },
    /// Removing the release `current` points at was asked for.
    #[error(
        "refusing to remove release {id}: {} points at it; switch to another release first",
        link.display()
    )]
    RemoveCurrent {
        /// The id given.
        id: String,
        /// The `current` link.
        link: PathBuf,
    },
    /// A release's marker file cannot be read as release metadata.
    #[error(
        "release marker {} cannot be read: {source}; remove that release directory and deploy \
         again",
        path.display()
    )]
    BadMarker {
        /// The marker file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `current` exists but does not point at a release.
    #[error(
        "{} points at {}, which is not a release under releases/; remove it or switch to a \
         release",
        link.display(),
        target.display()
    )]
    BadCurrentLink {
        /// The `current` link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A shared path or asset directory that would leave the release.
    #[error(
        "{what} path {} must be relative and stay inside the release (no `..`, not absolute); \
         fix it in baton.toml",
        path.display()
    )]
    InvalidPath {
        /// Which setting it came from, e.g. "shared".
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// An env file has a line dotenv syntax cannot read.
    #[error(
        "env file {} is malformed at line {line}; write it as KEY=value (quote values that hold \
         spaces or '#') and deploy again",
        path.display()
    )]
    EnvFileSyntax {
        /// The env file.
        path: PathBuf,
        /// The 1-based line where the bad entry starts.
        line: usize,
    },
    /// An env file that is not UTF-8 text.
    #[error("env file {} is not UTF-8 text; save it as UTF-8 and deploy again", path.display())]
    EnvFileNotText {
        /// The env file.
        path: PathBuf,
    },
}

impl ReleaseError {
    /// An I/O failure at `path`, told apart as a full disk when it is one,
    /// because that is the one failure whose fix (free space under `root`)
    /// the message can name exactly.
    pub(crate) fn io(
        action: impl Into<String>,
        path: &Path,
        root: &Path,
        source: io::Error,
    ) -> ReleaseError {
        if source.kind() == io::ErrorKind::StorageFull {
            ReleaseError::NoSpace {
                action: action.into(),
                path: path.to_path_buf(),
                root: root.to_path_buf(),
            }
        } else {
            ReleaseError::Io {
                action: action.into(),
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Whether the disk filled up.
    pub fn is_no_space(&self) -> bool {
        matches!(self, ReleaseError::NoSpace { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_and_names_the_root() {
        let err = ReleaseError::io(
            "copying /src/big to",
            Path::new("/srv/app/releases/.staging-1/big"),
            Path::new("/srv/app"),
            io::Error::from(io::ErrorKind::StorageFull),
        );
        assert!(err.is_no_space());
        let text = err.to_string();
        assert!(text.contains("no space left on device while copying /src/big to"));
        assert!(text.contains("free space under /srv/app"));
    }

    #[test]
    fn other_io_errors_name_the_path_and_cause() {
        let err = ReleaseError::io(
            "creating directory",
            Path::new("/srv/app/releases"),
            Path::new("/srv/app"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(!err.is_no_space());
        let text = err.to_string();
        assert!(text.contains("creating directory /srv/app/releases failed"));
        assert!(text.contains("permission denied"));
    }
}
