//! Which files a lint run reads, in which order.

use std::path::PathBuf;

use crate::error::LintError;

/// The migration files `paths` name, in the order they run: a file as
/// given, a directory as its `*.sql` files sorted by name (the runner's
/// order), not descending into subdirectories.
pub fn migration_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LintError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| LintError::ReadDir {
                path: path.clone(),
                source,
            })?;
            let mut sql = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| LintError::ReadDir {
                    path: path.clone(),
                    source,
                })?;
                let file = entry.path();
                if file.is_file() && file.extension().is_some_and(|ext| ext == "sql") {
                    sql.push(file);
                }
            }
            sql.sort();
            files.extend(sql);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(LintError::NotFound { path: path.clone() });
        }
    }
    Ok(files)
}
