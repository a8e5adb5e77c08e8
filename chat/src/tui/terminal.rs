//! Taking over the terminal for the full-screen client, and giving it back
//! whatever happens.
//!
//! [`Screen::enter`] switches to raw mode and the alternate screen, and
//! turns on mouse reports (for the wheel) and bracketed paste (a paste
//! arrives whole, not as keys). The terminal is given back by one function,
//! [`restore`], which runs at most once per takeover and is reached from
//! every way out: the [`Screen`] dropped on a normal exit or an error (the
//! stack unwinds through it too), and a panic hook that restores before
//! the default hook prints, so a panic's message lands on the normal
//! screen, readable, and the shell is usable afterwards.
//!
//! While the screen is taken, log lines must not be written to the
//! terminal under it: [`LogWriter`], the log writer of `chat connect`,
//! hands them to the client (which shows them in the scrollback) while the
//! screen is taken, and writes them to stderr otherwise.

use std::io::{self, Stdout, Write, stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Whether the terminal is taken (raw mode, alternate screen).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Where log lines go while the terminal is taken.
static LOGS: Mutex<Option<UnboundedSender<String>>> = Mutex::new(None);

/// The terminal, taken for drawing; given back when dropped.
#[derive(Debug)]
pub(crate) struct Screen {
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Takes the terminal. Log lines from now on arrive on the receiver.
    pub(crate) fn enter() -> io::Result<(Screen, UnboundedReceiver<String>)> {
        install_panic_hook();
        let (sender, logs) = unbounded_channel();
        *LOGS.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        enable_raw_mode()?;
        TAKEN.store(true, Ordering::SeqCst);
        let taken = execute!(
            stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        )
        .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())));
        match taken {
            Ok(terminal) => Ok((Screen { terminal }, logs)),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back as it was: raw mode off, the normal screen, the
/// cursor shown, no mouse reports. Does nothing unless the terminal is
/// taken, so any number of ways out may call it.
pub(crate) fn restore() {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    *LOGS.lock().unwrap_or_else(|e| e.into_inner()) = None;
    // Raw mode first: it matters most to the shell, and needs no output.
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal before a panic's message is printed (once per
/// process, however many screens are taken).
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// The log writer of `chat connect`: into the client's scrollback while
/// the terminal is taken, to stderr otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogWriter;

/// One log record being written.
#[derive(Debug, Default)]
pub(crate) struct LogRecord {
    bytes: Vec<u8>,
}

impl Write for LogRecord {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
        match logs.as_ref() {
            Some(sender) if TAKEN.load(Ordering::SeqCst) => {
                let text = String::from_utf8_lossy(&self.bytes);
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    // Nothing from a log may drive the terminal.
                    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
                    let _ = sender.send(clean);
                }
            }
            _ => {
                let _ = io::stderr().write_all(&self.bytes);
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogRecord;

    fn make_writer(&'a self) -> LogRecord {
        LogRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests share the process's terminal state: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_panic_gives_the_terminal_back_before_its_message_is_printed() {
        use std::sync::atomic::AtomicU8;
        // What the hook found when it printed: 1 taken, 2 given back.
        static FOUND: AtomicU8 = AtomicU8::new(0);
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // The hook in place before ours stands for the default one, which
        // prints the message.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {
            let taken = TAKEN.load(Ordering::SeqCst);
            FOUND.store(if taken { 1 } else { 2 }, Ordering::SeqCst);
        }));
        install_panic_hook();
        TAKEN.store(true, Ordering::SeqCst);
        let outcome = std::panic::catch_unwind(|| panic!("in the full-screen client"));
        let _ = std::panic::take_hook();
        std::panic::set_hook(default);
        assert!(outcome.is_err());
        assert_eq!(FOUND.load(Ordering::SeqCst), 2, "printed while still taken");
        assert!(!TAKEN.load(Ordering::SeqCst));
    }

    #[test]
    fn logs_go_to_the_screen_only_while_it_is_taken() {
        use tracing_subscriber::fmt::MakeWriter;
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (sender, mut logs) = unbounded_channel();
        *LOGS.lock().unwrap() = Some(sender);
        TAKEN.store(true, Ordering::SeqCst);
        let mut record = LogWriter.make_writer();
        record.write_all(b"WARN \x1b[31mlost\x1b[0m\n").unwrap();
        drop(record);
        assert_eq!(logs.try_recv().unwrap(), "WARN [31mlost[0m");
        // Given back (here without a terminal to give back: raw mode off
        // fails quietly): the channel is closed, logs go to stderr.
        TAKEN.store(false, Ordering::SeqCst);
        *LOGS.lock().unwrap() = None;
        let mut record = LogWriter.make_writer();
        record.write_all(b"to stderr\n").unwrap();
        drop(record);
        assert!(logs.try_recv().is_err());
    }
}
