//! The app's env file (`shared/.env`): secrets and settings for every
//! release.

use std::fs;
use std::io;
use std::path::Path;

use crate::ReleaseError;

/// Reads the dotenv file at `path` into `(key, value)` pairs, in file order.
///
/// A missing file, or a directory where the file would be, is an empty
/// environment: an app need not have one. The syntax is dotenvy's (quotes,
/// escapes, `export`, `${VAR}` substitution from earlier lines and from the
/// daemon's own environment). Values are secrets: a malformed entry is
/// reported by line number only, never with its text.
pub fn load_env_file(path: &Path) -> Result<Vec<(String, String)>, ReleaseError> {
    let io_error = |source: io::Error| ReleaseError::Io {
        action: "reading env file".to_owned(),
        path: path.to_path_buf(),
        source,
    };
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(Vec::new()),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error(err)),
    }
    let text = fs::read_to_string(path).map_err(|err| {
        if err.kind() == io::ErrorKind::InvalidData {
            ReleaseError::EnvFileNotText {
                path: path.to_path_buf(),
            }
        } else {
            io_error(err)
        }
    })?;
    // dotenvy strips a byte-order mark only when it loads into the process
    // environment, which a daemon serving many apps must never do.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut vars = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => vars.push(pair),
            Err(dotenvy::Error::LineParse(entry, _)) => {
                return Err(ReleaseError::EnvFileSyntax {
                    path: path.to_path_buf(),
                    line: line_of(text, &entry),
                });
            }
            Err(dotenvy::Error::Io(err)) => return Err(io_error(err)),
            // dotenvy's error enum is non-exhaustive; its other variant comes
            // from reading the process environment, which iterating a file
            // does not do.
            Err(_) => {
                return Err(io_error(io::Error::other("the env file could not be read")));
            }
        }
    }
    Ok(vars)
}

/// The 1-based line of `text` where the entry `entry` starts. dotenvy
/// reports the entry's text, not its line number. An entry starts at a line
/// start, at the first one whose text begins with it: parsing stops at the
/// first bad entry, so an earlier copy would have failed first. The start
/// line (not the exact position) is what is reported, because an unclosed
/// quote is only noticed at the end of the file.
fn line_of(text: &str, entry: &str) -> usize {
    let mut line_start = 0;
    let mut line = 1;
    loop {
        if text[line_start..].starts_with(entry) {
            return line;
        }
        match text[line_start..].find('\n') {
            Some(pos) if line_start + pos + 1 < text.len() => {
                line_start += pos + 1;
                line += 1;
            }
            // Not found as written (dotenvy trimmed it): the best guess left
            // is the last line.
            _ => return line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_file(contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, contents).unwrap();
        (dir, path)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_values_in_order_with_dotenv_syntax() {
        let (_dir, path) = env_file(
            "\u{feff}# settings\nDATABASE_URL=postgres://db/shop\n\nexport MODE=production\n\
             GREETING=\"hello world\" # comment\nMULTI=\"a\nb\"\nEMPTY=\nREF=${MODE}-x\n",
        );
        assert_eq!(
            load_env_file(&path).unwrap(),
            pairs(&[
                ("DATABASE_URL", "postgres://db/shop"),
                ("MODE", "production"),
                ("GREETING", "hello world"),
                ("MULTI", "a\nb"),
                ("EMPTY", ""),
                ("REF", "production-x"),
            ])
        );
    }

    #[test]
    fn a_missing_file_or_a_directory_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_env_file(&dir.path().join("nope")).unwrap().is_empty());
        assert!(load_env_file(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_line_is_named_by_number_without_its_value() {
        let (_dir, path) = env_file("OK=1\n# note\n\nSECRET_KEY=\"s3cr3t-value\nOTHER=2\n");
        let err = load_env_file(&path).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(err, ReleaseError::EnvFileSyntax { line: 4, .. }),
            "{shown}"
        );
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");

        let (_dir, path) = env_file("A=1\nB=2\nnot a valid line with secret-ish words\n");
        let err = load_env_file(&path).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(err, ReleaseError::EnvFileSyntax { line: 3, .. }),
            "{shown}"
        );
        assert!(!shown.contains("secret-ish"), "{shown}");
    }

    #[test]
    fn a_file_that_is_not_text_is_refused_without_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, b"KEY=\xff\xfe\n").unwrap();
        let err = load_env_file(&path).unwrap_err();
        assert!(matches!(err, ReleaseError::EnvFileNotText { .. }), "{err}");
    }

    #[test]
    fn line_of_finds_where_an_entry_starts() {
        let text = "A=1\nB=\"x\ny\nC=3\n";
        assert_eq!(line_of(text, "A=1"), 1);
        assert_eq!(line_of(text, "B=\"x\ny\nC=3\n"), 2);
        assert_eq!(line_of(text, "missing"), 4);
    }
}
