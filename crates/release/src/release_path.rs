//! Paths inside a release, as configured for shared paths and assets.

use std::path::{Component, Path};

use crate::ReleaseError;

/// Refuses a configured path that would reach outside the release (or the
/// shared directory) once joined to it: joining an absolute path replaces the
/// base, and `..` climbs out of it.
pub(crate) fn check_inside(what: &'static str, path: &Path) -> Result<(), ReleaseError> {
    let mut normal = 0;
    for component in path.components() {
        match component {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(invalid(what, path));
            }
        }
    }
    if normal == 0 {
        // "" or "." would make the whole release the shared path.
        return Err(invalid(what, path));
    }
    Ok(())
}

fn invalid(what: &'static str, path: &Path) -> ReleaseError {
    ReleaseError::InvalidPath {
        what,
        path: path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_inside_are_accepted() {
        for ok in ["storage", "public/uploads", "./log", "a/./b"] {
            check_inside("shared", Path::new(ok)).unwrap();
        }
    }

    #[test]
    fn paths_that_leave_or_are_the_whole_release_are_refused() {
        for bad in ["", ".", "/etc", "../x", "a/../../b", "a/.."] {
            let err = check_inside("shared", Path::new(bad)).unwrap_err();
            assert!(err.to_string().contains("shared path"), "{err}");
        }
    }
}
