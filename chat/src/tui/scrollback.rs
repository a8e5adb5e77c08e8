//! The scrollback of the full-screen client: the lines so far, wrapped to
//! the screen's width, and how far up the reader has paged.
//!
//! Pure state: each [`Entry`] is a line as [`View`](crate::commands::View)
//! renders it (in pieces, names apart), with the time it arrived. Wrapping
//! is done here, not by the widget, by grapheme and terminal column (a
//! Chinese character takes two), so paging knows exactly how many rows
//! there are. The position is a count of rows above the bottom: 0 follows
//! new lines; while paged up, new lines do not move what is being read.

use std::collections::VecDeque;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use super::users::colour_index;
use crate::commands::Piece;

/// At most this many lines are kept.
const MAX_ENTRIES: usize = 5000;

/// What a line is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Someone said something.
    Chat,
    /// News about the session or the room (`* ...`).
    Info,
    /// Something refused, failed or held (`! ...`).
    Problem,
}

/// One line of the scrollback.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// When it arrived, `HH:MM`.
    pub(crate) time: String,
    pub(crate) kind: Kind,
    pub(crate) pieces: Vec<Piece>,
}

impl Entry {
    /// A line of plain text; its kind from its first character, as
    /// [`View`](crate::commands::View) writes them (`*` news, `!` trouble).
    pub(crate) fn plain(time: &str, text: String) -> Entry {
        Entry::from_pieces(time, vec![Piece::Text(text)])
    }

    /// A rendered line; its kind from its first character.
    pub(crate) fn from_pieces(time: &str, pieces: Vec<Piece>) -> Entry {
        let first = pieces.iter().find_map(|p| match p {
            Piece::Text(t) if t.is_empty() => None,
            Piece::Text(t) => t.chars().next(),
            Piece::Name(_) => Some('a'),
        });
        let kind = match first {
            Some('*') => Kind::Info,
            Some('!') => Kind::Problem,
            _ => Kind::Chat,
        };
        Entry {
            time: time.to_owned(),
            kind,
            pieces,
        }
    }
}

/// How a piece of a row is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The time at the start of a line.
    Time,
    /// Text, coloured by the line's kind.
    Text,
    /// A name, in the colour of this palette index.
    Name(usize),
}

/// One screen row of a wrapped line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) kind: Kind,
    pub(crate) segments: Vec<(String, Role)>,
}

impl Row {
    /// The row's text, without its roles.
    #[cfg(test)]
    pub(crate) fn text(&self) -> String {
        self.segments.iter().map(|(s, _)| s.as_str()).collect()
    }
}

/// The width of `HH:MM `, and the indent of a wrapped line's later rows.
const INDENT: usize = 6;

/// Wraps `entry` into rows of at most `width` columns: between words where
/// it can, inside a word (a run of Chinese, a long address) where it must.
/// Later rows are indented under the text, past the time.
pub(crate) fn wrap(entry: &Entry, width: usize) -> Vec<Row> {
    let width = width.max(1);
    let indent = if width > INDENT * 2 { INDENT } else { 0 };
    let time = format!("{:<INDENT$}", entry.time);
    let pieces =
        std::iter::once((time.as_str(), Role::Time)).chain(entry.pieces.iter().map(|piece| {
            match piece {
                Piece::Text(t) => (t.as_str(), Role::Text),
                Piece::Name(n) => (n.as_str(), Role::Name(colour_index(n))),
            }
        }));
    let graphemes: Vec<(&str, Role)> = pieces
        .flat_map(|(text, role)| text.graphemes(true).map(move |g| (g, role)))
        .collect();
    let mut out = Wrapper {
        kind: entry.kind,
        width,
        indent,
        rows: Vec::new(),
        row: Vec::new(),
        used: 0,
    };
    // Each word with the spaces after it.
    let mut rest = &graphemes[..];
    while !rest.is_empty() {
        let blank = |g: &str| g.chars().all(char::is_whitespace);
        let letters = rest.iter().take_while(|(g, _)| !blank(g)).count();
        let spaces = rest[letters..].iter().take_while(|(g, _)| blank(g)).count();
        let (word, tail) = rest.split_at(letters + spaces);
        rest = tail;
        let word_width: usize = word[..letters].iter().map(|(g, _)| g.width()).sum();
        if out.used + word_width > width && out.used > indent && word_width <= width - indent {
            out.break_row();
        }
        for (i, &(g, role)) in word.iter().enumerate() {
            if i >= letters && out.used + g.width() > width {
                // Spaces that would pass the edge are not worth a row.
                continue;
            }
            out.place(g, role);
        }
    }
    out.rows.push(Row {
        kind: entry.kind,
        segments: out.row,
    });
    out.rows
}

/// Rows being filled by [`wrap`].
struct Wrapper {
    kind: Kind,
    width: usize,
    indent: usize,
    rows: Vec<Row>,
    row: Vec<(String, Role)>,
    used: usize,
}

impl Wrapper {
    fn break_row(&mut self) {
        let next = vec![(" ".repeat(self.indent), Role::Text)];
        let row = std::mem::replace(&mut self.row, next);
        self.rows.push(Row {
            kind: self.kind,
            segments: row,
        });
        self.used = self.indent;
    }

    /// Puts one grapheme on the row, on a new row if it does not fit.
    fn place(&mut self, grapheme: &str, role: Role) {
        let w = grapheme.width();
        if self.used + w > self.width && self.used > self.indent {
            self.break_row();
        }
        match self.row.last_mut() {
            Some((s, r)) if *r == role => s.push_str(grapheme),
            _ => self.row.push((grapheme.to_owned(), role)),
        }
        self.used += w;
    }
}

/// The lines so far and the reader's place in them.
#[derive(Debug, Default)]
pub(crate) struct Scrollback {
    entries: VecDeque<Entry>,
    /// Each entry's rows at `width`, and their sum: paging needs the total
    /// on every key, so it is kept rather than counted.
    heights: VecDeque<usize>,
    total: usize,
    /// Rows above the bottom the view starts at (0: following).
    offset: usize,
    /// Lines that arrived while paged up.
    unseen: usize,
    /// The size last drawn: columns, rows.
    width: usize,
    height: usize,
}

impl Scrollback {
    /// Adds a line at the bottom. While paged up, the view stays where it
    /// is.
    pub(crate) fn push(&mut self, entry: Entry) {
        let height = wrap(&entry, self.width).len();
        if self.offset > 0 {
            self.offset += height;
            self.unseen += 1;
        }
        self.entries.push_back(entry);
        self.heights.push_back(height);
        self.total += height;
        if self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
            self.total -= self.heights.pop_front().unwrap_or(0);
            self.offset = self.offset.min(self.max_offset());
        }
    }

    /// Notes the size the scrollback is drawn at.
    pub(crate) fn set_viewport(&mut self, width: usize, height: usize) {
        if width != self.width {
            self.width = width;
            self.heights = self.entries.iter().map(|e| wrap(e, width).len()).collect();
            self.total = self.heights.iter().sum();
        }
        self.height = height;
        self.offset = self.offset.min(self.max_offset());
    }

    /// The farthest up the view can start.
    fn max_offset(&self) -> usize {
        self.total.saturating_sub(self.height)
    }

    /// Rows to move for a page: a screen, less one row kept for context.
    fn page(&self) -> usize {
        self.height.saturating_sub(1).max(1)
    }

    /// Pages up (PageUp), at most to the first line.
    pub(crate) fn page_up(&mut self) {
        self.scroll_up(self.page());
    }

    /// Pages down (PageDown), at most to the bottom.
    pub(crate) fn page_down(&mut self) {
        self.scroll_down(self.page());
    }

    /// Scrolls up `rows` (the mouse wheel).
    pub(crate) fn scroll_up(&mut self, rows: usize) {
        self.offset = (self.offset + rows).min(self.max_offset());
    }

    /// Scrolls down `rows`.
    pub(crate) fn scroll_down(&mut self, rows: usize) {
        self.offset = self.offset.saturating_sub(rows);
        if self.offset == 0 {
            self.unseen = 0;
        }
    }

    /// Back to the newest line.
    pub(crate) fn bottom(&mut self) {
        self.offset = 0;
        self.unseen = 0;
    }

    /// Rows above the bottom the view starts at.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Lines that arrived while paged up.
    pub(crate) fn unseen(&self) -> usize {
        self.unseen
    }

    /// The rows to show, top first: at most a screen, ending `offset` rows
    /// above the last.
    pub(crate) fn visible(&self) -> Vec<Row> {
        // Rows below the view, skipped by their counts, not wrapped.
        let mut below = self.offset;
        let mut rows: Vec<Row> = Vec::new();
        for (entry, &height) in self.entries.iter().zip(&self.heights).rev() {
            if rows.len() >= self.height {
                break;
            }
            if below >= height {
                below -= height;
                continue;
            }
            for row in wrap(entry, self.width).into_iter().rev() {
                if below > 0 {
                    below -= 1;
                } else if rows.len() < self.height {
                    rows.push(row);
                }
            }
        }
        rows.reverse();
        rows
    }

    /// How many lines there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Entry {
        Entry::plain("12:00", text.to_owned())
    }

    fn texts(rows: &[Row]) -> Vec<String> {
        rows.iter().map(Row::text).collect()
    }

    #[test]
    fn kinds_come_from_the_first_character() {
        assert_eq!(line("* lisi joined").kind, Kind::Info);
        assert_eq!(line("! too-long: no").kind, Kind::Problem);
        assert_eq!(line("lisi: hi").kind, Kind::Chat);
        let said = Entry::from_pieces(
            "12:00",
            vec![
                Piece::Text(String::new()),
                Piece::Name("*star".into()),
                Piece::Text(": hi".into()),
            ],
        );
        assert_eq!(said.kind, Kind::Chat);
    }

    #[test]
    fn wraps_by_columns_with_wide_characters_and_an_indent() {
        let entry = Entry::from_pieces(
            "09:05",
            vec![
                Piece::Name("张三".into()),
                Piece::Text(": 你好你好你好".into()),
            ],
        );
        let rows = wrap(&entry, 16);
        // "09:05 " 6 + 张三 4 + ": " 2 + 你好 4 = 16 columns.
        assert_eq!(texts(&rows), ["09:05 张三: 你好", "      你好你好"]);
        assert_eq!(rows[0].segments[0], ("09:05 ".into(), Role::Time));
        assert_eq!(
            rows[0].segments[1],
            ("张三".into(), Role::Name(colour_index("张三")))
        );
        for row in &rows {
            assert!(row.text().width() <= 16);
        }
        // A wide character never straddles the edge.
        let rows = wrap(&entry, 15);
        assert_eq!(texts(&rows)[0], "09:05 张三: 你");
        // Too narrow for an indent: still every character.
        let rows = wrap(&line("abc"), 2);
        assert_eq!(texts(&rows), ["12", ":0", "0 ", "ab", "c"]);
        // Between words where it can; a word longer than a row is cut.
        let rows = wrap(&line("one two three fourteen-letters!!"), 16);
        assert_eq!(
            texts(&rows),
            [
                "12:00 one two ",
                "      three four",
                "      teen-lette",
                "      rs!!"
            ]
        );
    }

    fn filled(lines: usize, width: usize, height: usize) -> Scrollback {
        let mut s = Scrollback::default();
        s.set_viewport(width, height);
        for i in 0..lines {
            s.push(line(&format!("line {i}")));
        }
        s
    }

    #[test]
    fn pages_stay_within_the_lines() {
        let mut s = filled(20, 40, 5);
        assert_eq!(texts(&s.visible())[4], "12:00 line 19");
        s.page_down(); // already at the bottom
        assert_eq!(s.offset(), 0);
        s.page_up();
        assert_eq!(s.offset(), 4);
        assert_eq!(texts(&s.visible())[4], "12:00 line 15");
        for _ in 0..10 {
            s.page_up();
        }
        // The first line at the top, no further.
        assert_eq!(s.offset(), 15);
        assert_eq!(texts(&s.visible())[0], "12:00 line 0");
        s.page_down();
        assert_eq!(s.offset(), 11);
        s.scroll_down(100);
        assert_eq!(s.offset(), 0);
        // Fewer lines than the screen: nowhere to go.
        let mut s = filled(3, 40, 5);
        s.page_up();
        assert_eq!(s.offset(), 0);
        assert_eq!(s.visible().len(), 3);
    }

    #[test]
    fn new_lines_do_not_move_a_paged_up_view() {
        let mut s = filled(20, 40, 5);
        s.page_up();
        let before = texts(&s.visible());
        s.push(line("news"));
        s.push(line("a long line that wraps onto a second row here"));
        assert_eq!(texts(&s.visible()), before);
        assert_eq!(s.unseen(), 2);
        s.bottom();
        assert_eq!(s.unseen(), 0);
        assert_eq!(texts(&s.visible())[4], "      second row here");
        assert_eq!(
            texts(&s.visible())[3],
            "12:00 a long line that wraps onto a "
        );
    }

    #[test]
    fn a_resize_keeps_the_lines_and_bounds_the_place() {
        let mut s = filled(10, 40, 5);
        s.scroll_up(5);
        assert_eq!(s.offset(), 5);
        // Taller: less to scroll through.
        s.set_viewport(40, 8);
        assert_eq!(s.offset(), 2);
        // Narrower: lines wrap, nothing is lost.
        s.bottom();
        s.set_viewport(8, 30);
        let rows = texts(&s.visible());
        assert_eq!(rows.len(), 20);
        assert_eq!(rows[0], "12:00 ");
        assert_eq!(rows[1], "line 0");
    }

    #[test]
    fn keeps_a_bounded_number_of_lines() {
        let mut s = filled(MAX_ENTRIES + 3, 40, 5);
        assert_eq!(s.len(), MAX_ENTRIES);
        s.scroll_up(usize::MAX / 2);
        assert_eq!(s.offset(), MAX_ENTRIES - 5);
        assert_eq!(texts(&s.visible())[0], "12:00 line 3");
        // Paged up to the top when the oldest line goes: the view stays
        // at the top.
        s.push(line("newest"));
        assert_eq!(s.offset(), MAX_ENTRIES - 5);
        assert_eq!(texts(&s.visible())[0], "12:00 line 4");
    }
}
