//! What `baton_migrations` records of each applied migration, and what
//! follows from comparing it with the files: which are pending, which were
//! changed after they ran, and what runs in a phase.

use serde::Serialize;

use crate::migration_file::MigrationFile;
use crate::phase::Phase;
use crate::run_error::RunError;

/// One row of `baton_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The file name.
    pub name: String,
    /// The file's SHA-256 (hex) when it ran.
    pub checksum: String,
    /// The phase it ran in (`expand` or `contract`).
    pub phase: String,
    /// When it finished, unix epoch milliseconds.
    pub applied_at_ms: i64,
    /// How long its successful try took, in milliseconds.
    pub duration_ms: i64,
}

/// Where one migration stands, for `baton migrate status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// The file name.
    pub name: String,
    /// Its phase: from the file, or as recorded when the file is gone.
    pub phase: String,
    /// `applied` or `pending`.
    pub state: &'static str,
    /// `ok`, `changed` (the file differs from what ran), `missing` (applied,
    /// but the file is gone) or `pending` (not run, nothing to compare).
    pub checksum: &'static str,
    /// When it finished, unix epoch milliseconds; `None` while pending.
    pub applied_at_ms: Option<i64>,
    /// How long it took, in milliseconds; `None` while pending.
    pub duration_ms: Option<i64>,
}

/// Each file and each applied migration whose file is gone, in name order.
pub fn statuses(files: &[MigrationFile], applied: &[AppliedMigration]) -> Vec<MigrationStatus> {
    let mut statuses: Vec<MigrationStatus> = files
        .iter()
        .map(
            |file| match applied.iter().find(|row| row.name == file.name) {
                Some(row) => MigrationStatus {
                    name: file.name.clone(),
                    phase: file.phase.name().to_owned(),
                    state: "applied",
                    checksum: if row.checksum == file.checksum {
                        "ok"
                    } else {
                        "changed"
                    },
                    applied_at_ms: Some(row.applied_at_ms),
                    duration_ms: Some(row.duration_ms),
                },
                None => MigrationStatus {
                    name: file.name.clone(),
                    phase: file.phase.name().to_owned(),
                    state: "pending",
                    checksum: "pending",
                    applied_at_ms: None,
                    duration_ms: None,
                },
            },
        )
        .collect();
    statuses.extend(
        applied
            .iter()
            .filter(|row| !files.iter().any(|file| file.name == row.name))
            .map(|row| MigrationStatus {
                name: row.name.clone(),
                phase: row.phase.clone(),
                state: "applied",
                checksum: "missing",
                applied_at_ms: Some(row.applied_at_ms),
                duration_ms: Some(row.duration_ms),
            }),
    );
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses
}

/// The migrations a run of `phase` applies, in name order.
///
/// Refused when an applied file has changed since it ran (whatever its
/// phase: the directory no longer says what the database holds), and, for
/// the contract phase, when an expand migration that comes before a
/// pending contract migration has not run (the contract may rely on it).
/// Pending migrations of the other phase are left for their phase.
pub fn pending<'a>(
    files: &'a [MigrationFile],
    applied: &[AppliedMigration],
    phase: Phase,
) -> Result<Vec<&'a MigrationFile>, RunError> {
    for file in files {
        if let Some(row) = applied.iter().find(|row| row.name == file.name)
            && row.checksum != file.checksum
        {
            return Err(RunError::ChecksumChanged {
                file: file.name.clone(),
                applied: short(&row.checksum),
                now: short(&file.checksum),
            });
        }
    }
    let unapplied: Vec<&MigrationFile> = files
        .iter()
        .filter(|file| !applied.iter().any(|row| row.name == file.name))
        .collect();
    if phase == Phase::Contract {
        let first_expand = unapplied.iter().find(|file| file.phase == Phase::Expand);
        let later_contract = first_expand.and_then(|expand| {
            unapplied
                .iter()
                .find(|file| file.phase == Phase::Contract && file.name > expand.name)
                .map(|contract| (expand, contract))
        });
        if let Some((expand, contract)) = later_contract {
            return Err(RunError::ContractBeforeExpand {
                contract: contract.name.clone(),
                expand: expand.name.clone(),
            });
        }
    }
    Ok(unapplied
        .into_iter()
        .filter(|file| file.phase == phase)
        .collect())
}

fn short(checksum: &str) -> String {
    checksum.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> MigrationFile {
        MigrationFile::from_text(name, text.to_owned()).unwrap()
    }

    fn applied(file: &MigrationFile) -> AppliedMigration {
        AppliedMigration {
            name: file.name.clone(),
            checksum: file.checksum.clone(),
            phase: file.phase.name().to_owned(),
            applied_at_ms: 1_700_000_000_000,
            duration_ms: 12,
        }
    }

    const CONTRACT: &str = "-- baton:phase contract\nALTER TABLE users DROP COLUMN fax;";

    fn names(files: &[&MigrationFile]) -> Vec<String> {
        files.iter().map(|file| file.name.clone()).collect()
    }

    #[test]
    fn a_phase_runs_its_own_pending_files_in_name_order() {
        let files = [
            file("001_a.sql", "SELECT 1;"),
            file("002_b.sql", CONTRACT),
            file("003_c.sql", "SELECT 3;"),
        ];
        let none = pending(&files, &[], Phase::Expand).unwrap();
        assert_eq!(names(&none), ["001_a.sql", "003_c.sql"]);
        let done = [applied(&files[0])];
        let expand = pending(&files, &done, Phase::Expand).unwrap();
        assert_eq!(names(&expand), ["003_c.sql"]);
        let all_expand = [applied(&files[0]), applied(&files[2])];
        let contract = pending(&files, &all_expand, Phase::Contract).unwrap();
        assert_eq!(names(&contract), ["002_b.sql"]);
    }

    #[test]
    fn a_changed_applied_file_is_refused_naming_it() {
        let files = [
            file("001_a.sql", "SELECT 1;"),
            file("002_b.sql", "SELECT 2;"),
        ];
        let mut row = applied(&files[0]);
        row.checksum = "0".repeat(64);
        for phase in [Phase::Expand, Phase::Contract] {
            let error = pending(&files, std::slice::from_ref(&row), phase).unwrap_err();
            assert!(
                matches!(&error, RunError::ChecksumChanged { file, applied, .. } if file == "001_a.sql" && applied == "000000000000"),
                "{error}"
            );
            assert!(error.to_string().contains("new migration"), "{error}");
        }
    }

    #[test]
    fn a_contract_never_runs_ahead_of_an_earlier_pending_expand() {
        let files = [file("001_a.sql", "SELECT 1;"), file("002_b.sql", CONTRACT)];
        let error = pending(&files, &[], Phase::Contract).unwrap_err();
        assert!(
            matches!(&error, RunError::ContractBeforeExpand { contract, expand } if contract == "002_b.sql" && expand == "001_a.sql"),
            "{error}"
        );
        // An expand file after the contract one does not hold it back.
        let files = [file("001_b.sql", CONTRACT), file("002_a.sql", "SELECT 1;")];
        let contract = pending(&files, &[], Phase::Contract).unwrap();
        assert_eq!(names(&contract), ["001_b.sql"]);
    }

    #[test]
    fn status_lists_files_and_applied_rows_whose_file_is_gone() {
        let files = [file("001_a.sql", "SELECT 1;"), file("003_c.sql", CONTRACT)];
        let mut changed = applied(&files[0]);
        changed.checksum = "f".repeat(64);
        let gone = AppliedMigration {
            name: "002_gone.sql".into(),
            ..applied(&files[0])
        };
        let rows = statuses(&files, &[changed, gone]);
        let summary: Vec<(&str, &str, &str, &str)> = rows
            .iter()
            .map(|s| (s.name.as_str(), s.phase.as_str(), s.state, s.checksum))
            .collect();
        assert_eq!(
            summary,
            [
                ("001_a.sql", "expand", "applied", "changed"),
                ("002_gone.sql", "expand", "applied", "missing"),
                ("003_c.sql", "contract", "pending", "pending"),
            ]
        );
        assert_eq!(rows[0].duration_ms, Some(12));
        assert_eq!(rows[2].applied_at_ms, None);
    }
}
