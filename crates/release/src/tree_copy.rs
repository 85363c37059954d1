//! Copying a source directory into a staging directory, hashing what was
//! copied on the way.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use crate::ReleaseError;

/// Copies the tree at `src` (files, directories, symlinks as symlinks,
/// permission bits, no `.git`) into the existing empty directory `dst`, and
/// returns the tree's content hash: sha256 over each entry's relative path,
/// kind, mode and contents (or link target) in sorted order, as 7 hex digits.
///
/// Entries under `skip` (the app root, when it lies inside the source) are
/// left out, or the copy would chase its own output. `root` is only named in
/// errors.
pub(crate) fn copy_tree(
    src: &Path,
    dst: &Path,
    skip: &Path,
    root: &Path,
) -> Result<String, ReleaseError> {
    let mut tree_hash = Sha256::new();
    // Directory modes are applied last: a read-only directory copied early
    // would refuse the files still to be copied into it.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let walk = WalkDir::new(src)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git" && e.path() != skip);
    for entry in walk {
        let entry = entry.map_err(|e| walk_error(e, src, root))?;
        let from = entry.path();
        let rel = from.strip_prefix(src).unwrap_or(from);
        let to = dst.join(rel);
        let meta = entry.metadata().map_err(|e| walk_error(e, src, root))?;
        let mode = meta.permissions().mode() & 0o7777;
        let file_type = entry.file_type();
        let (kind, payload) = if file_type.is_dir() {
            fs::create_dir(&to)
                .map_err(|e| ReleaseError::io("creating directory", &to, root, e))?;
            dir_modes.push((to, mode));
            (b'd', Vec::new())
        } else if file_type.is_symlink() {
            let target =
                fs::read_link(from).map_err(|e| ReleaseError::io("reading link", from, root, e))?;
            symlink(&target, &to).map_err(|e| ReleaseError::io("creating link", &to, root, e))?;
            (b'l', target.as_os_str().as_bytes().to_vec())
        } else if file_type.is_file() {
            (b'f', copy_file(from, &to, mode, root)?)
        } else {
            // Sockets and FIFOs are runtime artefacts of a working copy, not
            // code; copying one would block or fail.
            tracing::warn!(path = %from.display(), "skipping a special file while staging");
            continue;
        };
        tree_hash.update([kind]);
        tree_hash.update(rel.as_os_str().as_bytes());
        tree_hash.update(b"\0");
        tree_hash.update(format!("{mode:o}").as_bytes());
        tree_hash.update(b"\0");
        tree_hash.update(&payload);
        tree_hash.update(b"\0");
    }
    for (dir, mode) in dir_modes.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
            .map_err(|e| ReleaseError::io("setting permissions of", dir, root, e))?;
    }
    let digest = hex(&tree_hash.finalize());
    Ok(digest[..7].to_owned())
}

/// Copies one file, returning the sha256 of its contents. Reading and
/// hashing in one pass keeps a large tree from being read twice.
fn copy_file(from: &Path, to: &Path, mode: u32, root: &Path) -> Result<Vec<u8>, ReleaseError> {
    let copying = || format!("copying {} to", from.display());
    let mut input = fs::File::open(from).map_err(|e| ReleaseError::io("reading", from, root, e))?;
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| ReleaseError::io(copying(), to, root, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReleaseError::io("reading", from, root, e)),
        };
        hash.update(&buf[..n]);
        output
            .write_all(&buf[..n])
            .map_err(|e| ReleaseError::io(copying(), to, root, e))?;
    }
    // The umask applied at creation; the source's bits are what a release
    // needs (an executable script must stay executable).
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .map_err(|e| ReleaseError::io("setting permissions of", to, root, e))?;
    Ok(hash.finalize().to_vec())
}

fn walk_error(err: walkdir::Error, src: &Path, root: &Path) -> ReleaseError {
    let path = err.path().unwrap_or(src).to_path_buf();
    let source = err
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("file system loop"));
    ReleaseError::io("reading", &path, root, source)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write;

    fn copy(src: &Path) -> (tempfile::TempDir, String) {
        let out = tempfile::tempdir().unwrap();
        let revision = copy_tree(src, out.path(), Path::new("/nonexistent"), out.path()).unwrap();
        (out, revision)
    }

    #[test]
    fn copies_files_dirs_links_and_modes_without_git() {
        let src = tempfile::tempdir().unwrap();
        write(&src.path().join("bin/run"), "#!/bin/sh\n");
        fs::set_permissions(
            src.path().join("bin/run"),
            fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        write(&src.path().join("config/app.toml"), "a = 1\n");
        write(&src.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(&src.path().join("vendor/lib/.git"), "gitdir: ../x\n");
        symlink("config/app.toml", src.path().join("app.toml")).unwrap();
        fs::create_dir(src.path().join("ro")).unwrap();
        write(&src.path().join("ro/inside"), "x");
        fs::set_permissions(src.path().join("ro"), fs::Permissions::from_mode(0o555)).unwrap();

        let (out, revision) = copy(src.path());
        let out = out.path();
        assert_eq!(revision.len(), 7);
        assert!(!out.join(".git").exists());
        assert!(!out.join("vendor/lib/.git").exists());
        assert_eq!(
            fs::read_to_string(out.join("bin/run")).unwrap(),
            "#!/bin/sh\n"
        );
        let mode = fs::metadata(out.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        let ro = fs::metadata(out.join("ro")).unwrap().permissions().mode();
        assert_eq!(ro & 0o7777, 0o555);
        assert_eq!(fs::read_to_string(out.join("ro/inside")).unwrap(), "x");
        assert_eq!(
            fs::read_link(out.join("app.toml")).unwrap(),
            Path::new("config/app.toml")
        );
        fs::set_permissions(out.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn same_content_gives_the_same_hash_and_any_change_a_different_one() {
        let make = || {
            let src = tempfile::tempdir().unwrap();
            write(&src.path().join("a.txt"), "hello");
            write(&src.path().join("sub/b.txt"), "world");
            symlink("a.txt", src.path().join("link")).unwrap();
            src
        };
        let first = make();
        let second = make();
        // A different .git must not matter: the same code is the same release.
        write(&second.path().join(".git/HEAD"), "other");
        let base = copy(first.path()).1;
        assert_eq!(copy(second.path()).1, base);

        fs::write(second.path().join("sub/b.txt"), "World").unwrap();
        let changed_content = copy(second.path()).1;
        assert_ne!(changed_content, base);

        fs::write(second.path().join("sub/b.txt"), "world").unwrap();
        assert_eq!(copy(second.path()).1, base);
        fs::set_permissions(
            second.path().join("a.txt"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(copy(second.path()).1, base, "a mode change is a change");

        let third = make();
        fs::remove_file(third.path().join("link")).unwrap();
        symlink("sub/b.txt", third.path().join("link")).unwrap();
        assert_ne!(
            copy(third.path()).1,
            base,
            "a link target change is a change"
        );
    }

    #[test]
    fn the_skipped_path_is_left_out() {
        let src = tempfile::tempdir().unwrap();
        write(&src.path().join("app.js"), "x");
        write(&src.path().join(".baton/releases/old/app.js"), "x");
        let out = tempfile::tempdir().unwrap();
        copy_tree(
            src.path(),
            out.path(),
            &src.path().join(".baton"),
            out.path(),
        )
        .unwrap();
        assert!(out.path().join("app.js").is_file());
        assert!(!out.path().join(".baton").exists());
    }

    #[test]
    fn hex_is_lower_case_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
    }
}
