//! The input line of the full-screen client: the text being typed, its
//! cursor, and the history of lines sent.
//!
//! Pure state, driven by the key handling in [`app`](super::app): no
//! terminal here. The cursor moves by grapheme cluster (what a person sees
//! as one character: `é` typed as `e` and a combining accent, or an emoji
//! with a skin tone, moves and deletes as one), and
//! [`Editor::window`] says which part of a line wider than the screen is
//! shown, measured in terminal columns, so wide characters (Chinese) keep
//! the cursor in its place. Control characters never enter the line: the
//! protocol refuses them, and a line break from a paste becomes a space.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// At most this many sent lines are remembered.
const HISTORY: usize = 500;

/// The line being typed, and the lines sent before it.
#[derive(Debug, Default)]
pub(crate) struct Editor {
    /// The text.
    text: String,
    /// The cursor, a byte offset on a grapheme boundary of `text`.
    cursor: usize,
    /// Lines sent, oldest first.
    history: Vec<String>,
    /// While browsing the history: the entry shown, and the line that was
    /// being typed before, given back after the newest entry.
    browsing: Option<(usize, String)>,
}

impl Editor {
    /// The text typed so far.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Whether nothing is typed.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Inserts what was typed or pasted at the cursor: line breaks become
    /// spaces and other control characters (but TAB) are dropped.
    pub(crate) fn insert(&mut self, typed: &str) {
        let clean: String = typed
            .chars()
            .filter_map(|c| match c {
                '\r' | '\n' => Some(' '),
                '\t' => Some(c),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    /// The start of the grapheme before the cursor, if any.
    fn previous(&self) -> Option<usize> {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map(|(i, _)| i)
    }

    /// The end of the grapheme after the cursor, if any.
    fn next(&self) -> Option<usize> {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map(|g| self.cursor + g.len())
    }

    /// Moves one character left.
    pub(crate) fn left(&mut self) {
        if let Some(i) = self.previous() {
            self.cursor = i;
        }
    }

    /// Moves one character right.
    pub(crate) fn right(&mut self) {
        if let Some(i) = self.next() {
            self.cursor = i;
        }
    }

    /// Moves to the start of the line.
    pub(crate) fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves to the end of the line.
    pub(crate) fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// The start of the word before the cursor (spaces before it skipped).
    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8())
    }

    /// The end of the word after the cursor (spaces before it skipped).
    fn word_end(&self) -> usize {
        let after = &self.text[self.cursor..];
        let skipped = after.len() - after.trim_start().len();
        let word = &after[skipped..];
        let len = word.find(char::is_whitespace).unwrap_or(word.len());
        self.cursor + skipped + len
    }

    /// Moves to the start of the word before the cursor.
    pub(crate) fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    /// Moves past the end of the word after the cursor.
    pub(crate) fn word_right(&mut self) {
        self.cursor = self.word_end();
    }

    /// Deletes the character before the cursor (Backspace).
    pub(crate) fn backspace(&mut self) {
        if let Some(i) = self.previous() {
            self.text.replace_range(i..self.cursor, "");
            self.cursor = i;
        }
    }

    /// Deletes the character under the cursor (Delete).
    pub(crate) fn delete(&mut self) {
        if let Some(end) = self.next() {
            self.text.replace_range(self.cursor..end, "");
        }
    }

    /// Deletes from the start of the line to the cursor (Ctrl-U).
    pub(crate) fn kill_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Deletes from the cursor to the end of the line (Ctrl-K).
    pub(crate) fn kill_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }

    /// Deletes the word before the cursor (Ctrl-W).
    pub(crate) fn kill_word(&mut self) {
        let start = self.word_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Takes the line to send (Enter): the editor is empty afterwards, and
    /// the line, unless blank or the same as the last one, joins the
    /// history.
    pub(crate) fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// Shows the previous line of the history (Up).
    pub(crate) fn history_back(&mut self) {
        let index = match &self.browsing {
            None if self.history.is_empty() => return,
            None => {
                let draft = std::mem::take(&mut self.text);
                self.browsing = Some((self.history.len(), draft));
                self.history.len() - 1
            }
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
        };
        if let Some((shown, _)) = &mut self.browsing {
            *shown = index;
        }
        self.show(self.history[index].clone());
    }

    /// Shows the next line of the history, and after the newest the line
    /// that was being typed (Down).
    pub(crate) fn history_forward(&mut self) {
        let Some((shown, _)) = &mut self.browsing else {
            return;
        };
        *shown += 1;
        if *shown < self.history.len() {
            let line = self.history[*shown].clone();
            self.show(line);
        } else if let Some((_, draft)) = self.browsing.take() {
            self.show(draft);
        }
    }

    fn show(&mut self, line: String) {
        self.text = line;
        self.cursor = self.text.len();
    }

    /// What to show of the line in `width` columns: the byte range of the
    /// text, and the cursor's column within it. The cursor always has a
    /// column to stand in, at the end of the line too.
    pub(crate) fn window(&self, width: usize) -> (std::ops::Range<usize>, usize) {
        if width == 0 {
            return (self.cursor..self.cursor, 0);
        }
        // Drop graphemes from the left until the cursor fits.
        let mut start = 0;
        let mut before = self.text[..self.cursor].width();
        for grapheme in self.text[..self.cursor].graphemes(true) {
            if before < width {
                break;
            }
            start += grapheme.len();
            before -= grapheme.width();
        }
        // Then take what fits on the right.
        let mut end = self.cursor;
        let mut used = before;
        for grapheme in self.text[self.cursor..].graphemes(true) {
            let w = grapheme.width();
            if used + w > width {
                break;
            }
            used += w;
            end += grapheme.len();
        }
        (start..end, before)
    }

    /// The line sent most recently, if any.
    #[cfg(test)]
    pub(crate) fn history(&self) -> &[String] {
        &self.history
    }

    /// The cursor's byte offset.
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Editor {
        let mut editor = Editor::default();
        editor.insert(text);
        editor
    }

    #[test]
    fn moves_and_deletes_by_character_wide_or_combined() {
        let mut e = typed("a张e\u{301}b");
        e.left();
        e.left(); // before the e with its accent
        e.backspace(); // the wide character
        assert_eq!(e.text(), "ae\u{301}b");
        e.delete(); // e and its accent at once
        assert_eq!(e.text(), "ab");
        e.home();
        e.backspace(); // nothing before
        e.right();
        e.insert("三");
        assert_eq!(e.text(), "a三b");
        e.end();
        e.delete(); // nothing after
        assert_eq!(e.text(), "a三b");
        assert_eq!(e.cursor(), e.text().len());
    }

    #[test]
    fn kills_to_start_to_end_and_words() {
        let mut e = typed("did you  have dinner");
        e.kill_word();
        assert_eq!(e.text(), "did you  have ");
        e.kill_word(); // spaces and the word before them
        assert_eq!(e.text(), "did you  ");
        e.word_left();
        assert_eq!(e.cursor(), 4);
        e.kill_to_end();
        assert_eq!(e.text(), "did ");
        e.insert("we");
        e.word_left();
        e.word_right();
        assert_eq!(e.cursor(), 6);
        e.left();
        e.kill_to_start();
        assert_eq!(e.text(), "e");
        assert_eq!(e.cursor(), 0);
    }

    #[test]
    fn paste_keeps_one_line_without_control_characters() {
        let e = typed("one\r\ntwo\u{1b}[31m\tthree");
        assert_eq!(e.text(), "one  two[31m\tthree");
    }

    #[test]
    fn history_goes_back_and_forth_and_keeps_the_draft() {
        let mut e = Editor::default();
        e.history_back(); // nothing yet
        assert!(e.is_empty());
        for line in ["first", "second", "second", "   "] {
            e.insert(line);
            assert_eq!(e.take(), line);
        }
        // Blank and repeated lines are not remembered twice.
        assert_eq!(e.history(), ["first", "second"]);
        e.insert("draft");
        e.history_back();
        assert_eq!(e.text(), "second");
        e.history_back();
        assert_eq!(e.text(), "first");
        e.history_back(); // the oldest stays
        assert_eq!(e.text(), "first");
        e.history_forward();
        assert_eq!(e.text(), "second");
        e.history_forward();
        assert_eq!(e.text(), "draft");
        e.history_forward(); // nothing after the draft
        assert_eq!(e.text(), "draft");
        // A recalled line, edited and sent, is a new entry.
        e.kill_to_start();
        e.history_back();
        e.insert("!");
        assert_eq!(e.take(), "second!");
        assert_eq!(e.history(), ["first", "second", "second!"]);
    }

    #[test]
    fn history_is_bounded() {
        let mut e = Editor::default();
        for i in 0..HISTORY + 10 {
            e.insert(&i.to_string());
            e.take();
        }
        assert_eq!(e.history().len(), HISTORY);
        assert_eq!(e.history()[0], "10");
    }

    #[test]
    fn the_window_follows_the_cursor_in_columns() {
        let mut e = typed("你好世界abc");
        // 8 + 3 = 11 columns; the cursor at the end needs a 12th.
        let (range, column) = e.window(20);
        assert_eq!((&e.text()[range], column), ("你好世界abc", 11));
        let (range, column) = e.window(6);
        assert_eq!((&e.text()[range], column), ("界abc", 5));
        e.home();
        let (range, column) = e.window(6);
        assert_eq!((&e.text()[range], column), ("你好世", 0));
        e.right();
        e.right();
        e.right(); // before 界
        let (range, column) = e.window(5);
        // 你好世 is 6 columns: 你 scrolls out, and 界 would pass the edge.
        assert_eq!((&e.text()[range], column), ("好世", 4));
        let (range, column) = e.window(0);
        assert_eq!((range.len(), column), (0, 0));
    }
}
