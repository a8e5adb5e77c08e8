//! Drawing the full-screen client's state with ratatui: the scrollback, the
//! user list beside it, the status bar, and the input line at the bottom.
//!
//! ```text
//! 09:05 * lisi joined                              │ lobby (2)
//! 09:06 lisi: did you have dinner                  │ lisi
//! 09:06 zhangsan: yes                              │ zhangsan
//!  connected as zhangsan in lobby · 1 waiting · paged up, 3 new below
//! lobby> not y|
//! ```
//!
//! A function of the state and the time, nothing else: it reads the state
//! and tells the scrollback its size, so paging knows a screen's height.
//! The input line is its own row, redrawn from the editor on every frame,
//! so incoming lines can never garble what is being typed. Widths are
//! terminal columns (ratatui's buffer and unicode-width): a Chinese
//! character takes two cells and is never cut in half.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Padding, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::app::App;
use super::scrollback::{Kind, Role, Row};
use super::users::{PALETTE_SIZE, colour_index};

/// The colours names are drawn in: readable on dark and light
/// backgrounds alike, blue (too dark on black) left out.
const PALETTE: [Color; PALETTE_SIZE] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// The style of `name`.
fn name_style(index: usize) -> Style {
    Style::default()
        .fg(PALETTE[index % PALETTE_SIZE])
        .add_modifier(Modifier::BOLD)
}

/// The user list is shown only on screens at least this wide.
const MIN_WIDTH_FOR_USERS: u16 = 50;

/// Draws the whole screen.
pub(crate) fn frame(frame: &mut Frame<'_>, app: &mut App, now: Instant) {
    let [main, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let room = app.view.current_name();
    let names: Option<Vec<String>> = app
        .users
        .sorted(&app.current_room_key())
        .map(|names| names.into_iter().map(String::from).collect());
    let (lines, users) = if main.width >= MIN_WIDTH_FOR_USERS {
        let widest = names
            .iter()
            .flatten()
            .map(|n| n.width())
            .chain([room.width() + 5])
            .max()
            .unwrap_or(0);
        let side = (widest as u16 + 3).clamp(12, main.width / 3);
        let [lines, users] =
            Layout::horizontal([Constraint::Min(1), Constraint::Length(side)]).areas(main);
        (lines, Some(users))
    } else {
        (main, None)
    };
    scrollback(frame, app, lines);
    if let Some(area) = users {
        let connected = app.status.is_connected();
        user_list(frame, &room, names.as_deref(), connected, area);
    }
    status_bar(frame, app, now, &room, status);
    input_line(frame, app, &room, input);
}

fn scrollback(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    app.scrollback
        .set_viewport(usize::from(area.width), usize::from(area.height));
    let lines: Vec<Line<'_>> = app.scrollback.visible().into_iter().map(row).collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// One wrapped row, styled.
fn row(row: Row) -> Line<'static> {
    let text = match row.kind {
        Kind::Chat => Style::default(),
        Kind::Info => Style::default().fg(Color::DarkGray),
        Kind::Problem => Style::default().fg(Color::Yellow),
    };
    let spans: Vec<Span<'static>> = row
        .segments
        .into_iter()
        .map(|(s, role)| {
            let style = match role {
                Role::Time => Style::default().fg(Color::DarkGray),
                Role::Text => text,
                Role::Name(i) => name_style(i),
            };
            Span::styled(s, style)
        })
        .collect();
    Line::from(spans)
}

fn user_list(
    frame: &mut Frame<'_>,
    room: &str,
    names: Option<&[String]>,
    connected: bool,
    area: Rect,
) {
    let title = match names {
        Some(names) => format!(" {room} ({}) ", names.len()),
        None => format!(" {room} "),
    };
    let dim = if connected {
        Style::default()
    } else {
        Style::default().add_modifier(Modifier::DIM)
    };
    let lines: Vec<Line<'_>> = match names {
        Some(names) => names
            .iter()
            .map(|n| {
                Line::from(Span::styled(
                    n.as_str(),
                    name_style(colour_index(n)).patch(dim),
                ))
            })
            .collect(),
        None => vec![Line::from(Span::styled(
            "…",
            Style::default().fg(Color::DarkGray),
        ))],
    };
    let block = Block::default()
        .borders(Borders::LEFT)
        .border_style(Style::default().fg(Color::DarkGray))
        .padding(Padding::left(1))
        .title(title);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn status_bar(frame: &mut Frame<'_>, app: &App, now: Instant, room: &str, area: Rect) {
    let mut text = format!(" {}", app.status.describe(now, room));
    let waiting = app.unsent().count();
    if waiting > 0 {
        text.push_str(&format!(" · {waiting} waiting to be sent"));
    }
    if app.scrollback.offset() > 0 {
        match app.scrollback.unseen() {
            0 => text.push_str(" · paged up (PageDown returns)"),
            n => text.push_str(&format!(" · paged up, {n} new below")),
        }
    }
    let style = Style::default().add_modifier(Modifier::REVERSED);
    frame.render_widget(Paragraph::new(text).style(style), area);
}

fn input_line(frame: &mut Frame<'_>, app: &App, room: &str, area: Rect) {
    let width = usize::from(area.width);
    // The prompt takes at most a third of the line.
    let mut prompt = format!("{room}> ");
    while prompt.width() > width / 3 && prompt.chars().count() > 2 {
        prompt.remove(0);
    }
    let room_width = prompt.width();
    let (range, column) = app.editor.window(width.saturating_sub(room_width));
    let line = Line::from(vec![
        Span::styled(prompt, Style::default().fg(Color::DarkGray)),
        Span::raw(&app.editor.text()[range]),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    let x = area.x + (room_width + column).min(width.saturating_sub(1)) as u16;
    frame.set_cursor_position((x, area.y));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::Now;
    use chat_proto::Event;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(terminal: &Terminal<TestBackend>) -> Vec<String> {
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                let mut line = String::new();
                let mut hidden = 0;
                for x in 0..buffer.area.width {
                    // The cell after a wide character is hidden by it.
                    let symbol = buffer[(x, y)].symbol();
                    if hidden > 0 {
                        hidden -= 1;
                        continue;
                    }
                    hidden = symbol.width().saturating_sub(1);
                    line.push_str(symbol);
                }
                line
            })
            .collect()
    }

    #[test]
    fn draws_the_room_the_users_and_the_half_typed_line() {
        let now = Now {
            instant: Instant::now(),
            time: "09:06".into(),
        };
        let mut app = App::new("张三", "127.0.0.1:7878");
        app.on_event(
            &Event::LoggedIn {
                name: "张三".into(),
            },
            &now,
        );
        app.on_event(
            &Event::Joined {
                room: "lobby".into(),
                name: "张三".into(),
            },
            &now,
        );
        app.on_event(
            &Event::Users {
                room: "lobby".into(),
                names: vec!["张三".into(), "lisi".into()],
            },
            &now,
        );
        app.on_event(
            &Event::Message {
                room: "lobby".into(),
                from: "lisi".into(),
                text: "你吃饭了吗".into(),
                offset: None,
                history: false,
            },
            &now,
        );
        app.editor.insert("吃了，你呢");
        let mut terminal = Terminal::new(TestBackend::new(60, 8)).unwrap();
        terminal.draw(|f| frame(f, &mut app, now.instant)).unwrap();
        let lines = screen(&terminal);
        assert!(lines[0].contains("09:06 * logged in as 张三"), "{lines:#?}");
        assert!(lines[0].contains("│ lobby (2)"), "{lines:#?}");
        assert!(lines[1].contains("│ lisi"), "{lines:#?}");
        assert!(lines[2].contains("│ 张三"), "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("09:06 lisi: 你吃饭了吗")),
            "{lines:#?}"
        );
        assert!(lines[6].starts_with(" connected as 张三 in lobby"));
        assert_eq!(lines[7].trim_end(), "lobby> 吃了，你呢");
        // The cursor stands after the typed text: 7 + 5 wide characters.
        terminal.backend_mut().assert_cursor_position((17, 7));
        // Narrow: no user list, the text wraps, the input scrolls.
        let mut terminal = Terminal::new(TestBackend::new(20, 8)).unwrap();
        terminal.draw(|f| frame(f, &mut app, now.instant)).unwrap();
        let lines = screen(&terminal);
        assert!(!lines.iter().any(|l| l.contains('│')), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.trim_end() == "      你吃饭了吗"),
            "{lines:#?}"
        );
        assert_eq!(lines[7].trim_end(), "obby> 吃了，你呢", "{lines:#?}");
    }
}
