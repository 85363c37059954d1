//! A migration file as the runner runs it: its name, checksum and phase,
//! and whether it runs in one transaction or statement by statement.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::directive::declared_phase;
use crate::migration_files::migration_files;
use crate::parsed_file::ParsedFile;
use crate::phase::Phase;
use crate::run_error::RunError;
use crate::source_text::SourceText;
use crate::table_name::TableName;

/// One migration, read and parsed, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The file name (`0042_add_email.sql`): its identity in
    /// `baton_migrations`, and what orders it among the others.
    pub name: String,
    /// SHA-256 of the file's bytes, in hex: any change to an applied file,
    /// even a comment, is noticed.
    pub checksum: String,
    /// When it runs: `-- baton:phase contract` on the first line, else expand.
    pub phase: Phase,
    /// Whether it runs in one transaction (it applies completely or not at
    /// all) or, because it uses `CONCURRENTLY`, which PostgreSQL refuses
    /// inside a transaction block, statement by statement outside one.
    pub in_transaction: bool,
    /// Its statements, in order. They are sent one at a time even inside
    /// the transaction, so that a failure or a lock wait names its line.
    pub statements: Vec<MigrationStatement>,
    /// The file's text.
    pub text: String,
}

/// One statement of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatement {
    /// Its text, from its first token to its end (without the `;`).
    pub sql: String,
    /// Byte offset of its first token in the file.
    pub offset: usize,
    /// 1-based line of its first token.
    pub line: usize,
    /// Set for `CREATE INDEX CONCURRENTLY`: a failed build leaves an
    /// INVALID index behind, which the runner drops.
    pub builds_index: Option<IndexBuild>,
}

/// The index a `CREATE INDEX CONCURRENTLY` builds, with every name quoted
/// for use in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBuild {
    /// The table, schema-qualified when the statement qualified it
    /// (`"public"."users"`).
    pub table: String,
    /// The index, in the table's schema; `None` when PostgreSQL picks the
    /// name.
    pub index: Option<String>,
}

impl MigrationFile {
    /// Reads `*.sql` in `dir`, in name order (the order they run).
    pub fn read_dir(dir: &Path) -> Result<Vec<MigrationFile>, RunError> {
        let files = migration_files(&[dir.to_path_buf()]).map_err(|error| match error {
            crate::LintError::NotFound { path } => RunError::NoDirectory { dir: path },
            other => RunError::Read {
                path: dir.to_path_buf(),
                message: other.to_string(),
            },
        })?;
        files.iter().map(|path| MigrationFile::read(path)).collect()
    }

    /// Reads and parses the migration at `path`.
    pub fn read(path: &Path) -> Result<MigrationFile, RunError> {
        let text = std::fs::read_to_string(path).map_err(|error| RunError::Read {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        let name = file_name(path);
        MigrationFile::from_text(&name, text)
    }

    /// A migration named `name` (its file name) with the text `text`.
    pub fn from_text(name: &str, text: String) -> Result<MigrationFile, RunError> {
        let checksum = checksum(&text);
        let source = SourceText::new(&text);
        let parsed = ParsedFile::parse(&text).map_err(|failure| {
            let (line, column) = source.position(failure.offset);
            RunError::Parse {
                file: name.to_owned(),
                line,
                column,
                message: failure.message,
            }
        })?;
        let phase =
            declared_phase(&text, parsed.comments()).map_err(|message| RunError::Directive {
                file: name.to_owned(),
                message,
            })?;
        let statements = parsed.statements();
        if let Some(control) = statements.iter().find(|s| s.is_transaction_control()) {
            return Err(RunError::TransactionControl {
                file: name.to_owned(),
                line: source.position(control.start()).0,
            });
        }
        let in_transaction = !statements.iter().any(|s| s.is_concurrent());
        let statements = statements
            .iter()
            .zip(parsed.spans())
            .map(|(statement, (start, end))| MigrationStatement {
                sql: text[start..end].trim_end().to_owned(),
                offset: start,
                line: source.position(start).0,
                builds_index: statement
                    .concurrent_index()
                    .map(|(table, index)| IndexBuild {
                        index: index.map(|index| qualified(table.schema.as_deref(), &index)),
                        table: quoted_table(&table),
                    }),
            })
            .collect();
        Ok(MigrationFile {
            name: name.to_owned(),
            checksum,
            phase,
            in_transaction,
            statements,
            text,
        })
    }

    /// The 1-based line of byte `offset` of the file.
    pub fn line_of(&self, offset: usize) -> usize {
        SourceText::new(&self.text).position(offset).0
    }
}

/// The hex SHA-256 of `text`.
pub fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| PathBuf::from(path), PathBuf::from)
        .display()
        .to_string()
}

/// `"name"`, or `"schema"."name"`, as SQL identifiers.
fn qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(name),
    }
}

fn quoted_table(table: &TableName) -> String {
    qualified(table.schema.as_deref(), &table.name)
}

/// A name as a quoted SQL identifier. The parser has already folded
/// unquoted names, so quoting keeps exactly the object it resolved.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> MigrationFile {
        MigrationFile::from_text("001_x.sql", text.to_owned()).unwrap()
    }

    #[test]
    fn a_plain_file_runs_in_one_transaction_in_the_expand_phase() {
        let migration = file("ALTER TABLE users ADD COLUMN email text;\n");
        assert_eq!(migration.phase, Phase::Expand);
        assert!(migration.in_transaction);
        assert_eq!(migration.statements.len(), 1);
        assert_eq!(migration.statements[0].builds_index, None);
        assert_eq!(migration.checksum.len(), 64);
    }

    #[test]
    fn the_first_line_marks_a_contract_migration() {
        let migration = file("-- baton:phase contract\nALTER TABLE users DROP COLUMN fax;\n");
        assert_eq!(migration.phase, Phase::Contract);
    }

    #[test]
    fn a_misspelt_or_misplaced_phase_is_refused_not_guessed() {
        for text in [
            "-- baton:phase contrac\nSELECT 1;",
            "SELECT 1;\n-- baton:phase contract\nSELECT 2;",
        ] {
            let error = MigrationFile::from_text("002_y.sql", text.to_owned()).unwrap_err();
            assert!(matches!(error, RunError::Directive { .. }), "{error}");
            assert!(error.to_string().contains("002_y.sql"), "{error}");
        }
    }

    #[test]
    fn concurrently_splits_the_file_into_statements_with_their_lines() {
        let migration = file(
            "SET search_path = app;\n-- the index\nCREATE INDEX CONCURRENTLY users_email ON app.users (email);\n\
             CREATE UNIQUE INDEX CONCURRENTLY ON \"Odd\"\"Name\" (x)",
        );
        assert!(!migration.in_transaction);
        let statements = migration.statements;
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0].sql, "SET search_path = app");
        assert_eq!(statements[0].builds_index, None);
        assert_eq!(statements[1].line, 3);
        assert_eq!(
            statements[1].builds_index,
            Some(IndexBuild {
                table: "\"app\".\"users\"".into(),
                index: Some("\"app\".\"users_email\"".into()),
            })
        );
        assert_eq!(
            statements[2].builds_index,
            Some(IndexBuild {
                table: "\"Odd\"\"Name\"".into(),
                index: None,
            })
        );
    }

    #[test]
    fn transaction_control_and_syntax_errors_are_refused_with_their_line() {
        let error = MigrationFile::from_text("3.sql", "SELECT 1;\nCOMMIT;".into()).unwrap_err();
        assert!(
            matches!(error, RunError::TransactionControl { line: 2, .. }),
            "{error}"
        );
        let text = "SELECT 1;\nALTER TABLE users DROP COLUMN;";
        let error = MigrationFile::from_text("4.sql", text.into()).unwrap_err();
        assert!(
            matches!(
                error,
                RunError::Parse {
                    line: 2,
                    column: 30,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn any_change_changes_the_checksum() {
        assert_ne!(file("SELECT 1;").checksum, file("SELECT 1; ").checksum);
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
