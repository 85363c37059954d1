//! The output formats of `baton migrate lint`.

use std::fmt::Write as _;

use crate::diagnostic::Diagnostic;
use crate::level::Level;
use crate::lint::Report;

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: each finding with its source line, a caret and the help.
    Human,
    /// A JSON array of {file, line, column, rule, level, message, help}.
    Json,
    /// One line per finding, `file:line:col: error: message [rule]`, which
    /// editors and CI log parsers understand.
    Gcc,
    /// GitHub Actions workflow commands, shown as annotations on the diff.
    Github,
}

/// The report in `format`, ending with a newline unless empty.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Human => human(report),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&report.diagnostics)
                .expect("diagnostics are plain strings and numbers");
            json.push('\n');
            json
        }
        Format::Gcc => report
            .diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{}: {}: {} [{}]\n",
                    d.file,
                    d.line,
                    d.column,
                    d.level.as_str(),
                    d.message,
                    d.rule
                )
            })
            .collect(),
        Format::Github => report.diagnostics.iter().map(github).collect(),
    }
}

fn human(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let gutter = " ".repeat(d.line.to_string().len());
        // Tabs are kept so the caret lines up under the same column.
        let pad: String = d
            .source_line
            .chars()
            .take(d.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = write!(
            out,
            "{}[{}]: {}\n{gutter}--> {}:{}:{}\n{gutter} |\n{} | {}\n{gutter} | {pad}^\n{gutter} = help: {}\n\n",
            d.level.as_str(),
            d.rule,
            d.message,
            d.file,
            d.line,
            d.column,
            d.line,
            d.source_line,
            d.help,
        );
    }
    let (errors, warnings) = (report.count(Level::Error), report.count(Level::Warning));
    let files = plural(report.files, "migration file");
    if errors + warnings == 0 {
        let _ = writeln!(out, "checked {files}: no problems found");
    } else {
        let _ = writeln!(
            out,
            "checked {files}: {}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        );
    }
    out
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `::error file=…,line=…,col=…,title=rule::message`, escaped as GitHub's
/// workflow commands require; the help follows the message on a new line.
fn github(d: &Diagnostic) -> String {
    let command = match d.level {
        Level::Error => "error",
        Level::Warning => "warning",
    };
    format!(
        "::{command} file={},line={},col={},title={}::{}%0A%0Ahelp: {}\n",
        escape_property(&d.file),
        d.line,
        d.column,
        escape_property(d.rule),
        escape_data(&d.message),
        escape_data(&d.help),
    )
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            files: 2,
            diagnostics: vec![Diagnostic {
                file: "migrations/002_drop.sql".to_owned(),
                line: 3,
                column: 5,
                rule: "drop-column",
                level: Level::Error,
                message: "dropping column \"email\", 100% sure".to_owned(),
                help: "Stop using it first.".to_owned(),
                source_line: "\tALTER TABLE users DROP COLUMN email;".to_owned(),
            }],
        }
    }

    #[test]
    fn human_shows_the_line_a_caret_under_the_column_and_the_help() {
        let text = render(&report(), Format::Human);
        assert!(
            text.starts_with("error[drop-column]: dropping column"),
            "{text}"
        );
        assert!(
            text.contains(" --> migrations/002_drop.sql:3:5\n"),
            "{text}"
        );
        assert!(
            text.contains("3 | \tALTER TABLE users DROP COLUMN email;\n  | \t   ^\n"),
            "{text}"
        );
        assert!(text.contains("= help: Stop using it first."), "{text}");
        assert!(
            text.ends_with("checked 2 migration files: 1 error, 0 warnings\n"),
            "{text}"
        );
    }

    #[test]
    fn gcc_is_one_line_per_finding() {
        assert_eq!(
            render(&report(), Format::Gcc),
            "migrations/002_drop.sql:3:5: error: dropping column \"email\", 100% sure [drop-column]\n"
        );
    }

    #[test]
    fn github_escapes_what_workflow_commands_reserve() {
        assert_eq!(
            render(&report(), Format::Github),
            "::error file=migrations/002_drop.sql,line=3,col=5,title=drop-column::dropping column \"email\", 100%25 sure%0A%0Ahelp: Stop using it first.\n"
        );
    }

    #[test]
    fn json_is_an_array_of_findings() {
        let value: serde_json::Value =
            serde_json::from_str(&render(&report(), Format::Json)).expect("valid JSON");
        assert_eq!(value[0]["rule"], "drop-column");
        assert_eq!(value[0]["level"], "error");
        assert_eq!(value[0]["line"], 3);
        assert_eq!(value[0]["column"], 5);
        assert!(value[0].get("source_line").is_none());
    }
}
