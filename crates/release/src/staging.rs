//! Staging: turning a source into a new directory under `releases/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::app_root::STAGING_PREFIX;
use crate::disk::{fsync_dir, remove_path, unique_suffix};
use crate::{AppRoot, ReleaseError, Source, release_id};

/// A release directory that holds the source's code. It is not complete yet:
/// shared links and build steps come next, then
/// [`AppRoot::mark_complete`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedRelease {
    /// The new release's id.
    pub id: String,
    /// `<root>/releases/<id>`.
    pub dir: PathBuf,
    /// The git commit (short) or the content hash of the source directory.
    pub revision: String,
}

/// Copies or clones `source` into a new release directory.
///
/// `Source::Dir` is copied without `.git` (files, directories, symlinks kept
/// as symlinks, permission bits kept) and its revision is a content hash.
/// `Source::Git` is cloned, checked out detached at the branch, tag or commit
/// asked for, and stripped of `.git`; its revision is the short commit hash.
///
/// The work happens in `releases/.staging-<unique>`, renamed to
/// `releases/<id>` once whole, so a release directory never holds half a
/// copy. The id is [`release_id`]`(now, revision)`, with `-2`, `-3`… added
/// when a release of that id already exists. On any error the staging
/// directory is removed before returning.
pub fn stage(
    root: &AppRoot,
    source: &Source,
    now: SystemTime,
) -> Result<StagedRelease, ReleaseError> {
    root.prepare()?;
    let staging = root
        .releases_dir()
        .join(format!("{STAGING_PREFIX}{}", unique_suffix()));
    fs::create_dir(&staging)
        .map_err(|e| ReleaseError::io("creating directory", &staging, root.path(), e))?;
    let staged =
        fill(root, source, &staging).and_then(|revision| publish(root, &staging, now, revision));
    if staged.is_err() {
        // A failed staging must not eat the disk space the next attempt needs.
        if let Err(err) = remove_path(&staging) {
            tracing::warn!(
                path = %staging.display(),
                error = %err,
                "could not remove a failed staging; it is removed on the next start"
            );
        }
    }
    staged
}

/// Puts the source's code into `staging`, returning its revision.
fn fill(root: &AppRoot, source: &Source, staging: &Path) -> Result<String, ReleaseError> {
    match source {
        Source::Dir(dir) => {
            let src = match fs::canonicalize(dir) {
                Ok(src) if src.is_dir() => src,
                Ok(_) => return Err(ReleaseError::SourceMissing { path: dir.clone() }),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(ReleaseError::SourceMissing { path: dir.clone() });
                }
                Err(err) => return Err(ReleaseError::io("reading", dir, root.path(), err)),
            };
            // An app root inside its own source (say `root = ".baton"`) would
            // otherwise be copied into itself, release after release.
            let skip = fs::canonicalize(root.path()).unwrap_or_else(|_| root.path().to_path_buf());
            crate::tree_copy::copy_tree(&src, staging, &skip, root.path())
        }
        Source::Git { repo, reference } => {
            crate::git_checkout::checkout(repo, reference, staging, root.path())
        }
    }
}

/// Renames `staging` to its release id, returning the staged release.
fn publish(
    root: &AppRoot,
    staging: &Path,
    now: SystemTime,
    revision: String,
) -> Result<StagedRelease, ReleaseError> {
    let base = release_id(now, &revision);
    let mut n = 1;
    loop {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = root.release_dir(&id);
        // Deploys of one app are serialised by the caller, so nothing can
        // take the name between this check and the rename. The check
        // matters: rename(2) would silently replace an empty directory.
        match fs::symlink_metadata(&dir) {
            Ok(_) => {
                n += 1;
                continue;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(ReleaseError::io("inspecting", &dir, root.path(), err)),
        }
        fs::rename(staging, &dir).map_err(|e| {
            ReleaseError::io(
                format!("renaming {} to", staging.display()),
                &dir,
                root.path(),
                e,
            )
        })?;
        let releases = root.releases_dir();
        fsync_dir(&releases)
            .map_err(|e| ReleaseError::io("syncing directory", &releases, root.path(), e))?;
        tracing::info!(release = %id, revision = %revision, "staged release");
        return Ok(StagedRelease { id, dir, revision });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::process::Command;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW_SECS: u64 = 1_795_400_100;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    fn app() -> (tempfile::TempDir, AppRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = AppRoot::new(dir.path().join("app"));
        (dir, root)
    }

    fn release_dir_names(root: &AppRoot) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.releases_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn source_tree() -> tempfile::TempDir {
        let src = tempfile::tempdir().unwrap();
        write(&src.path().join("server.sh"), "#!/bin/sh\necho hi\n");
        fs::set_permissions(
            src.path().join("server.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        write(&src.path().join("public/index.html"), "<h1>hi</h1>");
        write(&src.path().join(".git/config"), "[core]\n");
        symlink("public/index.html", src.path().join("index.html")).unwrap();
        src
    }

    #[test]
    fn staging_a_dir_copies_it_under_its_id() {
        let (_tmp, root) = app();
        let src = source_tree();
        let staged = stage(&root, &Source::Dir(src.path().into()), now()).unwrap();

        assert_eq!(staged.revision.len(), 7);
        assert_eq!(staged.id, format!("20261123T021500Z-{}", staged.revision));
        assert_eq!(staged.dir, root.release_dir(&staged.id));
        let mode = fs::metadata(staged.dir.join("server.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_link(staged.dir.join("index.html")).unwrap(),
            Path::new("public/index.html")
        );
        assert!(!staged.dir.join(".git").exists());
        assert_eq!(release_dir_names(&root), [staged.id.as_str()]);
        assert!(
            !root.is_complete(&staged.id),
            "staging does not mark complete"
        );
    }

    #[test]
    fn same_content_same_revision_and_a_clashing_id_gets_a_suffix() {
        let (_tmp, root) = app();
        let src = source_tree();
        let source = Source::Dir(src.path().into());
        let first = stage(&root, &source, now()).unwrap();
        let second = stage(&root, &source, now()).unwrap();
        let third = stage(&root, &source, now()).unwrap();
        assert_eq!(second.revision, first.revision);
        assert_eq!(second.id, format!("{}-2", first.id));
        assert_eq!(third.id, format!("{}-3", first.id));

        fs::write(src.path().join("public/index.html"), "<h1>changed</h1>").unwrap();
        let changed = stage(&root, &source, now()).unwrap();
        assert_ne!(changed.revision, first.revision);
    }

    #[test]
    fn a_missing_source_dir_is_reported_and_leaves_nothing() {
        let (tmp, root) = app();
        let missing = tmp.path().join("no-such-dir");
        let err = stage(&root, &Source::Dir(missing.clone()), now()).unwrap_err();
        assert!(matches!(err, ReleaseError::SourceMissing { .. }), "{err}");
        assert!(err.to_string().contains(&missing.display().to_string()));
        assert!(release_dir_names(&root).is_empty());
    }

    #[test]
    fn an_app_root_inside_the_source_is_not_copied_into_itself() {
        let src = source_tree();
        let root = AppRoot::new(src.path().join(".baton"));
        let first = stage(&root, &Source::Dir(src.path().into()), now()).unwrap();
        assert!(!first.dir.join(".baton").exists());
        let second = stage(&root, &Source::Dir(src.path().into()), now()).unwrap();
        assert_eq!(second.revision, first.revision);
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// A repository whose `main` has app.txt = "v2", tag `v1` and commit
    /// `first` have "v1", and branch `feature` has "feature".
    fn repo() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "--quiet", "--initial-branch=main"]);
        fs::write(repo.join("app.txt"), "v1").unwrap();
        git(repo, &["add", "."]);
        git(repo, &["commit", "--quiet", "-m", "one"]);
        git(repo, &["tag", "v1"]);
        let first = git(repo, &["rev-parse", "HEAD"]);
        git(repo, &["checkout", "--quiet", "-b", "feature"]);
        fs::write(repo.join("app.txt"), "feature").unwrap();
        git(repo, &["commit", "--quiet", "-am", "feature"]);
        git(repo, &["checkout", "--quiet", "main"]);
        fs::write(repo.join("app.txt"), "v2").unwrap();
        git(repo, &["commit", "--quiet", "-am", "two"]);
        (dir, first)
    }

    fn git_source(repo: &Path, reference: &str) -> Source {
        Source::Git {
            repo: repo.display().to_string(),
            reference: reference.to_owned(),
        }
    }

    #[test]
    fn staging_from_git_works_with_branches_tags_and_commits() {
        let (repo, first) = repo();
        let (_tmp, root) = app();
        let cases = [
            ("main", "v2"),
            ("feature", "feature"),
            ("v1", "v1"),
            (first.as_str(), "v1"),
            (&first[..7], "v1"),
        ];
        for (reference, expected) in cases {
            let staged = stage(&root, &git_source(repo.path(), reference), now()).unwrap();
            let content = fs::read_to_string(staged.dir.join("app.txt")).unwrap();
            assert_eq!(content, expected, "ref {reference}");
            assert!(!staged.dir.join(".git").exists());
            assert_eq!(staged.revision.len(), 7);
            assert!(staged.id.contains(&staged.revision));
        }
        let by_tag = stage(&root, &git_source(repo.path(), "v1"), now()).unwrap();
        assert_eq!(by_tag.revision, first[..7]);
    }

    #[test]
    fn an_unknown_ref_is_reported_and_leaves_nothing() {
        let (repo, _) = repo();
        let (_tmp, root) = app();
        let err = stage(&root, &git_source(repo.path(), "no-such-branch"), now()).unwrap_err();
        assert!(matches!(err, ReleaseError::UnknownRef { .. }), "{err}");
        assert!(err.to_string().contains("no-such-branch"));
        assert!(release_dir_names(&root).is_empty());
    }

    #[test]
    fn a_bad_repository_is_reported_with_gits_message() {
        let (tmp, root) = app();
        let missing = tmp.path().join("not-a-repo");
        let err = stage(&root, &git_source(&missing, "main"), now()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ReleaseError::Git { .. }), "{text}");
        assert!(text.contains("git clone"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        assert!(release_dir_names(&root).is_empty());
    }

    #[test]
    fn a_full_disk_is_reported_and_the_staging_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mount_point = tmp.path().join("app");
        fs::create_dir(&mount_point).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&mount_point)
            .output();
        if !mounted.is_ok_and(|o| o.status.success()) {
            println!("skipped: mounting a tmpfs needs root");
            return;
        }
        let src = tempfile::tempdir().unwrap();
        write(&src.path().join("small.txt"), "fits");
        fs::write(src.path().join("big.bin"), vec![7u8; 2 * 1024 * 1024]).unwrap();
        let root = AppRoot::new(&mount_point);

        let result = stage(&root, &Source::Dir(src.path().into()), now());
        let leftovers = release_dir_names(&root);
        let unmounted = Command::new("umount").arg(&mount_point).status();

        let err = result.unwrap_err();
        let text = err.to_string();
        assert!(err.is_no_space(), "{text}");
        assert!(text.contains("no space left"), "{text}");
        assert!(text.contains("big.bin"), "{text}");
        assert!(
            text.contains(&format!("free space under {}", mount_point.display())),
            "{text}"
        );
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
        assert!(unmounted.unwrap().success());
    }
}
