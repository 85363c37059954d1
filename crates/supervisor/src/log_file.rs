//! A process's log file: opened for appending, rotated by copy and truncate,
//! read from the end.
//!
//! The process writes to the file directly, never through a pipe to the
//! daemon: a pipe whose reader died with the daemon would kill the app with
//! SIGPIPE on its next write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// When a log file is rotated and how many old copies are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// Rotate once the file is larger than this; 0 never rotates.
    pub max_bytes: u64,
    /// Old copies kept as `<file>.1` (newest) to `<file>.<keep>`.
    pub keep: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_bytes: 10 * 1024 * 1024,
            keep: 3,
        }
    }
}

/// Opens (creating it and its directory) the log file for appending.
pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        // Logs may hold what apps should not have printed; keep them from
        // other users.
        .mode(0o640)
        .open(path)
}

/// Rotates the log file if it grew past `rotation.max_bytes`: shifts
/// `<file>.1` … to `.2` …, dropping what falls past `keep`, copies the file
/// to `<file>.1` and truncates it. The app keeps its file descriptor: being
/// opened with O_APPEND, its next write lands at the new, empty end.
/// Returns whether it rotated; a missing file is not an error.
pub fn rotate_if_needed(path: &Path, rotation: &LogRotation) -> io::Result<bool> {
    let len = match fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    if rotation.max_bytes == 0 || len <= rotation.max_bytes {
        return Ok(false);
    }
    if rotation.keep > 0 {
        for n in (1..rotation.keep).rev() {
            match fs::rename(numbered(path, n), numbered(path, n + 1)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        fs::copy(path, numbered(path, 1))?;
    }
    // Lines written between the copy and here are lost: the price of never
    // making the app reopen its log.
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

/// `<file>.<n>`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Bytes read per step from the end of the file.
const CHUNK: u64 = 64 * 1024;

/// Past this much read without finding enough lines, what was read is
/// enough: a log of giant lines must not be read whole.
const MAX_SCAN: u64 = 16 * 1024 * 1024;

/// The last `n` lines of a log file, read from its end so a large file costs
/// no more than a small one. Missing or unreadable files have no lines;
/// invalid UTF-8 is replaced.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(len) = file.metadata().map(|metadata| metadata.len()) else {
        return Vec::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut newlines = 0usize;
    let mut start = len;
    while start > 0 && len - start < MAX_SCAN {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; usize::try_from(start - from).unwrap_or(0)];
        // The file may shrink under us (rotation); keep what was read.
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut chunk).is_err() {
            break;
        }
        newlines += chunk.iter().filter(|byte| **byte == b'\n').count();
        if start == len && chunk.last() == Some(&b'\n') {
            // The final newline ends the last line; it starts none.
            newlines -= 1;
        }
        chunk.extend_from_slice(&tail);
        tail = chunk;
        start = from;
        // n lines need the newline that ends the line before them.
        if newlines >= n {
            break;
        }
    }
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    if body.is_empty() && tail.is_empty() {
        return Vec::new();
    }
    let lines: Vec<&[u8]> = body.split(|byte| *byte == b'\n').collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(path: &Path, text: &str) {
        fs::write(path, text).expect("write test file");
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn open_creates_missing_directories_and_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/app.log");
        open_log(&path)
            .and_then(|mut file| file.write_all(b"one\n"))
            .expect("first write");
        open_log(&path)
            .and_then(|mut file| file.write_all(b"two\n"))
            .expect("second write");
        assert_eq!(read(&path), "one\ntwo\n");
    }

    #[test]
    fn small_file_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        write(&path, "12345");
        let rotation = LogRotation {
            max_bytes: 5,
            keep: 2,
        };
        assert!(!rotate_if_needed(&path, &rotation).expect("rotate"));
        assert_eq!(read(&path), "12345");
        assert!(!numbered(&path, 1).exists());
    }

    #[test]
    fn missing_file_is_not_rotated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rotation = LogRotation::default();
        assert!(!rotate_if_needed(&dir.path().join("none.log"), &rotation).expect("rotate"));
    }

    #[test]
    fn zero_max_bytes_never_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        write(&path, "some text");
        let rotation = LogRotation {
            max_bytes: 0,
            keep: 2,
        };
        assert!(!rotate_if_needed(&path, &rotation).expect("rotate"));
        assert_eq!(read(&path), "some text");
    }

    #[test]
    fn copytruncate_keeps_only_keep_copies_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let rotation = LogRotation {
            max_bytes: 4,
            keep: 2,
        };
        for round in 1..=4 {
            write(&path, &format!("round {round}\n"));
            assert!(rotate_if_needed(&path, &rotation).expect("rotate"));
            assert_eq!(read(&path), "");
        }
        assert_eq!(read(&numbered(&path, 1)), "round 4\n");
        assert_eq!(read(&numbered(&path, 2)), "round 3\n");
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn keep_zero_only_truncates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        write(&path, "too long\n");
        let rotation = LogRotation {
            max_bytes: 1,
            keep: 0,
        };
        assert!(rotate_if_needed(&path, &rotation).expect("rotate"));
        assert_eq!(read(&path), "");
        assert!(!numbered(&path, 1).exists());
    }

    #[test]
    fn an_appending_writer_continues_at_the_new_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let mut writer = open_log(&path).expect("open");
        writer.write_all(b"before rotation\n").expect("write");
        let rotation = LogRotation {
            max_bytes: 8,
            keep: 1,
        };
        assert!(rotate_if_needed(&path, &rotation).expect("rotate"));
        writer.write_all(b"after\n").expect("write");
        // No hole of zeros where the old content was.
        assert_eq!(read(&path), "after\n");
        assert_eq!(read(&numbered(&path, 1)), "before rotation\n");
    }

    #[test]
    fn tail_of_small_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        write(&path, "a\nb\nc\n");
        assert_eq!(tail_lines(&path, 2), ["b", "c"]);
        assert_eq!(tail_lines(&path, 3), ["a", "b", "c"]);
        assert_eq!(tail_lines(&path, 10), ["a", "b", "c"]);
        assert!(tail_lines(&path, 0).is_empty());

        write(&path, "a\n\nno newline at end");
        assert_eq!(tail_lines(&path, 2), ["", "no newline at end"]);
        assert_eq!(tail_lines(&path, 5), ["a", "", "no newline at end"]);

        write(&path, "\n");
        assert_eq!(tail_lines(&path, 3), [""]);

        write(&path, "");
        assert!(tail_lines(&path, 3).is_empty());

        assert!(tail_lines(&dir.path().join("missing.log"), 3).is_empty());
    }

    #[test]
    fn tail_of_a_big_file_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() as u64 > 8 * CHUNK);
        write(&path, &text);
        assert_eq!(
            tail_lines(&path, 3),
            ["line 99997", "line 99998", "line 99999"]
        );
        let many = tail_lines(&path, 20_000);
        assert_eq!(many.len(), 20_000);
        assert_eq!(many[0], "line 80000");
        assert_eq!(many[19_999], "line 99999");
        let all = tail_lines(&path, 200_000);
        assert_eq!(all.len(), 100_000);
        assert_eq!(all[0], "line 0");
    }

    #[test]
    fn tail_replaces_invalid_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        fs::write(&path, b"ok\n\xff\xfe bad\n").expect("write");
        assert_eq!(tail_lines(&path, 1), ["\u{fffd}\u{fffd} bad"]);
    }
}
