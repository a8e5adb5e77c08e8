//! Just enough IRC (RFC 2812) for the fan-out scenario against an IRC
//! server such as ngircd.
//!
//! * [`Lines`] splits the byte stream into lines (CR LF, or LF alone),
//!   keeping an unfinished line for the next read, and skips lines longer
//!   than its limit.
//! * [`Line`] parses one line (`[@tags] [:prefix] COMMAND params [:trailing]`)
//!   without copying.
//! * [`register`] logs a client in and into its channel: `NICK` and `USER`,
//!   the welcome (`001`), `JOIN`, and the end of the channel's names
//!   (`366`), answering `PING` on the way. A refused nickname or join fails
//!   it.
//!
//! A load message is said as `PRIVMSG #chan :TEXT` with the chat mode's
//! text, and heard as `:nick!user@host PRIVMSG #chan :TEXT`. IRC servers do
//! not send a sender its own `PRIVMSG`.

use std::io;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::LoadError;

/// A line longer than the limit: skipped up to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The limit, bytes.
    pub max: usize,
}

/// Splits a byte stream into lines.
#[derive(Debug)]
pub struct Lines {
    partial: Vec<u8>,
    max: usize,
    /// Dropping the rest of an overlong line, up to its LF.
    skipping: bool,
}

impl Lines {
    /// A splitter for lines of at most `max` bytes (line end excluded).
    pub fn new(max: usize) -> Self {
        Lines {
            partial: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Hands `f` every line `input` completes, without its CR LF (or LF),
    /// empty lines left out; keeps an unfinished line for the next call.
    pub fn feed(&mut self, mut input: &[u8], mut f: impl FnMut(Result<&[u8], TooLong>)) {
        let max = self.max;
        while let Some(end) = input.iter().position(|&b| b == b'\n') {
            let head = &input[..end];
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                emit(head, max, &mut f);
            } else {
                self.partial.extend_from_slice(head);
                emit(&self.partial, max, &mut f);
                self.partial.clear();
            }
            input = &input[end + 1..];
        }
        if self.skipping || input.is_empty() {
            return;
        }
        // One byte over: room for the CR of a line of exactly `max`.
        if self.partial.len() + input.len() > max + 1 {
            f(Err(TooLong { max }));
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(input);
        }
    }
}

/// Hands `f` one complete line without its CR, unless it is empty.
#[inline]
fn emit<F: FnMut(Result<&[u8], TooLong>)>(line: &[u8], max: usize, f: &mut F) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max {
        f(Err(TooLong { max }));
    } else if !line.is_empty() {
        f(Ok(line));
    }
}

/// One IRC line, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The source (`nick!user@host` or a server name), without its `:`.
    pub prefix: Option<&'a str>,
    /// The command or three-digit numeric.
    pub command: &'a str,
    rest: &'a str,
}

impl<'a> Line<'a> {
    /// Parses a line; `None` if it has no command.
    pub fn parse(line: &'a str) -> Option<Line<'a>> {
        let mut line = line.trim_start_matches(' ');
        if line.starts_with('@') {
            // IRCv3 message tags: not asked for, but harmless.
            line = line.split_once(' ')?.1.trim_start_matches(' ');
        }
        let (prefix, rest) = match line.strip_prefix(':') {
            Some(p) => {
                let (prefix, rest) = p.split_once(' ')?;
                (Some(prefix), rest.trim_start_matches(' '))
            }
            None => (None, line),
        };
        let (command, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return None;
        }
        Some(Line {
            prefix,
            command,
            rest,
        })
    }

    /// The parameters, the trailing one (after ` :`) last.
    pub fn params(&self) -> Params<'a> {
        Params { rest: self.rest }
    }

    /// The `n`th parameter.
    pub fn param(&self, n: usize) -> Option<&'a str> {
        self.params().nth(n)
    }

    /// The nickname of the source (the prefix up to `!` or `@`).
    pub fn nick(&self) -> Option<&'a str> {
        let prefix = self.prefix?;
        let end = prefix.find(['!', '@']).unwrap_or(prefix.len());
        Some(&prefix[..end])
    }

    /// A three-digit numeric reply, if the command is one.
    pub fn numeric(&self) -> Option<u16> {
        let c = self.command.as_bytes();
        if c.len() == 3 && c.iter().all(u8::is_ascii_digit) {
            self.command.parse().ok()
        } else {
            None
        }
    }
}

/// The parameters of a [`Line`].
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Params<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest.trim_start_matches(' ');
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            self.rest = "";
            return Some(trailing);
        }
        let (param, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        self.rest = rest;
        Some(param)
    }
}

/// Appends `PONG :TOKEN`.
pub fn pong(buf: &mut BytesMut, token: &str) {
    buf.put_slice(b"PONG :");
    buf.put_slice(token.as_bytes());
    buf.put_slice(b"\r\n");
}

/// Whether `nick` is a nickname every IRC server takes (RFC 2812: a letter,
/// then letters, digits and `-`; at most 30 bytes, the most ngircd allows).
pub fn valid_nick(nick: &str) -> bool {
    let b = nick.as_bytes();
    !b.is_empty()
        && b.len() <= 30
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Numerics that refuse a registration or a join: fatal for the run.
fn refusal(numeric: u16) -> bool {
    matches!(
        numeric,
        431..=437 | 451 | 461..=465 | 403 | 405 | 471 | 473..=477 | 479 | 489
    )
}

/// Registers as `nick` and joins `channel`, as [`Lines`] `lines` reads the
/// stream; returns once the server has sent the end of the channel's names
/// (`366`). Lines after it in the same read are dropped (pings answered).
pub async fn register(
    stream: &mut TcpStream,
    lines: &mut Lines,
    buf: &mut [u8],
    nick: &str,
    channel: &str,
) -> Result<(), LoadError> {
    let io_err = |e: io::Error| LoadError::Io(format!("{nick}: {e}"));
    let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
    stream.write_all(hello.as_bytes()).await.map_err(io_err)?;
    let (mut welcomed, mut join_sent, mut joined) = (false, false, false);
    while !joined {
        let n = stream.read(buf).await.map_err(io_err)?;
        if n == 0 {
            return Err(LoadError::Io(format!(
                "{nick}: the server closed the connection before {}",
                if welcomed {
                    "the join"
                } else {
                    "the welcome (001)"
                }
            )));
        }
        let mut out = BytesMut::new();
        let mut refused = None;
        lines.feed(&buf[..n], |line| {
            let Some(line) = line.ok().and_then(|l| std::str::from_utf8(l).ok()) else {
                return;
            };
            let Some(parsed) = Line::parse(line) else {
                return;
            };
            match (parsed.command, parsed.numeric()) {
                ("PING", _) => pong(&mut out, parsed.params().last().unwrap_or("")),
                ("ERROR", _) => {
                    refused.get_or_insert_with(|| line.to_string());
                }
                (_, Some(1)) => welcomed = true,
                (_, Some(366))
                    if parsed
                        .param(1)
                        .is_some_and(|c| c.eq_ignore_ascii_case(channel)) =>
                {
                    joined = true;
                }
                (_, Some(code)) if refusal(code) => {
                    refused.get_or_insert_with(|| line.to_string());
                }
                _ => {}
            }
        });
        if let Some(why) = refused {
            return Err(LoadError::Io(format!("{nick}: refused: {why}")));
        }
        if welcomed && !join_sent {
            join_sent = true;
            out.put_slice(format!("JOIN {channel}\r\n").as_bytes());
        }
        stream.write_all(&out).await.map_err(io_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(lines: &mut Lines, input: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        lines.feed(input, |l| {
            seen.push(match l {
                Ok(l) => String::from_utf8_lossy(l).into_owned(),
                Err(e) => format!("too long (max {})", e.max),
            })
        });
        seen
    }

    #[test]
    fn lines_end_at_lf_with_or_without_cr_across_reads() {
        let mut lines = Lines::new(64);
        assert_eq!(
            split(&mut lines, b"PING :a\r\n:x 001 me :hi\n\r\nJO"),
            ["PING :a", ":x 001 me :hi"]
        );
        assert_eq!(split(&mut lines, b"IN #b"), Vec::<String>::new());
        assert_eq!(split(&mut lines, b"ench\r"), Vec::<String>::new());
        assert_eq!(split(&mut lines, b"\nPONG\r\n"), ["JOIN #bench", "PONG"]);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped() {
        let mut lines = Lines::new(8);
        assert_eq!(split(&mut lines, b"0123456789"), ["too long (max 8)"]);
        assert_eq!(split(&mut lines, b"abc\nok\n"), ["ok"]);
        assert_eq!(
            split(&mut lines, b"0123456789\nok\n"),
            ["too long (max 8)", "ok"]
        );
        // Exactly the limit, CR LF included or not, is fine.
        assert_eq!(split(&mut lines, b"01234567\r"), Vec::<String>::new());
        assert_eq!(split(&mut lines, b"\n"), ["01234567"]);
    }

    #[test]
    fn lines_parse_into_prefix_command_and_params() {
        let l = Line::parse(":load3!~load3@localhost PRIVMSG #bench :3 7 12345 xx:y").unwrap();
        assert_eq!(l.prefix, Some("load3!~load3@localhost"));
        assert_eq!(l.nick(), Some("load3"));
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params().collect::<Vec<_>>(), ["#bench", "3 7 12345 xx:y"]);
        assert_eq!(l.numeric(), None);

        let l = Line::parse(":irc.example.net 366 load0 #bench :End of NAMES list").unwrap();
        assert_eq!((l.numeric(), l.param(1)), (Some(366), Some("#bench")));
        assert_eq!(l.nick(), Some("irc.example.net"));

        let l = Line::parse("PING :irc.example.net").unwrap();
        assert_eq!(
            (l.prefix, l.command, l.param(0)),
            (None, "PING", Some("irc.example.net"))
        );
        let l = Line::parse("@time=x :a JOIN #bench").unwrap();
        assert_eq!((l.command, l.param(0)), ("JOIN", Some("#bench")));
        assert_eq!(Line::parse("PING").unwrap().param(0), None);
        assert_eq!(Line::parse(":lonely"), None);
        assert_eq!(Line::parse(""), None);
    }

    #[test]
    fn nicks_are_checked_and_pongs_encoded() {
        assert!(valid_nick("load49") && valid_nick("a-b"));
        assert!(!valid_nick("9load") && !valid_nick("") && !valid_nick("a b"));
        assert!(!valid_nick(&"a".repeat(31)));
        let mut buf = BytesMut::new();
        pong(&mut buf, "irc.example.net");
        assert_eq!(&buf[..], b"PONG :irc.example.net\r\n");
    }
}
