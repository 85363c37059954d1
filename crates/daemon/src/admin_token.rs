//! The admin listener's bearer token: where it comes from, and how a
//! presented token is compared with it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The environment variable the token may come from when no file is given.
pub const ADMIN_TOKEN_ENV: &str = "BATON_ADMIN_TOKEN";

/// The environment variable the read-only flags token (OFREP evaluation
/// only) may come from when no `--flags-token-file` is given.
pub const FLAGS_TOKEN_ENV: &str = "BATON_FLAGS_TOKEN";

/// The secret a request to the admin listener must present as
/// `Authorization: Bearer TOKEN`. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct AdminToken(Vec<u8>);

/// Why no usable token could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// `--admin` was given with no token source.
    #[error(
        "--admin needs a token: pass --admin-token-file PATH (a file of mode 0600 holding the token) or set {ADMIN_TOKEN_ENV}"
    )]
    Missing,
    /// The token file does not exist.
    #[error(
        "the admin token file {path} does not exist; create it with `(umask 077; openssl rand -hex 32 > {path})`"
    )]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The token file could not be read.
    // `error`, not `source`: the message already says it, and a source
    // would be printed a second time in the error chain.
    #[error(
        "cannot read the admin token file {path}: {error}; it must be a file the daemon's user can read"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// Group or others may read (or write) the token file.
    #[error(
        "the admin token file {path} is open to group or others (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token is empty once surrounding whitespace is trimmed.
    #[error("{source_name} holds an empty admin token; put a long random secret in it")]
    Empty {
        /// The file path or the variable's name.
        source_name: String,
    },
    /// The environment variable is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUnicode(&'static str),
}

impl AdminToken {
    /// Reads the token from `path`: its contents, trimmed. The file must be
    /// closed to group and others, as a private key would be, since anyone
    /// who reads it can abort rollouts.
    pub fn from_file(path: &Path) -> Result<AdminToken, AdminTokenError> {
        let unreadable = |error: std::io::Error| match error.kind() {
            std::io::ErrorKind::NotFound => AdminTokenError::NotFound {
                path: path.to_path_buf(),
            },
            _ => AdminTokenError::Unreadable {
                path: path.to_path_buf(),
                error,
            },
        };
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(AdminTokenError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let contents = std::fs::read_to_string(path).map_err(unreadable)?;
        AdminToken::from_text(&contents, &path.display().to_string())
    }

    /// The token from [`ADMIN_TOKEN_ENV`], if the variable is set.
    pub fn from_env() -> Result<Option<AdminToken>, AdminTokenError> {
        AdminToken::from_var(ADMIN_TOKEN_ENV)
    }

    /// The token the environment variable `name` holds, if it is set.
    pub fn from_var(name: &'static str) -> Result<Option<AdminToken>, AdminTokenError> {
        match std::env::var(name) {
            Ok(value) => AdminToken::from_text(&value, name).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(AdminTokenError::NotUnicode(name)),
        }
    }

    /// The token `text` holds, trimmed; `source_name` names where it came
    /// from in the error.
    pub fn from_text(text: &str, source_name: &str) -> Result<AdminToken, AdminTokenError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(AdminTokenError::Empty {
                source_name: source_name.to_string(),
            });
        }
        Ok(AdminToken(token.as_bytes().to_vec()))
    }

    /// Whether `presented` is the token, in time that does not depend on
    /// where the two first differ, so the token cannot be guessed byte by
    /// byte from response times. Only the length can leak.
    pub fn matches(&self, presented: &[u8]) -> bool {
        if presented.len() != self.0.len() {
            return false;
        }
        let difference = self
            .0
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (expected, given)| acc | (expected ^ given));
        // Keeps the optimiser from turning the fold into an early exit.
        std::hint::black_box(difference) == 0
    }

    /// Whether an `Authorization` header value carries the token as
    /// `Bearer TOKEN` (the scheme is case-insensitive, RFC 7235).
    pub fn authorizes(&self, authorization: &[u8]) -> bool {
        match bearer_credentials(authorization) {
            Some(credentials) => self.matches(credentials),
            None => false,
        }
    }
}

/// The credentials of a `Bearer` `Authorization` header value.
fn bearer_credentials(authorization: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    let (scheme, rest) = authorization.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    Some(rest.trim_ascii())
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn token_file(contents: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(contents.as_bytes()).expect("write token");
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
        file
    }

    fn token(text: &str) -> AdminToken {
        AdminToken::from_text(text, "test").expect("token")
    }

    #[test]
    fn a_private_file_gives_its_trimmed_contents() {
        let file = token_file("  s3cret-token\n", 0o600);
        let token = AdminToken::from_file(file.path()).expect("token");
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"  s3cret-token\n"));
    }

    #[test]
    fn an_owner_read_only_file_is_accepted() {
        let file = token_file("s3cret", 0o400);
        assert!(AdminToken::from_file(file.path()).is_ok());
    }

    #[test]
    fn a_file_group_or_others_can_read_is_refused_with_the_fix() {
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let file = token_file("s3cret", mode);
            let error = AdminToken::from_file(file.path()).expect_err("an open file was accepted");
            let message = error.to_string();
            assert!(
                matches!(error, AdminTokenError::TooOpen { .. }),
                "{mode:o}: {message}"
            );
            assert!(message.contains(&format!("{mode:04o}")), "{message}");
            assert!(message.contains("chmod 600"), "{message}");
        }
    }

    #[test]
    fn a_missing_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("absent");
        let error = AdminToken::from_file(&path).expect_err("a missing file was accepted");
        let message = error.to_string();
        assert!(
            matches!(error, AdminTokenError::NotFound { .. }),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("umask 077"), "{message}");
    }

    #[test]
    fn a_directory_is_refused_as_unreadable() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let error = AdminToken::from_file(dir.path()).expect_err("a directory was accepted");
        assert!(
            matches!(error, AdminTokenError::Unreadable { .. }),
            "{error}"
        );
    }

    #[test]
    fn an_empty_or_blank_token_is_refused() {
        let file = token_file(" \n\t\n", 0o600);
        let error = AdminToken::from_file(file.path()).expect_err("a blank file was accepted");
        assert!(matches!(error, AdminTokenError::Empty { .. }), "{error}");
        assert!(AdminToken::from_text("", ADMIN_TOKEN_ENV).is_err());
    }

    #[test]
    fn missing_names_both_ways_to_pass_a_token() {
        let message = AdminTokenError::Missing.to_string();
        assert!(message.contains("--admin-token-file"), "{message}");
        assert!(message.contains(ADMIN_TOKEN_ENV), "{message}");
    }

    #[test]
    fn only_the_exact_token_matches() {
        let token = token("abcdef");
        assert!(token.matches(b"abcdef"));
        assert!(!token.matches(b"abcdeF"));
        assert!(!token.matches(b"bbcdef"));
        assert!(!token.matches(b"abcde"));
        assert!(!token.matches(b"abcdefg"));
        assert!(!token.matches(b""));
    }

    #[test]
    fn the_bearer_scheme_is_required_and_case_insensitive() {
        let token = token("abcdef");
        assert!(token.authorizes(b"Bearer abcdef"));
        assert!(token.authorizes(b"bearer abcdef"));
        assert!(token.authorizes(b"BEARER  abcdef "));
        assert!(!token.authorizes(b"Bearer abcdeg"));
        assert!(!token.authorizes(b"Basic abcdef"));
        assert!(!token.authorizes(b"abcdef"));
        assert!(!token.authorizes(b"Bearer"));
        assert!(!token.authorizes(b"Bearerabcdef"));
        assert!(!token.authorizes(b""));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let shown = format!("{:?}", token("abcdef"));
        assert!(!shown.contains("abcdef"), "{shown}");
    }
}
