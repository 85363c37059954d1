//! Where in a file PostgreSQL's parser gave up.

/// The byte offset at which `text` stops parsing, given the parser's
/// `message`. libpg_query reports only the message (`syntax error at or near
/// "NUL"`), not its cursor position, so the position is found again by
/// parsing prefixes: the parser reads left to right, so the first prefix
/// that fails with the same message ends at the offending token.
pub(crate) fn locate(text: &str, message: &str) -> usize {
    if let Some(near) = near_token(message) {
        let same_failure = |end: usize| matches!(pg_query::parse(&text[..end], 0), Err(pg_query::Error::Parse(m)) if m == message);
        if let Some((at, _)) = text
            .match_indices(near)
            .find(|(at, token)| same_failure(at + token.len()))
        {
            return at;
        }
    }
    if message.ends_with("at end of input") {
        return text.trim_end().len();
    }
    failing_statement_start(text, message)
}

/// The token in `… at or near "TOKEN"`.
fn near_token(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("at or near \"")?;
    rest.strip_suffix('"').filter(|token| !token.is_empty())
}

/// For errors that name no token: the start of the first statement whose
/// prefix of the file fails with the same message. Ends of statements are
/// found by `;`; one inside a string or comment makes a prefix that fails
/// differently, so it is skipped.
fn failing_statement_start(text: &str, message: &str) -> usize {
    let ends: Vec<usize> = text.match_indices(';').map(|(at, _)| at + 1).collect();
    let fails = |end: usize| matches!(pg_query::parse(&text[..end], 0), Err(pg_query::Error::Parse(m)) if m == message);
    let Some(&end) = ends.iter().find(|&&end| fails(end)) else {
        return 0;
    };
    let previous_end = ends.iter().rev().find(|&&e| e < end).copied().unwrap_or(0);
    previous_end + (text[previous_end..end].len() - text[previous_end..end].trim_start().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(text: &str) -> usize {
        let Err(pg_query::Error::Parse(message)) = pg_query::parse(text, 0) else {
            panic!("{text:?} parses")
        };
        locate(text, &message)
    }

    #[test]
    fn points_at_the_offending_token_not_an_earlier_one_with_the_same_text() {
        let text = "SELECT 'NUL';\n-- NUL\nALTER TABLE t ADD COLUMN x int NOT NUL;\n";
        assert_eq!(located(text), text.rfind("NUL").unwrap_or_default());
    }

    #[test]
    fn an_unfinished_file_fails_at_its_end() {
        let text = "SELECT 1;\nALTER TABLE t ADD COLUMN\n\n";
        assert_eq!(located(text), text.trim_end().len());
    }

    #[test]
    fn an_unterminated_string_points_at_its_quote() {
        let text = "SELECT 1;\nSELECT 'abc;\n";
        assert_eq!(located(text), text.find('\'').unwrap_or_default());
    }
}
