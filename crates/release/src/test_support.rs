//! Fixtures the unit tests of several files share.

use std::fs;
use std::path::Path;

use crate::{AppRoot, ReleaseMeta};

/// Release metadata for `id`, staged at `created_at_ms`.
pub(crate) fn meta(id: &str, created_at_ms: u64) -> ReleaseMeta {
    ReleaseMeta {
        id: id.to_owned(),
        created_at_ms,
        source: "dir /src".to_owned(),
        revision: "0000000".to_owned(),
    }
}

/// A complete release `id` holding one file, `app.txt`.
pub(crate) fn complete_release(root: &AppRoot, id: &str, created_at_ms: u64) {
    let dir = root.release_dir(id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("app.txt"), id).unwrap();
    root.mark_complete(&meta(id, created_at_ms)).unwrap();
}

/// Writes `contents` to `path`, creating its parent directories.
pub(crate) fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}
