//! Running the rules over files.

use std::path::{Path, PathBuf};

use crate::context::{Context, NotNullCheck};
use crate::diagnostic::Diagnostic;
use crate::directive::Directives;
use crate::error::LintError;
use crate::level::Level;
use crate::migration_files::migration_files;
use crate::options::LintOptions;
use crate::parsed_file::{ParseFailure, ParsedFile};
use crate::phase::Phase;
use crate::rule::Concern;
use crate::rules;
use crate::source_text::SourceText;
use crate::statement::Statement;

/// A file PostgreSQL cannot parse: nothing else in it is checked.
const SYNTAX_ERROR: &str = "syntax-error";
const SYNTAX_ERROR_HELP: &str = "Fix the SQL: PostgreSQL would refuse this file, and baton checks nothing else in a file it cannot parse.";
/// A malformed or misplaced `-- baton:` comment.
const INVALID_DIRECTIVE: &str = "invalid-directive";
const INVALID_DIRECTIVE_HELP: &str = "Write `-- baton:allow RULE reason` on the line before the statement, `-- baton:allow-file RULE reason` before the first statement, or `-- baton:phase contract` as the first line.";
/// A `-- baton:allow` that covers no finding: stale, or a typo'd target.
const UNUSED_ALLOW: &str = "unused-allow";
const UNUSED_ALLOW_HELP: &str = "Remove the comment, or move it to the statement that needs it; an exception that allows nothing hides the next real problem.";

/// The outcome of linting some files.
#[derive(Debug, Default)]
pub struct Report {
    /// How many files were checked.
    pub files: usize,
    /// Every finding, file by file in the order linted, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// How many findings have `level`.
    pub fn count(&self, level: Level) -> usize {
        self.diagnostics.iter().filter(|d| d.level == level).count()
    }

    /// Whether the lint fails (exit status 1).
    pub fn has_errors(&self) -> bool {
        self.count(Level::Error) > 0
    }
}

/// Lints the files and directories at `paths` (a directory means its
/// `*.sql` files in name order), in the order they would run.
pub fn lint_paths(paths: &[PathBuf], options: &LintOptions) -> Result<Report, LintError> {
    let files = migration_files(paths)?;
    let mut sources = Vec::with_capacity(files.len());
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|source| LintError::ReadFile {
            path: file.clone(),
            source,
        })?;
        sources.push((display(file), text));
    }
    Ok(lint_sources(
        sources
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str())),
        options,
    ))
}

/// Lints migrations given as (name, text), in the order they run. What one
/// file validates (a `CHECK (c IS NOT NULL)`) is known to the next.
pub fn lint_sources<'a>(
    sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    options: &LintOptions,
) -> Report {
    let sources: Vec<(&str, &str)> = sources.into_iter().collect();
    let parsed = parse_all(&sources);
    let mut report = Report::default();
    let mut checks = Vec::new();
    for ((name, text), parsed) in sources.into_iter().zip(parsed) {
        let (diagnostics, carried) = lint_file(name, text, parsed, options, checks);
        checks = carried;
        report.files += 1;
        report.diagnostics.extend(diagnostics);
    }
    report
}

/// Lints one migration on its own.
pub fn lint_source(name: &str, text: &str, options: &LintOptions) -> Vec<Diagnostic> {
    lint_file(name, text, ParsedFile::parse(text), options, Vec::new()).0
}

/// Parses every file, on as many threads as there are cores. Parsing is
/// most of a lint's time and each file parses on its own (libpg_query
/// keeps its state per thread); the rules then run in file order, since
/// what one file validates is known to the next.
fn parse_all(sources: &[(&str, &str)]) -> Vec<Result<ParsedFile, ParseFailure>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(sources.len());
    if threads <= 1 {
        return sources
            .iter()
            .map(|(_, text)| ParsedFile::parse(text))
            .collect();
    }
    let chunk = sources.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parsers: Vec<_> = sources
            .chunks(chunk)
            .map(|files| {
                scope.spawn(move || {
                    files
                        .iter()
                        .map(|(_, text)| ParsedFile::parse(text))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parsers
            .into_iter()
            .flat_map(|parser| {
                parser
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn lint_file(
    name: &str,
    text: &str,
    parsed: Result<ParsedFile, ParseFailure>,
    options: &LintOptions,
    checks: Vec<NotNullCheck>,
) -> (Vec<Diagnostic>, Vec<NotNullCheck>) {
    let source = SourceText::new(text);
    let finding = |offset: usize, rule: &'static str, level: Level, message: String, help: &str| {
        let (line, column) = source.position(offset);
        Diagnostic {
            file: name.to_owned(),
            line,
            column,
            rule,
            level,
            message,
            help: help.to_owned(),
            source_line: source.line_text(line).to_owned(),
        }
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(failure) => {
            let diagnostic = finding(
                failure.offset,
                SYNTAX_ERROR,
                Level::Error,
                failure.message,
                SYNTAX_ERROR_HELP,
            );
            return (vec![diagnostic], checks);
        }
    };
    let statements = parsed.statements();
    let starts: Vec<usize> = statements.iter().map(Statement::start).collect();
    let directives = Directives::collect(&source, parsed.comments(), &starts);

    let mut found: Vec<(usize, Diagnostic)> = directives
        .problems
        .iter()
        .map(|(offset, message)| {
            let diagnostic = finding(
                *offset,
                INVALID_DIRECTIVE,
                Level::Error,
                message.clone(),
                INVALID_DIRECTIVE_HELP,
            );
            (*offset, diagnostic)
        })
        .collect();
    let single_transaction = !statements.iter().any(Statement::is_concurrent);
    let mut context = Context::new(options, directives.phase, single_transaction, checks);
    for (index, statement) in statements.iter().enumerate() {
        for rule in rules::ALL {
            if rule.concern == Concern::OldVersion && context.phase == Phase::Contract {
                continue;
            }
            for hit in (rule.check)(statement, &context) {
                let on_new_table = hit
                    .table
                    .as_ref()
                    .is_some_and(|table| context.created_here(table));
                if (on_new_table && rule.concern != Concern::Hygiene)
                    || directives.allows(index, rule.name)
                {
                    continue;
                }
                let offset = hit.location.unwrap_or(statement.start());
                found.push((
                    offset,
                    finding(offset, rule.name, rule.level(), hit.message, rule.help),
                ));
            }
        }
        context.observe(statement);
    }
    found.extend(directives.unused().into_iter().map(|(offset, message)| {
        (
            offset,
            finding(
                offset,
                UNUSED_ALLOW,
                Level::Warning,
                message,
                UNUSED_ALLOW_HELP,
            ),
        )
    }));
    found.sort_by_key(|(offset, _)| *offset);
    (
        found
            .into_iter()
            .map(|(_, diagnostic)| diagnostic)
            .collect(),
        context.into_not_null_checks(),
    )
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(sql: &str) -> Vec<Diagnostic> {
        lint_source("m.sql", sql, &LintOptions::default())
    }

    fn rules_of(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
        diagnostics.iter().map(|d| d.rule).collect()
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error_at_the_offending_token() {
        let found = lint("SELECT 1;\nALTER TABLE users DROP COLUMN;\n");
        assert_eq!(rules_of(&found), ["syntax-error"]);
        assert_eq!((found[0].line, found[0].column), (2, 30));
        assert_eq!(found[0].message, "syntax error at or near \";\"");
        assert_eq!(found[0].level, Level::Error);
    }

    #[test]
    fn a_nul_byte_is_a_syntax_error_too() {
        let found = lint("SELECT 1;\n\0");
        assert_eq!(rules_of(&found), ["syntax-error"]);
        assert_eq!(found[0].line, 2);
    }

    #[test]
    fn an_allow_with_a_reason_silences_its_rule_on_the_next_statement_only() {
        let sql = "-- baton:allow drop-column nothing has read it since v41\n\
                   ALTER TABLE users DROP COLUMN email;\n\
                   ALTER TABLE users DROP COLUMN phone;\n";
        let found = lint(sql);
        assert_eq!(rules_of(&found), ["drop-column"]);
        assert_eq!(found[0].line, 3);
    }

    #[test]
    fn an_allow_may_stand_above_other_comments_and_name_several_rules() {
        let sql = "-- baton:allow drop-column,drop-table both unused since v41\n\
                   -- the old audit trail\n\
                   ALTER TABLE users DROP COLUMN email;\n";
        assert!(lint(sql).is_empty());
    }

    #[test]
    fn an_allow_without_a_reason_is_an_error_and_allows_nothing() {
        let found = lint("-- baton:allow drop-column\nALTER TABLE users DROP COLUMN email;\n");
        assert_eq!(rules_of(&found), ["invalid-directive", "drop-column"]);
        assert!(
            found[0].message.contains("gives no reason"),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].line, 1);
    }

    #[test]
    fn an_allow_of_an_unknown_rule_or_in_the_wrong_place_is_an_error() {
        let unknown =
            lint("-- baton:allow drop-colum typo\nALTER TABLE users DROP COLUMN email;\n");
        assert_eq!(rules_of(&unknown), ["invalid-directive", "drop-column"]);
        let apart =
            lint("-- baton:allow drop-column unused\n\nALTER TABLE users DROP COLUMN email;\n");
        assert_eq!(rules_of(&apart), ["invalid-directive", "drop-column"]);
        let trailing = lint(
            "SELECT 1; -- baton:allow drop-column unused\nALTER TABLE users DROP COLUMN email;\n",
        );
        assert_eq!(rules_of(&trailing), ["invalid-directive", "drop-column"]);
        let unknown_directive = lint("-- baton:ignore drop-column\nSELECT 1;\n");
        assert_eq!(rules_of(&unknown_directive), ["invalid-directive"]);
    }

    #[test]
    fn an_allow_that_allows_nothing_is_a_warning() {
        let found =
            lint("-- baton:allow drop-table not needed\nALTER TABLE users DROP COLUMN email;\n");
        assert_eq!(rules_of(&found), ["unused-allow", "drop-column"]);
        assert_eq!(found[0].level, Level::Warning);
    }

    #[test]
    fn allow_file_covers_the_whole_file_from_the_top_only() {
        let sql = "-- baton:allow-file drop-column columns retired in v40\n\
                   ALTER TABLE users DROP COLUMN email;\n\
                   ALTER TABLE users DROP COLUMN phone;\n";
        assert!(lint(sql).is_empty());
        let late = "SELECT 1;\n-- baton:allow-file drop-column late\nALTER TABLE users DROP COLUMN email;\n";
        assert_eq!(rules_of(&lint(late)), ["invalid-directive", "drop-column"]);
    }

    #[test]
    fn a_contract_phase_allows_breaking_the_old_version_but_not_locks() {
        let sql = "-- baton:phase contract\n\
                   ALTER TABLE users DROP COLUMN email;\n\
                   CREATE INDEX users_name ON users (name);\n";
        assert_eq!(rules_of(&lint(sql)), ["create-index-not-concurrently"]);
        let late = "SELECT 1;\n-- baton:phase contract\nALTER TABLE users DROP COLUMN email;\n";
        assert_eq!(rules_of(&lint(late)), ["invalid-directive", "drop-column"]);
        assert_eq!(
            rules_of(&lint("-- baton:phase later\nSELECT 1;")),
            ["invalid-directive"]
        );
    }

    #[test]
    fn directive_text_inside_a_string_is_not_a_directive() {
        let sql = "INSERT INTO notes VALUES ('\n-- baton:allow drop-column no\n');\nALTER TABLE users DROP COLUMN email;\n";
        assert_eq!(rules_of(&lint(sql)), ["drop-column"]);
    }

    #[test]
    fn a_finding_points_at_the_statement_after_its_leading_comments() {
        let found = lint("SELECT 1;\n\n-- drop it\n  DROP TABLE users;\n");
        assert_eq!((found[0].line, found[0].column), (4, 3));
        assert_eq!(found[0].source_line, "  DROP TABLE users;");
    }

    #[test]
    fn a_check_validated_in_an_earlier_file_lets_set_not_null_pass() {
        let sources = [
            (
                "1.sql",
                "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;",
            ),
            (
                "2.sql",
                "ALTER TABLE users VALIDATE CONSTRAINT email_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            ),
        ];
        let report = lint_sources(sources, &LintOptions::default());
        assert_eq!(report.files, 2);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        assert!(!report.has_errors());
    }

    #[test]
    fn a_clean_migration_has_no_findings() {
        let sql = "SET lock_timeout = '2s';\n\
                   CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric, created timestamptz NOT NULL DEFAULT now());\n\
                   CREATE INDEX invoices_created ON invoices (created);\n\
                   ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';\n\
                   CREATE INDEX CONCURRENTLY users_locale ON users (locale);\n";
        assert_eq!(lint(sql), []);
    }
}
