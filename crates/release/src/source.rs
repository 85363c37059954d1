//! Where a release's code comes from.

use std::fmt;
use std::path::PathBuf;

/// The code a release is staged from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory on this host, copied without its `.git`.
    Dir(PathBuf),
    /// A git repository (any address `git clone` takes) at a branch, tag or
    /// commit.
    Git {
        /// The repository address.
        repo: String,
        /// The branch, tag or commit to deploy.
        reference: String,
    },
}

/// The form recorded in [`crate::ReleaseMeta::source`].
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Dir(path) => write!(f, "dir {}", path.display()),
            Source::Git { repo, reference } => write!(f, "git {repo} ({reference})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_kind_and_origin() {
        assert_eq!(Source::Dir("/src/app".into()).to_string(), "dir /src/app");
        let git = Source::Git {
            repo: "git@example.com:shop.git".into(),
            reference: "v1.2".into(),
        };
        assert_eq!(git.to_string(), "git git@example.com:shop.git (v1.2)");
    }
}
