//! What each key does in the full-screen client.
//!
//! | key | does |
//! |---|---|
//! | Enter | sends the line (or runs the slash command) |
//! | Left/Right, Ctrl-B/F | move a character |
//! | Ctrl-Left/Right, Alt-B/F | move a word |
//! | Home/End, Ctrl-A/E | go to the start or the end of the line |
//! | Backspace/Delete, Ctrl-H | delete a character before or under the cursor |
//! | Ctrl-U / Ctrl-K | delete to the start / to the end of the line |
//! | Ctrl-W, Alt-Backspace | delete the word before the cursor |
//! | Up/Down, Ctrl-P/N | recall the lines sent before |
//! | PageUp/PageDown, the wheel | page / scroll through the scrollback |
//! | Ctrl-End | back to the newest line |
//! | Ctrl-L | redraw the screen |
//! | Ctrl-C; Ctrl-D on an empty line | leave (Ctrl-D deletes otherwise) |
//!
//! A paste (bracketed by the terminal) is inserted whole, as one line.
//! Keys change the [`App`]'s state only; the I/O loop redraws after each.

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};

use super::app::{App, Now};

/// The keys, for `/help`.
pub(crate) const KEYS: &str = "keys: Enter sends; Left/Right, Home/End, Ctrl-A/E, Alt-B/F move; \
Backspace/Delete, Ctrl-U/K/W delete; Up/Down recall sent lines; PageUp/PageDown or the wheel \
scroll; Ctrl-L redraws; /quit, Ctrl-C or Ctrl-D (on an empty line) leave";

/// Rows the mouse wheel scrolls per notch.
const WHEEL_ROWS: usize = 3;

impl App {
    /// Acts on what the terminal reports.
    pub(crate) fn on_terminal(&mut self, event: TermEvent, now: &Now) {
        match event {
            TermEvent::Key(key) => self.on_key(key, now),
            TermEvent::Paste(text) => self.editor.insert(&text),
            TermEvent::Mouse(mouse) => self.on_mouse(mouse),
            // Resizes need only a redraw, which follows every event.
            _ => {}
        }
    }

    /// The mouse wheel scrolls.
    fn on_mouse(&mut self, mouse: MouseEvent) {
        match mouse.kind {
            MouseEventKind::ScrollUp => self.scrollback.scroll_up(WHEEL_ROWS),
            MouseEventKind::ScrollDown => self.scrollback.scroll_down(WHEEL_ROWS),
            _ => {}
        }
    }

    /// Acts on a key.
    pub(crate) fn on_key(&mut self, key: KeyEvent, now: &Now) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let e = &mut self.editor;
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = Some("interrupted"),
            KeyCode::Char('d') if ctrl && e.is_empty() => self.quit = Some("bye"),
            KeyCode::Char('d') if ctrl => e.delete(),
            KeyCode::Char('a') if ctrl => e.home(),
            KeyCode::Char('e') if ctrl => e.end(),
            KeyCode::Char('b') if ctrl => e.left(),
            KeyCode::Char('f') if ctrl => e.right(),
            KeyCode::Char('b') if alt => e.word_left(),
            KeyCode::Char('f') if alt => e.word_right(),
            KeyCode::Char('h') if ctrl => e.backspace(),
            KeyCode::Char('u') if ctrl => e.kill_to_start(),
            KeyCode::Char('k') if ctrl => e.kill_to_end(),
            KeyCode::Char('w') if ctrl => e.kill_word(),
            KeyCode::Char('p') if ctrl => e.history_back(),
            KeyCode::Char('n') if ctrl => e.history_forward(),
            KeyCode::Char('l') if ctrl => self.clear = true,
            KeyCode::Char(c) if !ctrl && !alt => {
                let mut buf = [0; 4];
                e.insert(c.encode_utf8(&mut buf));
            }
            KeyCode::Enter => self.submit(now),
            KeyCode::Backspace if alt || ctrl => e.kill_word(),
            KeyCode::Backspace => e.backspace(),
            KeyCode::Delete => e.delete(),
            KeyCode::Left if ctrl || alt => e.word_left(),
            KeyCode::Right if ctrl || alt => e.word_right(),
            KeyCode::Left => e.left(),
            KeyCode::Right => e.right(),
            KeyCode::Home => e.home(),
            KeyCode::End if ctrl => self.scrollback.bottom(),
            KeyCode::End => e.end(),
            KeyCode::Up => e.history_back(),
            KeyCode::Down => e.history_forward(),
            KeyCode::PageUp => self.scrollback.page_up(),
            KeyCode::PageDown => self.scrollback.page_down(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::app::testing::*;
    use super::*;

    #[test]
    fn editing_keys_reach_the_input_line() {
        let mut app = App::new("me", "a");
        type_line(&mut app, "hello wrld");
        for _ in 0..3 {
            app.on_key(key(KeyCode::Left), &now());
        }
        app.on_key(key(KeyCode::Char('o')), &now());
        assert_eq!(app.editor.text(), "hello world");
        app.on_key(ctrl('a'), &now());
        app.on_key(key(KeyCode::Delete), &now());
        app.on_key(ctrl('e'), &now());
        app.on_key(key(KeyCode::Backspace), &now());
        assert_eq!(app.editor.text(), "ello worl");
        app.on_key(ctrl('w'), &now());
        assert_eq!(app.editor.text(), "ello ");
        app.on_key(key(KeyCode::Home), &now());
        app.on_key(key(KeyCode::Char('H')), &now());
        app.on_key(key(KeyCode::End), &now());
        type_line(&mut app, "你好");
        assert_eq!(app.editor.text(), "Hello 你好");
        app.on_key(ctrl('u'), &now());
        assert!(app.editor.is_empty());
        // Ctrl-D deletes while there is text, and leaves on an empty line.
        type_line(&mut app, "ab");
        app.on_key(ctrl('a'), &now());
        app.on_key(ctrl('d'), &now());
        assert_eq!(app.editor.text(), "b");
        assert_eq!(app.take_quit(), None);
        app.on_key(ctrl('e'), &now());
        app.on_key(ctrl('u'), &now());
        app.on_key(ctrl('d'), &now());
        assert_eq!(app.take_quit(), Some("bye"));
        app.on_key(ctrl('c'), &now());
        assert_eq!(app.take_quit(), Some("interrupted"));
        // Key releases (reported by some terminals) do nothing.
        let mut release = key(KeyCode::Char('x'));
        release.kind = KeyEventKind::Release;
        app.on_key(release, &now());
        assert!(app.editor.is_empty());
    }

    #[test]
    fn sent_lines_come_back_with_up_and_down() {
        let mut app = logged_in();
        enter(&mut app, "first");
        enter(&mut app, "second");
        type_line(&mut app, "draft");
        app.on_key(key(KeyCode::Up), &now());
        assert_eq!(app.editor.text(), "second");
        app.on_key(key(KeyCode::Up), &now());
        assert_eq!(app.editor.text(), "first");
        app.on_key(key(KeyCode::Down), &now());
        app.on_key(key(KeyCode::Down), &now());
        assert_eq!(app.editor.text(), "draft");
    }

    #[test]
    fn paging_keys_and_the_wheel_scroll_within_bounds() {
        let mut app = logged_in();
        let n = now();
        app.scrollback.set_viewport(80, 4);
        for i in 0..10 {
            app.note(&n, format!("line {i}"));
        }
        app.on_key(key(KeyCode::PageUp), &n);
        assert_eq!(app.scrollback.offset(), 3);
        for _ in 0..20 {
            app.on_key(key(KeyCode::PageUp), &n);
        }
        let top = app.scrollback.offset();
        app.on_terminal(
            TermEvent::Mouse(MouseEvent {
                kind: MouseEventKind::ScrollUp,
                column: 0,
                row: 0,
                modifiers: KeyModifiers::NONE,
            }),
            &n,
        );
        assert_eq!(app.scrollback.offset(), top);
        app.on_terminal(
            TermEvent::Mouse(MouseEvent {
                kind: MouseEventKind::ScrollDown,
                column: 0,
                row: 0,
                modifiers: KeyModifiers::NONE,
            }),
            &n,
        );
        assert_eq!(app.scrollback.offset(), top - WHEEL_ROWS);
        // Sending a line goes back to the bottom.
        enter(&mut app, "back");
        assert_eq!(app.scrollback.offset(), 0);
        app.on_key(key(KeyCode::PageDown), &n);
        assert_eq!(app.scrollback.offset(), 0);
    }

    #[test]
    fn pastes_become_one_line() {
        let mut app = App::new("me", "a");
        app.on_terminal(TermEvent::Paste("one\ntwo".into()), &now());
        assert_eq!(app.editor.text(), "one two");
    }
}
