//! Finding the workspace's built binaries from inside a test.

use std::path::PathBuf;

/// The path of the built binary `name` (`baton`, `demo-app`): the
/// `BATON_BIN_DIR` directory if set, else the cargo target directory the
/// running test was built into.
pub fn binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("BATON_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    // Tests run from target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir.join(name)
}
