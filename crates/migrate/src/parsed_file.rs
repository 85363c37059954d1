//! One migration file through PostgreSQL's parser and scanner: its
//! statements (where each starts and ends) and its `--` comments. The lint
//! judges these statements and the runner executes them, so both split a
//! file the same way: the way the server will.

use pg_query::protobuf::Token;

use crate::statement::Statement;
use crate::syntax_error;

/// A file that parsed, with what the scanner saw in it.
#[derive(Debug)]
pub(crate) struct ParsedFile {
    parsed: pg_query::ParseResult,
    /// Each statement's (byte offset of its first token, end offset).
    spans: Vec<(usize, usize)>,
    /// Byte ranges of the `--` comments.
    comments: Vec<(usize, usize)>,
}

/// Why a file does not parse: the byte offset of the offending token and
/// PostgreSQL's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseFailure {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

impl ParsedFile {
    /// Parses `text`.
    pub(crate) fn parse(text: &str) -> Result<ParsedFile, ParseFailure> {
        let parsed = pg_query::parse(text, 0).map_err(|error| match error {
            pg_query::Error::Parse(message) => ParseFailure {
                offset: syntax_error::locate(text, &message),
                message,
            },
            pg_query::Error::Conversion(_) => ParseFailure {
                offset: text.find('\0').unwrap_or(0),
                message: "the file contains a NUL byte".to_owned(),
            },
            other => ParseFailure {
                offset: 0,
                message: other.to_string(),
            },
        })?;
        // Comments come from PostgreSQL's own scanner, so `--` inside a
        // string is never taken for a directive.
        let tokens = pg_query::scan(text)
            .map(|scan| scan.tokens)
            .unwrap_or_default();
        let is_comment =
            |token: i32| token == Token::SqlComment as i32 || token == Token::CComment as i32;
        // Token starts are in file order, so each statement's first token
        // is found by bisection: a file of thousands of statements stays
        // linear.
        let code_starts: Vec<usize> = tokens
            .iter()
            .filter(|token| !is_comment(token.token))
            .filter_map(|token| usize::try_from(token.start).ok())
            .collect();
        let spans = parsed
            .protobuf
            .stmts
            .iter()
            .map(|raw| {
                let location = usize::try_from(raw.stmt_location).unwrap_or(0);
                // A length of 0 means "to the end of the text".
                let end = match usize::try_from(raw.stmt_len) {
                    Ok(0) | Err(_) => text.len(),
                    Ok(length) => (location + length).min(text.len()),
                };
                // The statement's location may include the comments before it.
                let first = code_starts
                    .get(code_starts.partition_point(|&start| start < location))
                    .copied()
                    .unwrap_or(location)
                    .min(end);
                (first, end)
            })
            .collect();
        let comments = tokens
            .iter()
            .filter(|token| token.token == Token::SqlComment as i32)
            .filter_map(|token| {
                Some((
                    usize::try_from(token.start).ok()?,
                    usize::try_from(token.end).ok()?,
                ))
            })
            .collect();
        Ok(ParsedFile {
            parsed,
            spans,
            comments,
        })
    }

    /// The statements, each with where its first token is.
    pub(crate) fn statements(&self) -> Vec<Statement<'_>> {
        self.parsed
            .protobuf
            .stmts
            .iter()
            .zip(&self.spans)
            .filter_map(|(raw, &(start, _))| {
                let node = raw.stmt.as_ref()?.node.as_ref()?;
                Some(Statement::new(node, start))
            })
            .collect()
    }

    /// Each statement's byte range in the file, from its first token to
    /// its end (without the `;`), in the order of [`Self::statements`].
    pub(crate) fn spans(&self) -> Vec<(usize, usize)> {
        self.parsed
            .protobuf
            .stmts
            .iter()
            .zip(&self.spans)
            .filter(|(raw, _)| raw.stmt.as_ref().is_some_and(|stmt| stmt.node.is_some()))
            .map(|(_, &span)| span)
            .collect()
    }

    /// Byte ranges of the file's `--` comments.
    pub(crate) fn comments(&self) -> &[(usize, usize)] {
        &self.comments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_span_from_their_first_token_past_leading_comments() {
        let text = "-- first\nSELECT 1;\n\n/* two */ SELECT 'a;b' ;\nSELECT 3";
        let parsed = ParsedFile::parse(text).unwrap();
        let spans: Vec<&str> = parsed
            .spans()
            .iter()
            .map(|&(start, end)| text[start..end].trim_end())
            .collect();
        assert_eq!(spans, ["SELECT 1", "SELECT 'a;b'", "SELECT 3"]);
        assert_eq!(parsed.statements().len(), 3);
        assert_eq!(parsed.comments(), [(0, 8)]);
    }

    #[test]
    fn a_syntax_error_has_its_offset() {
        let failure = ParsedFile::parse("SELECT 1;\nDROP TABLE;").unwrap_err();
        assert_eq!(failure.offset, 20);
    }
}
