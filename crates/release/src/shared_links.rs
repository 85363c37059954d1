//! Shared paths: state that outlives releases (uploads, logs, sqlite files)
//! lives in `<root>/shared` and every release links to it.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::disk::remove_path;
use crate::release_path::check_inside;
use crate::{AppRoot, ReleaseError};

/// Links each path of `shared` in `release_dir` to `<root>/shared/<path>`.
///
/// When `shared/<path>` does not exist yet, the release's own copy is moved
/// there (so the first deploy seeds it, e.g. with a default config), or an
/// empty directory is created when the release has none. Then the release's
/// `<path>`, if any, is replaced by a symlink to the absolute shared path;
/// missing parent directories are created in the release. Every path is
/// checked before anything changes.
pub fn link_shared(
    root: &AppRoot,
    release_dir: &Path,
    shared: &[PathBuf],
) -> Result<(), ReleaseError> {
    for path in shared {
        check_inside("shared", path)?;
    }
    let io_err = |action: &str, path: &Path, err: io::Error| {
        ReleaseError::io(action, path, root.path(), err)
    };
    // Absolute, because the link is read from inside the release, and the
    // release may be reached through `current` or under another name.
    let shared_dir = std::path::absolute(root.shared_dir())
        .map_err(|e| io_err("resolving", &root.shared_dir(), e))?;
    fs::create_dir_all(&shared_dir).map_err(|e| io_err("creating directory", &shared_dir, e))?;

    for path in shared {
        let target = shared_dir.join(path);
        let in_release = release_dir.join(path);
        let release_copy = match fs::symlink_metadata(&in_release) {
            Ok(meta) => Some(meta),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(io_err("inspecting", &in_release, err)),
        };
        match fs::symlink_metadata(&target) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| io_err("creating directory", parent, e))?;
                }
                // A symlink in the release is not content worth keeping: it
                // is usually a link to where shared state lived before.
                if release_copy.as_ref().is_some_and(|m| !m.is_symlink()) {
                    fs::rename(&in_release, &target).map_err(|e| {
                        io_err(&format!("moving {} to", in_release.display()), &target, e)
                    })?;
                    tracing::info!(path = %target.display(), "seeded shared path from the release");
                } else {
                    fs::create_dir(&target)
                        .map_err(|e| io_err("creating directory", &target, e))?;
                }
            }
            Err(err) => return Err(io_err("inspecting", &target, err)),
        }
        replace_with_link(&in_release, &target, root)?;
    }
    Ok(())
}

/// Makes `link` a symlink to `target`, whatever was there before.
fn replace_with_link(link: &Path, target: &Path, root: &AppRoot) -> Result<(), ReleaseError> {
    let io_err = |action: &str, path: &Path, err: io::Error| {
        ReleaseError::io(action, path, root.path(), err)
    };
    match fs::symlink_metadata(link) {
        Ok(meta) => {
            if meta.is_symlink() && fs::read_link(link).is_ok_and(|t| t == target) {
                return Ok(());
            }
            remove_path(link).map_err(|e| io_err("removing", link, e))?;
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = link.parent() {
                fs::create_dir_all(parent).map_err(|e| io_err("creating directory", parent, e))?;
            }
        }
        Err(err) => return Err(io_err("inspecting", link, err)),
    }
    symlink(target, link).map_err(|e| io_err("creating link", link, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write;

    fn setup() -> (tempfile::TempDir, AppRoot, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = AppRoot::new(tmp.path().join("app"));
        root.prepare().unwrap();
        let release = root.release_dir("r1");
        fs::create_dir_all(&release).unwrap();
        (tmp, root, release)
    }

    #[test]
    fn the_first_deploy_seeds_shared_from_the_release() {
        let (_tmp, root, release) = setup();
        write(&release.join("storage/seed.txt"), "seed");
        write(&release.join("config/settings.yml"), "a: 1");

        let shared = [
            PathBuf::from("storage"),
            PathBuf::from("config/settings.yml"),
        ];
        link_shared(&root, &release, &shared).unwrap();

        let storage = root.shared_dir().join("storage");
        assert_eq!(
            fs::read_to_string(storage.join("seed.txt")).unwrap(),
            "seed"
        );
        assert_eq!(fs::read_link(release.join("storage")).unwrap(), storage);
        assert!(
            fs::read_link(release.join("storage"))
                .unwrap()
                .is_absolute()
        );
        let settings = root.shared_dir().join("config/settings.yml");
        assert_eq!(fs::read_to_string(&settings).unwrap(), "a: 1");
        assert_eq!(
            fs::read_link(release.join("config/settings.yml")).unwrap(),
            settings
        );
        assert_eq!(
            fs::read_to_string(release.join("storage/seed.txt")).unwrap(),
            "seed"
        );
    }

    #[test]
    fn a_path_nobody_has_becomes_an_empty_shared_dir() {
        let (_tmp, root, release) = setup();
        link_shared(&root, &release, &[PathBuf::from("public/uploads")]).unwrap();
        let uploads = root.shared_dir().join("public/uploads");
        assert!(uploads.is_dir());
        assert_eq!(fs::read_dir(&uploads).unwrap().count(), 0);
        assert_eq!(
            fs::read_link(release.join("public/uploads")).unwrap(),
            uploads
        );
    }

    #[test]
    fn an_existing_shared_path_replaces_the_releases_copy() {
        let (_tmp, root, release) = setup();
        write(&root.shared_dir().join("storage/live.db"), "live");
        write(&release.join("storage/dev.db"), "dev");
        write(&release.join(".env"), "FROM_RELEASE=1");
        write(&root.shared_dir().join(".env"), "FROM_SHARED=1");

        let shared = [PathBuf::from("storage"), PathBuf::from(".env")];
        link_shared(&root, &release, &shared).unwrap();
        link_shared(&root, &release, &shared).unwrap();

        assert_eq!(
            fs::read_to_string(release.join("storage/live.db")).unwrap(),
            "live"
        );
        assert!(!release.join("storage/dev.db").exists());
        assert!(!root.shared_dir().join("storage/dev.db").exists());
        assert_eq!(
            fs::read_to_string(release.join(".env")).unwrap(),
            "FROM_SHARED=1"
        );
    }

    #[test]
    fn paths_leaving_the_release_are_refused_before_anything_changes() {
        let (_tmp, root, release) = setup();
        write(&release.join("storage/a"), "a");
        let shared = [PathBuf::from("storage"), PathBuf::from("../escape")];
        let err = link_shared(&root, &release, &shared).unwrap_err();
        assert!(matches!(err, ReleaseError::InvalidPath { .. }), "{err}");
        assert!(release.join("storage").is_dir());
        assert!(!root.shared_dir().join("storage").exists());
    }
}
