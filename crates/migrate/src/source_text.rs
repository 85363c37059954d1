//! Byte offsets to lines and columns.

/// A file's text with its line starts, to turn the byte offsets that
/// PostgreSQL's parser reports into the 1-based line and column people and
/// editors use.
#[derive(Debug)]
pub(crate) struct SourceText<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        SourceText { text, line_starts }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The 1-based line of byte `offset` (clamped to the text).
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// The 1-based (line, column) of byte `offset`; the column counts
    /// characters, not bytes, so a caret lines up under non-ASCII text.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor_char_boundary(offset);
        let line = self.line(offset);
        let start = self.line_starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    /// The text of 1-based `line`, without its line break.
    pub(crate) fn line_text(&self, line: usize) -> &'a str {
        let start = self
            .line_starts
            .get(line - 1)
            .copied()
            .unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        self.text[start..end.max(start)].trim_end_matches('\r')
    }

    fn floor_char_boundary(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_character_columns() {
        let source = SourceText::new("SELECT 1;\n-- é\nALTER TABLE t;\n");
        assert_eq!(source.position(0), (1, 1));
        assert_eq!(source.position(10), (2, 1));
        // "-- é\n" is 6 bytes: ALTER starts at byte 16, line 3.
        assert_eq!(source.position(16), (3, 1));
        assert_eq!(source.position(22), (3, 7));
        assert_eq!(source.line_text(2), "-- é");
        assert_eq!(source.line_text(3), "ALTER TABLE t;");
        assert_eq!(source.position(15), (2, 5));
    }
}
