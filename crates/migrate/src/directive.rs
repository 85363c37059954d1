//! `-- baton:` comments: exceptions and the phase.

use std::cell::Cell;

use crate::phase::Phase;
use crate::rules;
use crate::source_text::SourceText;

/// What a file's `-- baton:` comments say, checked for placement, and the
/// problems with the ones that are malformed or misplaced.
#[derive(Debug, Default)]
pub(crate) struct Directives {
    /// From `-- baton:phase contract` on the first line.
    pub(crate) phase: Phase,
    file_allows: Vec<Allow>,
    /// Each with the index of the statement it precedes.
    statement_allows: Vec<(usize, Allow)>,
    /// (byte offset, message) of each bad directive.
    pub(crate) problems: Vec<(usize, String)>,
}

/// One `baton:allow` or `baton:allow-file`.
#[derive(Debug)]
struct Allow {
    rules: Vec<&'static str>,
    offset: usize,
    spelled: String,
    used: Cell<bool>,
}

enum Directive {
    Allow(Vec<&'static str>),
    AllowFile(Vec<&'static str>),
    Phase(Phase),
}

impl Directives {
    /// Reads the directives among `comments` (byte ranges of `--` comments)
    /// of a file whose statements start at `statement_starts`.
    pub(crate) fn collect(
        source: &SourceText<'_>,
        comments: &[(usize, usize)],
        statement_starts: &[usize],
    ) -> Directives {
        let mut directives = Directives::default();
        for &(start, end) in comments {
            let text = source.text()[start..end].trim_start_matches('-').trim();
            let Some(directive) = text.strip_prefix("baton:") else {
                continue;
            };
            match parse(directive) {
                Ok(directive) => directives.place(source, directive, text, start, statement_starts),
                Err(problem) => directives.problems.push((start, problem)),
            }
        }
        directives
    }

    fn place(
        &mut self,
        source: &SourceText<'_>,
        directive: Directive,
        text: &str,
        start: usize,
        statement_starts: &[usize],
    ) {
        let allow = |rules| Allow {
            rules,
            offset: start,
            spelled: text.to_owned(),
            used: Cell::new(false),
        };
        match directive {
            Directive::Phase(phase) if start == 0 => self.phase = phase,
            Directive::Phase(_) => self.problems.push((start, MISPLACED_PHASE.to_owned())),
            Directive::AllowFile(rules)
                if statement_starts.first().is_none_or(|&first| start < first) =>
            {
                self.file_allows.push(allow(rules));
            }
            Directive::AllowFile(_) => self.problems.push((
                start,
                "`-- baton:allow-file` must be at the top of the file, before the first statement"
                    .to_owned(),
            )),
            Directive::Allow(rules) => {
                let next = statement_starts.partition_point(|&statement| statement < start);
                match statement_starts.get(next) {
                    Some(&statement) if precedes(source, start, statement) => {
                        self.statement_allows.push((next, allow(rules)));
                    }
                    _ => self.problems.push((
                        start,
                        "`-- baton:allow` must be on its own line right before the statement it allows (no blank line or code in between)".to_owned(),
                    )),
                }
            }
        }
    }

    /// Whether statement `index` may break `rule`; marks the exception used.
    pub(crate) fn allows(&self, index: usize, rule: &str) -> bool {
        let statement = self
            .statement_allows
            .iter()
            .filter(|(at, _)| *at == index)
            .map(|(_, allow)| allow);
        statement
            .chain(&self.file_allows)
            .find(|allow| allow.rules.contains(&rule))
            .inspect(|allow| allow.used.set(true))
            .is_some()
    }

    /// (byte offset, message) of each exception that allowed nothing.
    pub(crate) fn unused(&self) -> Vec<(usize, String)> {
        self.file_allows
            .iter()
            .chain(self.statement_allows.iter().map(|(_, allow)| allow))
            .filter(|allow| !allow.used.get())
            .map(|allow| {
                (
                    allow.offset,
                    format!(
                        "`-- {}` allows nothing here: no statement it covers breaks {}",
                        allow.spelled,
                        allow.rules.join(" or ")
                    ),
                )
            })
            .collect()
    }
}

/// Why a `-- baton:phase` anywhere but the first line is refused.
const MISPLACED_PHASE: &str = "`-- baton:phase` must be the file's first line; elsewhere it would be easy to miss, so it is refused";

/// The phase a file declares among its `comments` (byte ranges of `--`
/// comments): `-- baton:phase contract` on the first line, else expand.
/// A malformed or misplaced phase comment is an error, never a guess: a
/// contract migration taken for an expand one would run while the old
/// version still serves.
pub(crate) fn declared_phase(text: &str, comments: &[(usize, usize)]) -> Result<Phase, String> {
    for &(start, end) in comments {
        let body = text[start..end].trim_start_matches('-').trim();
        let Some(directive) = body.strip_prefix("baton:") else {
            continue;
        };
        if directive.split_whitespace().next() != Some("phase") {
            continue;
        }
        match parse(directive)? {
            Directive::Phase(phase) if start == 0 => return Ok(phase),
            _ => return Err(MISPLACED_PHASE.to_owned()),
        }
    }
    Ok(Phase::Expand)
}

/// Whether the comment at `comment` stands alone on its line and only
/// comment lines separate it from the statement at `statement`.
fn precedes(source: &SourceText<'_>, comment: usize, statement: usize) -> bool {
    let line = source.line(comment);
    let alone = source.line_text(line).trim_start().starts_with("--");
    alone
        && (line + 1..source.line(statement))
            .all(|between| source.line_text(between).trim_start().starts_with("--"))
}

/// Parses the text after `baton:`.
fn parse(directive: &str) -> Result<Directive, String> {
    let (word, rest) = directive
        .split_once(char::is_whitespace)
        .unwrap_or((directive, ""));
    let rest = rest.trim();
    match word {
        "phase" => Phase::from_word(rest)
            .map(Directive::Phase)
            .ok_or_else(|| format!("`-- baton:phase` takes `expand` or `contract`, not `{rest}`")),
        "allow" => allowed_rules(word, rest).map(Directive::Allow),
        "allow-file" => allowed_rules(word, rest).map(Directive::AllowFile),
        other => Err(format!(
            "unknown directive `baton:{other}`: baton reads `baton:allow`, `baton:allow-file` and `baton:phase`"
        )),
    }
}

/// The rule names and the required reason of an allow directive.
fn allowed_rules(word: &str, rest: &str) -> Result<Vec<&'static str>, String> {
    let (names, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if names.is_empty() {
        return Err(format!(
            "`-- baton:{word}` needs a rule and a reason: `-- baton:{word} RULE why it is safe`"
        ));
    }
    let rules = names
        .split(',')
        .map(|name| {
            rules::by_name(name).map(|rule| rule.name).ok_or_else(|| {
                format!("`{name}` in `-- baton:{word}` is not a baton rule (the README lists them)")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if reason.trim().is_empty() {
        return Err(format!(
            "`-- baton:{word} {names}` gives no reason: say after the rule why it is safe, e.g. `-- baton:{word} {names} nothing has read it since v41`"
        ));
    }
    Ok(rules)
}
