//! An app root: `releases/<id>/`, `shared/` and the `current` link.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::disk::{fsync_dir, remove_path, unique_suffix, write_atomic};
use crate::release_id::check_id;
use crate::{ReleaseError, ReleaseMeta};

/// The file whose presence makes a release complete.
const MARKER: &str = ".baton-release";
/// Names under `releases/` that stagings use while they copy or clone.
pub(crate) const STAGING_PREFIX: &str = ".staging-";
/// Names in the root that `current` switches use for the new link.
const CURRENT_TMP_PREFIX: &str = ".current-";

/// The directory one app's releases live in.
///
/// Layout: `<root>/releases/<id>/`, `<root>/shared/`, and
/// `<root>/current -> releases/<id>`. `current` is relative so the root can
/// be moved or bind-mounted elsewhere without breaking it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRoot {
    root: PathBuf,
}

impl AppRoot {
    /// An app root at `root`; nothing is created until [`AppRoot::prepare`].
    pub fn new(root: impl Into<PathBuf>) -> AppRoot {
        AppRoot { root: root.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/releases`.
    pub fn releases_dir(&self) -> PathBuf {
        self.root.join("releases")
    }

    /// `<root>/shared`.
    pub fn shared_dir(&self) -> PathBuf {
        self.root.join("shared")
    }

    /// `<root>/current`.
    pub fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    /// `<root>/releases/<id>`. The id is not checked here; every operation
    /// that acts on a release checks it.
    pub fn release_dir(&self, id: &str) -> PathBuf {
        self.releases_dir().join(id)
    }

    /// `<root>/shared/.env`, the app's environment.
    pub fn env_file(&self) -> PathBuf {
        self.shared_dir().join(".env")
    }

    /// Creates the root, `releases/` and `shared/` if they are missing.
    pub fn prepare(&self) -> Result<(), ReleaseError> {
        for dir in [self.root.clone(), self.releases_dir(), self.shared_dir()] {
            fs::create_dir_all(&dir)
                .map_err(|e| ReleaseError::io("creating directory", &dir, &self.root, e))?;
        }
        Ok(())
    }

    /// The id `current` points at; `None` when there is no `current` yet.
    pub fn current(&self) -> Result<Option<String>, ReleaseError> {
        let link = self.current_link();
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(ReleaseError::io("reading link", &link, &self.root, err)),
        };
        // Accept absolute targets too: other deploy tools (and people) write
        // `current -> /srv/app/releases/<id>`.
        let in_releases = target
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|name| name == "releases");
        let id = target.file_name().and_then(|name| name.to_str());
        match id {
            Some(id) if in_releases && crate::is_valid_release_id(id) => Ok(Some(id.to_owned())),
            _ => Err(ReleaseError::BadCurrentLink { link, target }),
        }
    }

    /// Points `current` at release `id` in one atomic step.
    ///
    /// A fresh symlink (relative target `releases/<id>`) is made at a
    /// temporary name in the root, renamed over `current` with rename(2), and
    /// the root directory is fsynced. A reader therefore sees the old or the
    /// new link at every instant, never none: unlink-then-link would leave a
    /// window with no `current`. Refuses a release that is missing or not
    /// complete.
    pub fn switch_current(&self, id: &str) -> Result<(), ReleaseError> {
        check_id(id)?;
        let dir = self.release_dir(id);
        if !dir.is_dir() {
            return Err(ReleaseError::NoSuchRelease {
                id: id.to_owned(),
                path: dir,
            });
        }
        if !self.is_complete(id) {
            return Err(ReleaseError::Incomplete {
                id: id.to_owned(),
                path: dir,
            });
        }
        let tmp = self
            .root
            .join(format!("{CURRENT_TMP_PREFIX}{}", unique_suffix()));
        let target = Path::new("releases").join(id);
        symlink(&target, &tmp)
            .map_err(|e| ReleaseError::io("creating link", &tmp, &self.root, e))?;
        let link = self.current_link();
        if let Err(err) = fs::rename(&tmp, &link) {
            let _ = fs::remove_file(&tmp);
            return Err(ReleaseError::io(
                format!("switching to release {id}: renaming {} over", tmp.display()),
                &link,
                &self.root,
                err,
            ));
        }
        fsync_dir(&self.root)
            .map_err(|e| ReleaseError::io("syncing directory", &self.root, &self.root, e))?;
        tracing::info!(root = %self.root.display(), release = id, "switched current");
        Ok(())
    }

    /// The complete releases, oldest first (by the time recorded when they
    /// were marked complete, then by id).
    pub fn releases(&self) -> Result<Vec<String>, ReleaseError> {
        let mut found = Vec::new();
        for (id, is_dir) in self.release_entries()? {
            if id.starts_with('.') || !is_dir || !crate::is_valid_release_id(&id) {
                continue;
            }
            if self.is_complete(&id) {
                let meta = self.read_meta(&id)?;
                found.push((meta.created_at_ms, id));
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// Whether release `id` exists and was marked complete.
    pub fn is_complete(&self, id: &str) -> bool {
        crate::is_valid_release_id(id) && self.marker(id).is_file()
    }

    /// Marks release `meta.id` complete by writing its marker file.
    ///
    /// The file system is synced first, so that a release that looks
    /// complete after a crash also has all of its files (including those
    /// build steps wrote). The marker itself is written to a temporary file,
    /// fsynced and renamed into place.
    pub fn mark_complete(&self, meta: &ReleaseMeta) -> Result<(), ReleaseError> {
        check_id(&meta.id)?;
        let dir = self.release_dir(&meta.id);
        if !dir.is_dir() {
            return Err(ReleaseError::NoSuchRelease {
                id: meta.id.clone(),
                path: dir,
            });
        }
        sync_filesystem(&dir).map_err(|e| ReleaseError::io("syncing", &dir, &self.root, e))?;
        let marker = self.marker(&meta.id);
        let json = serde_json::to_vec_pretty(meta).map_err(|e| ReleaseError::BadMarker {
            path: marker.clone(),
            source: e,
        })?;
        write_atomic(&marker, &json)
            .map_err(|e| ReleaseError::io("writing", &marker, &self.root, e))
    }

    /// What release `id`'s marker records.
    pub fn read_meta(&self, id: &str) -> Result<ReleaseMeta, ReleaseError> {
        check_id(id)?;
        let marker = self.marker(id);
        let bytes = match fs::read(&marker) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let dir = self.release_dir(id);
                return Err(if dir.is_dir() {
                    ReleaseError::Incomplete {
                        id: id.to_owned(),
                        path: dir,
                    }
                } else {
                    ReleaseError::NoSuchRelease {
                        id: id.to_owned(),
                        path: dir,
                    }
                });
            }
            Err(err) => return Err(ReleaseError::io("reading", &marker, &self.root, err)),
        };
        serde_json::from_slice(&bytes).map_err(|e| ReleaseError::BadMarker {
            path: marker,
            source: e,
        })
    }

    /// Deletes release `id`. Refuses the one `current` points at; a release
    /// that is already gone is fine.
    pub fn remove_release(&self, id: &str) -> Result<(), ReleaseError> {
        check_id(id)?;
        if self.current()?.as_deref() == Some(id) {
            return Err(ReleaseError::RemoveCurrent {
                id: id.to_owned(),
                link: self.current_link(),
            });
        }
        let dir = self.release_dir(id);
        // The marker goes first (and durably), so a crash halfway through the
        // removal leaves an incomplete release that `remove_incomplete`
        // finishes, never a "complete" one with files missing.
        let marker = self.marker(id);
        match fs::remove_file(&marker) {
            Ok(()) => fsync_dir(&dir)
                .map_err(|e| ReleaseError::io("syncing directory", &dir, &self.root, e))?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(ReleaseError::io("removing", &marker, &self.root, err)),
        }
        remove_path(&dir).map_err(|e| ReleaseError::io("removing release", &dir, &self.root, e))?;
        tracing::info!(root = %self.root.display(), release = id, "removed release");
        Ok(())
    }

    /// Removes what crashed stagings and switches left behind: directories
    /// under `releases/` without a marker, `.staging-*` entries, and
    /// temporary `current` links in the root. Returns the names removed
    /// under `releases/`.
    ///
    /// Call it only while no staging of this app runs (at daemon start, or
    /// holding the app's deploy lock): a staging in progress looks exactly
    /// like a crashed one.
    pub fn remove_incomplete(&self) -> Result<Vec<String>, ReleaseError> {
        let current = self.current()?;
        let mut removed = Vec::new();
        for (name, is_dir) in self.release_entries()? {
            let leftover = if name.starts_with(STAGING_PREFIX) {
                true
            } else {
                is_dir
                    && !name.starts_with('.')
                    && current.as_deref() != Some(name.as_str())
                    && !self.releases_dir().join(&name).join(MARKER).is_file()
            };
            if leftover {
                let path = self.releases_dir().join(&name);
                remove_path(&path)
                    .map_err(|e| ReleaseError::io("removing leftover", &path, &self.root, e))?;
                tracing::info!(path = %path.display(), "removed leftover of an unfinished staging");
                removed.push(name);
            }
        }
        self.remove_current_temporaries()?;
        Ok(removed)
    }

    fn remove_current_temporaries(&self) -> Result<(), ReleaseError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(ReleaseError::io("listing", &self.root, &self.root, err)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| ReleaseError::io("listing", &self.root, &self.root, e))?;
            let is_tmp_link = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(CURRENT_TMP_PREFIX))
                && entry.file_type().is_ok_and(|t| t.is_symlink());
            if is_tmp_link {
                let path = entry.path();
                fs::remove_file(&path)
                    .map_err(|e| ReleaseError::io("removing leftover", &path, &self.root, e))?;
            }
        }
        Ok(())
    }

    /// Names under `releases/` (UTF-8 ones only: no id is anything else) and
    /// whether each is a real directory. A missing `releases/` has none.
    fn release_entries(&self) -> Result<Vec<(String, bool)>, ReleaseError> {
        let dir = self.releases_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(ReleaseError::io("listing", &dir, &self.root, err)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ReleaseError::io("listing", &dir, &self.root, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_dir = entry
                .file_type()
                .map_err(|e| ReleaseError::io("inspecting", &entry.path(), &self.root, e))?
                .is_dir();
            names.push((name, is_dir));
        }
        Ok(names)
    }

    fn marker(&self, id: &str) -> PathBuf {
        self.release_dir(id).join(MARKER)
    }
}

/// Flushes every file of the file system holding `dir`: a release is too
/// many files (written by copies and build tools alike) to fsync one by one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let handle = fs::File::open(dir)?;
    nix::unistd::syncfs(&handle).map_err(io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sync_filesystem(_dir: &Path) -> io::Result<()> {
    nix::unistd::sync();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{complete_release, meta};

    fn root() -> (tempfile::TempDir, AppRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = AppRoot::new(dir.path().join("app"));
        root.prepare().unwrap();
        (dir, root)
    }

    fn root_entries(root: &AppRoot) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn layout_paths() {
        let root = AppRoot::new("/srv/shop");
        assert_eq!(root.path(), Path::new("/srv/shop"));
        assert_eq!(root.releases_dir(), Path::new("/srv/shop/releases"));
        assert_eq!(root.shared_dir(), Path::new("/srv/shop/shared"));
        assert_eq!(root.current_link(), Path::new("/srv/shop/current"));
        assert_eq!(root.release_dir("r1"), Path::new("/srv/shop/releases/r1"));
        assert_eq!(root.env_file(), Path::new("/srv/shop/shared/.env"));
    }

    #[test]
    fn prepare_creates_the_layout_and_is_idempotent() {
        let (_tmp, root) = root();
        root.prepare().unwrap();
        assert!(root.releases_dir().is_dir());
        assert!(root.shared_dir().is_dir());
        assert_eq!(root.current().unwrap(), None);
        assert!(root.releases().unwrap().is_empty());
    }

    #[test]
    fn switch_current_makes_a_relative_link_and_replaces_it() {
        let (_tmp, root) = root();
        complete_release(&root, "r1", 1);
        complete_release(&root, "r2", 2);

        root.switch_current("r1").unwrap();
        assert_eq!(
            fs::read_link(root.current_link()).unwrap(),
            Path::new("releases/r1")
        );
        assert_eq!(root.current().unwrap().as_deref(), Some("r1"));
        assert!(root.current_link().join("app.txt").is_file());

        root.switch_current("r2").unwrap();
        assert_eq!(
            fs::read_link(root.current_link()).unwrap(),
            Path::new("releases/r2")
        );
        assert_eq!(root.current().unwrap().as_deref(), Some("r2"));
        assert_eq!(root_entries(&root), ["current", "releases", "shared"]);
    }

    #[test]
    fn switch_current_is_a_rename_over_the_old_link() {
        // Unlink-then-link leaves an instant with no `current`; a reader
        // polling the link during many switches would catch it.
        let (_tmp, root) = root();
        complete_release(&root, "r1", 1);
        complete_release(&root, "r2", 2);
        root.switch_current("r1").unwrap();

        let link = root.current_link();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            let link = link.clone();
            std::thread::spawn(move || {
                let mut missing = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if fs::read_link(&link).is_err() {
                        missing += 1;
                    }
                }
                missing
            })
        };
        for i in 0..200 {
            root.switch_current(if i % 2 == 0 { "r2" } else { "r1" })
                .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            reader.join().unwrap(),
            0,
            "current vanished during a switch"
        );
        assert_eq!(root_entries(&root), ["current", "releases", "shared"]);
    }

    #[test]
    fn switch_current_refuses_missing_incomplete_and_invalid_releases() {
        let (_tmp, root) = root();
        complete_release(&root, "r1", 1);
        root.switch_current("r1").unwrap();
        fs::create_dir(root.release_dir("half")).unwrap();

        let missing = root.switch_current("nope").unwrap_err();
        assert!(
            matches!(missing, ReleaseError::NoSuchRelease { .. }),
            "{missing}"
        );
        assert!(missing.to_string().contains("releases/nope"));
        let half = root.switch_current("half").unwrap_err();
        assert!(matches!(half, ReleaseError::Incomplete { .. }), "{half}");
        let bad = root.switch_current("../r1").unwrap_err();
        assert!(matches!(bad, ReleaseError::InvalidId { .. }), "{bad}");

        assert_eq!(root.current().unwrap().as_deref(), Some("r1"));
        assert_eq!(root_entries(&root), ["current", "releases", "shared"]);
    }

    #[test]
    fn current_accepts_absolute_links_and_refuses_foreign_ones() {
        let (tmp, root) = root();
        complete_release(&root, "r1", 1);
        symlink(root.release_dir("r1"), root.current_link()).unwrap();
        assert_eq!(root.current().unwrap().as_deref(), Some("r1"));

        fs::remove_file(root.current_link()).unwrap();
        symlink(tmp.path(), root.current_link()).unwrap();
        let err = root.current().unwrap_err();
        assert!(matches!(err, ReleaseError::BadCurrentLink { .. }), "{err}");
    }

    #[test]
    fn releases_lists_complete_ones_oldest_first() {
        let (_tmp, root) = root();
        complete_release(&root, "20261122T021500Z-bbbbbbb", 20);
        complete_release(&root, "20261122T021500Z-aaaaaaa", 30);
        complete_release(&root, "20261101T000000Z-ccccccc", 10);
        fs::create_dir(root.release_dir("20261123T000000Z-unfinished")).unwrap();
        fs::create_dir(root.releases_dir().join(".staging-1")).unwrap();
        fs::write(root.releases_dir().join("stray-file"), "x").unwrap();

        assert_eq!(
            root.releases().unwrap(),
            [
                "20261101T000000Z-ccccccc",
                "20261122T021500Z-bbbbbbb",
                "20261122T021500Z-aaaaaaa"
            ]
        );
        assert!(root.is_complete("20261101T000000Z-ccccccc"));
        assert!(!root.is_complete("20261123T000000Z-unfinished"));
        assert!(!root.is_complete("missing"));
    }

    #[test]
    fn marker_round_trips_and_leaves_no_temporary() {
        let (_tmp, root) = root();
        fs::create_dir(root.release_dir("r1")).unwrap();
        let written = meta("r1", 42);
        root.mark_complete(&written).unwrap();
        assert_eq!(root.read_meta("r1").unwrap(), written);
        let names: Vec<_> = fs::read_dir(root.release_dir("r1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".baton-release"]);
    }

    #[test]
    fn mark_complete_and_read_meta_explain_missing_releases() {
        let (_tmp, root) = root();
        let err = root.mark_complete(&meta("gone", 1)).unwrap_err();
        assert!(matches!(err, ReleaseError::NoSuchRelease { .. }), "{err}");
        fs::create_dir(root.release_dir("half")).unwrap();
        let err = root.read_meta("half").unwrap_err();
        assert!(matches!(err, ReleaseError::Incomplete { .. }), "{err}");
        fs::write(root.release_dir("half").join(MARKER), "{not json").unwrap();
        let err = root.read_meta("half").unwrap_err();
        assert!(matches!(err, ReleaseError::BadMarker { .. }), "{err}");
        assert!(err.to_string().contains(".baton-release"));
    }

    #[test]
    fn remove_release_refuses_current_and_tolerates_missing() {
        let (_tmp, root) = root();
        complete_release(&root, "r1", 1);
        complete_release(&root, "r2", 2);
        root.switch_current("r2").unwrap();

        let err = root.remove_release("r2").unwrap_err();
        assert!(matches!(err, ReleaseError::RemoveCurrent { .. }), "{err}");
        assert!(root.release_dir("r2").is_dir());

        root.remove_release("r1").unwrap();
        assert!(!root.release_dir("r1").exists());
        root.remove_release("r1").unwrap();
        assert_eq!(root.releases().unwrap(), ["r2"]);
    }

    #[test]
    fn remove_incomplete_clears_leftovers_but_keeps_complete_and_current() {
        let (_tmp, root) = root();
        complete_release(&root, "r1", 1);
        root.switch_current("r1").unwrap();
        fs::create_dir_all(root.releases_dir().join(".staging-77/sub")).unwrap();
        fs::create_dir_all(root.release_dir("crashed/node_modules")).unwrap();
        symlink("releases/r1", root.path().join(".current-1-2-3")).unwrap();

        let mut removed = root.remove_incomplete().unwrap();
        removed.sort();
        assert_eq!(removed, [".staging-77", "crashed"]);
        assert_eq!(root.releases().unwrap(), ["r1"]);
        assert_eq!(root_entries(&root), ["current", "releases", "shared"]);
        assert!(root.remove_incomplete().unwrap().is_empty());
    }
}
