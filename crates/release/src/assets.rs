//! Fingerprinted assets carried over from older releases.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use walkdir::WalkDir;

use crate::release_id::check_id;
use crate::release_path::check_inside;
use crate::{AppRoot, ReleaseError};

/// Links into the new release's `asset_dir` every asset of older releases it
/// lacks, so a page rendered by an older version (still open in a browser, or
/// served by old processes while traffic moves) can load its assets after
/// the switch.
///
/// `previous` lists release ids newest first; a path found in several of
/// them is taken from the newest. Only a release's own assets are carried,
/// the ones it shipped (listed in its `.baton-assets` manifest, written
/// here before linking), never those it carried itself: an asset stays
/// reachable while a release that shipped it is among `previous`, and the
/// asset dirs do not grow without end. Files are hard-linked (copied when
/// the releases are on different file systems), symlinks recreated; nothing
/// the new release has is overwritten. The new release's `asset_dir` is
/// created when it has none. Returns how many files were linked.
pub fn link_assets(
    root: &AppRoot,
    release_dir: &Path,
    asset_dir: &Path,
    previous: &[String],
) -> Result<usize, ReleaseError> {
    check_inside("asset_dir", asset_dir)?;
    for id in previous {
        check_id(id)?;
    }
    let io_err = |action: &str, path: &Path, err: io::Error| {
        ReleaseError::io(action, path, root.path(), err)
    };
    let new_assets = release_dir.join(asset_dir);
    fs::create_dir_all(&new_assets).map_err(|e| io_err("creating directory", &new_assets, e))?;
    let own = own_assets(&new_assets).map_err(|e| io_err("reading", &new_assets, e))?;
    let manifest = release_dir.join(MANIFEST);
    let listing: String = own.iter().map(|path| format!("{path}\n")).collect();
    fs::write(&manifest, listing).map_err(|e| io_err("writing", &manifest, e))?;

    let mut linked = 0;
    for id in previous {
        let old_release = root.release_dir(id);
        if old_release == release_dir {
            continue;
        }
        let old_assets = old_release.join(asset_dir);
        if !fs::symlink_metadata(&old_assets).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // A release from before manifests existed: all its files count.
        let shipped: Option<HashSet<String>> = fs::read_to_string(old_release.join(MANIFEST))
            .ok()
            .map(|text| text.lines().map(str::to_string).collect());
        let mut walk = WalkDir::new(&old_assets)
            .min_depth(1)
            .follow_links(false)
            .into_iter();
        while let Some(entry) = walk.next() {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&old_assets).to_path_buf();
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("file system loop"));
                io_err("reading", &path, source)
            })?;
            let from = entry.path();
            let rel = from.strip_prefix(&old_assets).unwrap_or(from);
            let to = new_assets.join(rel);
            let existing = match fs::symlink_metadata(&to) {
                Ok(meta) => Some(meta),
                Err(err) if err.kind() == io::ErrorKind::NotFound => None,
                Err(err) => return Err(io_err("inspecting", &to, err)),
            };
            if entry.file_type().is_dir() {
                match existing {
                    Some(meta) if meta.is_dir() => {}
                    // The new release has a file where the old one had a
                    // directory: its layout wins, the old subtree is dropped.
                    Some(_) => walk.skip_current_dir(),
                    None => {
                        fs::create_dir(&to).map_err(|e| io_err("creating directory", &to, e))?
                    }
                }
                continue;
            }
            if existing.is_some() {
                continue;
            }
            let carried = shipped
                .as_ref()
                .is_some_and(|shipped| !shipped.contains(&rel.to_string_lossy().into_owned()));
            if carried {
                continue;
            }
            if entry.file_type().is_symlink() {
                let target = fs::read_link(from).map_err(|e| io_err("reading link", from, e))?;
                symlink(&target, &to).map_err(|e| io_err("creating link", &to, e))?;
            } else if entry.file_type().is_file() {
                link_or_copy(from, &to)
                    .map_err(|e| io_err(&format!("linking {} to", from.display()), &to, e))?;
            } else {
                continue;
            }
            linked += 1;
        }
    }
    if linked > 0 {
        tracing::info!(release = %release_dir.display(), linked, "linked assets of older releases");
    }
    Ok(linked)
}

/// Where a release lists the asset files it shipped itself.
const MANIFEST: &str = ".baton-assets";

/// Relative paths of the files and links under `assets`, sorted.
fn own_assets(assets: &Path) -> io::Result<Vec<String>> {
    let mut own = Vec::new();
    for entry in WalkDir::new(assets).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| {
            e.into_io_error()
                .unwrap_or_else(|| io::Error::other("file system loop"))
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        if let Ok(rel) = entry.path().strip_prefix(assets) {
            own.push(rel.to_string_lossy().into_owned());
        }
    }
    own.sort();
    Ok(own)
}

/// A hard link shares the file without using space; a copy is the fallback
/// when the two releases sit on different file systems.
fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Err(err) if err.kind() == io::ErrorKind::CrossesDevices => fs::copy(from, to).map(drop),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write;
    use std::os::unix::fs::MetadataExt;

    fn setup() -> (tempfile::TempDir, AppRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let root = AppRoot::new(tmp.path().join("app"));
        root.prepare().unwrap();
        (tmp, root)
    }

    #[test]
    fn assets_only_older_releases_have_are_linked_in() {
        let (_tmp, root) = setup();
        let old = root.release_dir("r1");
        let new = root.release_dir("r2");
        write(&old.join("public/assets/app-111.js"), "old js");
        write(&old.join("public/assets/img/logo-aaa.png"), "old logo");
        write(&old.join("public/assets/shared.css"), "old css");
        write(&new.join("public/assets/app-222.js"), "new js");
        write(&new.join("public/assets/shared.css"), "new css");

        let linked = link_assets(&root, &new, Path::new("public/assets"), &["r1".into()]).unwrap();

        assert_eq!(linked, 2);
        let assets = new.join("public/assets");
        assert_eq!(
            fs::read_to_string(assets.join("app-111.js")).unwrap(),
            "old js"
        );
        assert_eq!(
            fs::read_to_string(assets.join("img/logo-aaa.png")).unwrap(),
            "old logo"
        );
        assert_eq!(
            fs::read_to_string(assets.join("app-222.js")).unwrap(),
            "new js"
        );
        assert_eq!(
            fs::read_to_string(assets.join("shared.css")).unwrap(),
            "new css"
        );
        let old_inode = fs::metadata(old.join("public/assets/app-111.js"))
            .unwrap()
            .ino();
        let new_inode = fs::metadata(assets.join("app-111.js")).unwrap().ino();
        assert_eq!(old_inode, new_inode, "linked, not copied");
    }

    #[test]
    fn only_shipped_assets_are_carried_so_the_dirs_do_not_grow_forever() {
        let (_tmp, root) = setup();
        let dir = Path::new("assets");
        write(&root.release_dir("r1").join("assets/old-1.js"), "r1");
        fs::create_dir_all(root.release_dir("r1").join("assets")).unwrap();
        link_assets(&root, &root.release_dir("r1"), dir, &[]).unwrap();
        write(&root.release_dir("r2").join("assets/new-2.js"), "r2");
        assert_eq!(
            link_assets(&root, &root.release_dir("r2"), dir, &["r1".into()]).unwrap(),
            1,
            "r2 carries r1's file"
        );
        write(&root.release_dir("r3").join("assets/new-3.js"), "r3");
        let linked = link_assets(&root, &root.release_dir("r3"), dir, &["r2".into()]).unwrap();
        assert_eq!(linked, 1, "only new-2.js: r2 did not ship old-1.js");
        assert!(!root.release_dir("r3").join("assets/old-1.js").exists());
        let manifest = fs::read_to_string(root.release_dir("r3").join(MANIFEST)).unwrap();
        assert_eq!(manifest, "new-3.js\n");
    }

    #[test]
    fn the_newest_older_release_wins_and_assets_travel_across_releases() {
        let (_tmp, root) = setup();
        write(&root.release_dir("r1").join("assets/a.js"), "from r1");
        write(&root.release_dir("r1").join("assets/only-r1.js"), "r1");
        write(&root.release_dir("r2").join("assets/a.js"), "from r2");
        let new = root.release_dir("r3");
        fs::create_dir_all(&new).unwrap();

        let previous = ["r2".to_owned(), "r1".to_owned(), "gone".to_owned()];
        let linked = link_assets(&root, &new, Path::new("assets"), &previous).unwrap();

        assert_eq!(linked, 2);
        assert_eq!(
            fs::read_to_string(new.join("assets/a.js")).unwrap(),
            "from r2"
        );
        assert_eq!(
            fs::read_to_string(new.join("assets/only-r1.js")).unwrap(),
            "r1"
        );
    }

    #[test]
    fn a_release_without_the_asset_dir_gets_one() {
        let (_tmp, root) = setup();
        let new = root.release_dir("r1");
        fs::create_dir_all(&new).unwrap();
        assert_eq!(
            link_assets(&root, &new, Path::new("public/assets"), &[]).unwrap(),
            0
        );
        assert!(new.join("public/assets").is_dir());
    }

    #[test]
    fn a_file_where_an_old_release_had_a_directory_is_kept() {
        let (_tmp, root) = setup();
        write(&root.release_dir("r1").join("assets/fonts/a.woff"), "font");
        let new = root.release_dir("r2");
        write(&new.join("assets/fonts"), "now a file");
        let linked = link_assets(&root, &new, Path::new("assets"), &["r1".into()]).unwrap();
        assert_eq!(linked, 0);
        assert_eq!(
            fs::read_to_string(new.join("assets/fonts")).unwrap(),
            "now a file"
        );
    }

    #[test]
    fn bad_asset_dirs_and_ids_are_refused() {
        let (_tmp, root) = setup();
        let new = root.release_dir("r1");
        let err = link_assets(&root, &new, Path::new("/etc"), &[]).unwrap_err();
        assert!(matches!(err, ReleaseError::InvalidPath { .. }), "{err}");
        let err = link_assets(&root, &new, Path::new("assets"), &["../x".into()]).unwrap_err();
        assert!(matches!(err, ReleaseError::InvalidId { .. }), "{err}");
    }
}
