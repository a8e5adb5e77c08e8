//! The streaming frame decoder: bytes in any chunking in, frames out.
//!
//! The decoder is the hot path of every server built on this crate, so it
//! does as little work per byte as it can:
//!
//! * it works on the caller's input slice and hands out frames that borrow
//!   from it; only the unfinished line at the end of an input is copied, into
//!   a buffer that exists only while such a line is pending;
//! * it only ever scans new bytes for LF (`memchr`), so a line that arrives
//!   one byte at a time is never rescanned;
//! * all the complete lines of one input are checked for UTF-8 in a single
//!   `simdutf8` call and for control characters in a single vectorised pass;
//!   only an input that fails either check is looked at line by line;
//! * a line longer than the maximum frame length is reported once as
//!   [`PeerError::TooLong`] and skipped up to its LF without being buffered:
//!   the decoder never holds more than `max_frame_len - 1` bytes;
//! * after any error it resumes cleanly at the next line.
//!
//! The tag of each line is split off with `nom`; the typed grammar of each
//! tag is in [`frame`](crate::frame). Empty lines (a bare LF or CRLF) are
//! ignored, so pressing Enter in `telnet` is harmless.

use bytes::BytesMut;
use memchr::{memchr, memchr_iter, memrchr};
use nom::Parser;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::sequence::terminated;

use crate::error::PeerError;
use crate::text::{any_suspicious, has_control, is_tag_byte};

/// The most bytes a tag may have.
pub const MAX_TAG_LEN: usize = 16;

/// One decoded line: its tag and its payload, both borrowed from the input.
///
/// The whole line is valid UTF-8 and holds no control character but TAB;
/// the tag is 1 to 16 of `a-z`, `0-9`, `-`. Turn it into a typed frame with
/// [`ClientFrame::parse`](crate::ClientFrame::parse) or
/// [`ServerFrame::parse`](crate::ServerFrame::parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The tag, before the first `:`.
    pub tag: &'a str,
    /// Everything after the first `:`, without the line terminator.
    pub payload: &'a str,
}

/// A streaming decoder of LF-terminated frames.
///
/// ```
/// use chat_proto::{Decoder, RawFrame};
///
/// let mut decoder = Decoder::new(4096);
/// let mut lines = Vec::new();
/// // Input arrives in any chunking; a character may be split between reads.
/// for chunk in [&b"msg:ni h"[..], &b"ao \xe4\xbd"[..], &b"\xa0\xe5\xa5\xbd\r\nwho:\n"[..]] {
///     decoder.decode(chunk, |frame| {
///         let RawFrame { tag, payload } = frame.unwrap();
///         lines.push(format!("{tag}|{payload}"));
///     });
/// }
/// assert_eq!(lines, ["msg|ni hao 你好", "who|"]);
/// assert_eq!(decoder.buffered(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    max_frame_len: usize,
    /// The unfinished line at the end of the last input. Never holds an LF,
    /// so it is never scanned again; empty and unallocated when no line is
    /// pending.
    partial: BytesMut,
    /// Inside an overlong line that was already reported: drop bytes up to
    /// and including the next LF.
    discarding: bool,
}

impl Decoder {
    /// A decoder for frames of at most `max_frame_len` bytes, counting the LF
    /// (and the CR before it, if any).
    pub fn new(max_frame_len: usize) -> Self {
        Decoder {
            max_frame_len,
            partial: BytesMut::new(),
            discarding: false,
        }
    }

    /// The maximum frame length this decoder enforces.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// How many bytes of an unfinished frame are buffered; always less than
    /// the maximum frame length.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// The capacity of the internal buffer; zero when no frame is pending.
    pub fn buffer_capacity(&self) -> usize {
        self.partial.capacity()
    }

    /// Decodes `input`, calling `on_frame` with every complete frame or error
    /// in stream order. Any chunking of the same bytes gives the same calls.
    pub fn decode<F>(&mut self, mut input: &[u8], mut on_frame: F)
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>),
    {
        let max = self.max_frame_len;
        if self.discarding {
            let Some(lf) = memchr(b'\n', input) else {
                return;
            };
            self.discarding = false;
            input = &input[lf + 1..];
        }
        if !self.partial.is_empty() {
            let Some(lf) = memchr(b'\n', input) else {
                self.buffer_or_overflow(input, &mut on_frame);
                return;
            };
            let mut line = std::mem::take(&mut self.partial);
            if line.len() + lf + 1 > max {
                on_frame(Err(PeerError::TooLong { limit: max }));
            } else {
                line.extend_from_slice(&input[..lf]);
                match simdutf8::basic::from_utf8(&line) {
                    Ok(line) => emit_line(line, false, &mut on_frame),
                    Err(_) => on_frame(Err(PeerError::BadUtf8)),
                }
            }
            input = &input[lf + 1..];
        }
        if let Some(last) = memrchr(b'\n', input) {
            let (lines, tail) = input.split_at(last + 1);
            self.emit_lines(lines, &mut on_frame);
            input = tail;
        }
        self.buffer_or_overflow(input, &mut on_frame);
    }

    /// Keeps the bytes of an unfinished line, or reports it as too long once
    /// it can no longer fit (the LF still has to come).
    fn buffer_or_overflow<F>(&mut self, input: &[u8], on_frame: &mut F)
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>),
    {
        if input.is_empty() {
            return;
        }
        if self.partial.len() + input.len() >= self.max_frame_len {
            self.partial = BytesMut::new();
            self.discarding = true;
            on_frame(Err(PeerError::TooLong {
                limit: self.max_frame_len,
            }));
        } else {
            self.partial.extend_from_slice(input);
        }
    }

    /// Emits every line of `lines`, which ends with an LF.
    fn emit_lines<F>(&self, lines: &[u8], on_frame: &mut F)
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>),
    {
        let max = self.max_frame_len;
        let mut start = 0;
        match simdutf8::basic::from_utf8(lines) {
            Ok(text) => {
                // One pass over all lines: no control character but LF/TAB.
                let clean = !any_suspicious(text.as_bytes(), b'\n');
                for lf in memchr_iter(b'\n', text.as_bytes()) {
                    // An LF is always a char boundary, so this cannot panic.
                    let line = &text[start..lf];
                    start = lf + 1;
                    if line.len() + 1 > max {
                        on_frame(Err(PeerError::TooLong { limit: max }));
                    } else {
                        emit_line(line, clean, on_frame);
                    }
                }
            }
            Err(_) => {
                for lf in memchr_iter(b'\n', lines) {
                    let line = &lines[start..lf];
                    start = lf + 1;
                    if line.len() + 1 > max {
                        on_frame(Err(PeerError::TooLong { limit: max }));
                        continue;
                    }
                    match simdutf8::basic::from_utf8(line) {
                        Ok(line) => emit_line(line, false, on_frame),
                        Err(_) => on_frame(Err(PeerError::BadUtf8)),
                    }
                }
            }
        }
    }
}

/// Checks one line (without its LF) and hands it out. `clean` says the
/// caller already knows it holds no control character.
fn emit_line<F>(line: &str, clean: bool, on_frame: &mut F)
where
    F: FnMut(Result<RawFrame<'_>, PeerError>),
{
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return;
    }
    if !clean && has_control(line.as_bytes()) {
        on_frame(Err(PeerError::ControlChar));
        return;
    }
    on_frame(split_tag(line));
}

/// Splits `tag:payload` with nom.
fn split_tag(line: &str) -> Result<RawFrame<'_>, PeerError> {
    let tag = take_while1(|c: char| c.is_ascii() && is_tag_byte(c as u8));
    match terminated(tag, char(':')).parse(line) {
        Ok((payload, tag)) if tag.len() <= MAX_TAG_LEN => Ok(RawFrame { tag, payload }),
        Ok(_) | Err(nom::Err::Error(()) | nom::Err::Failure(()) | nom::Err::Incomplete(_)) => {
            Err(PeerError::MissingTag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Out = Vec<Result<(String, String), PeerError>>;

    fn feed(decoder: &mut Decoder, input: &[u8], out: &mut Out) {
        decoder.decode(input, |r| {
            out.push(r.map(|f| (f.tag.to_owned(), f.payload.to_owned())))
        });
    }

    fn whole(max: usize, input: &[u8]) -> Out {
        let mut out = Vec::new();
        feed(&mut Decoder::new(max), input, &mut out);
        out
    }

    fn bytewise(max: usize, input: &[u8]) -> Out {
        let mut decoder = Decoder::new(max);
        let mut out = Vec::new();
        for b in input {
            feed(&mut decoder, std::slice::from_ref(b), &mut out);
            assert!(decoder.buffered() < max);
        }
        out
    }

    fn ok(tag: &str, payload: &str) -> Result<(String, String), PeerError> {
        Ok((tag.into(), payload.into()))
    }

    #[test]
    fn splits_lines_and_tags() {
        let input = b"iam:zhangsan\nmsg:did you have dinner\r\n\r\n\nwho:\nmsg:a:b\n";
        let expected = vec![
            ok("iam", "zhangsan"),
            ok("msg", "did you have dinner"),
            ok("who", ""),
            ok("msg", "a:b"),
        ];
        assert_eq!(whole(64, input), expected);
        assert_eq!(bytewise(64, input), expected);
    }

    #[test]
    fn reports_errors_and_resumes() {
        let input = b"nocolon\n:x\nTAG:x\nmsg:a\x01b\nmsg:a\rb\nmsg:\xff\xfe\nmsg:\xc2\x85\nok:1\n";
        let expected = vec![
            Err(PeerError::MissingTag),
            Err(PeerError::MissingTag),
            Err(PeerError::MissingTag),
            Err(PeerError::ControlChar),
            Err(PeerError::ControlChar),
            Err(PeerError::BadUtf8),
            Err(PeerError::ControlChar),
            ok("ok", "1"),
        ];
        assert_eq!(whole(64, input), expected);
        assert_eq!(bytewise(64, input), expected);
    }

    #[test]
    fn tag_length_limit() {
        let out = whole(64, b"abcdefghijklmnop:x\nabcdefghijklmnopq:x\n");
        assert_eq!(
            out,
            vec![ok("abcdefghijklmnop", "x"), Err(PeerError::MissingTag)]
        );
    }

    #[test]
    fn max_frame_len_counts_the_terminator() {
        // "msg:" + 3 bytes + LF = 8 bytes.
        let fits = b"msg:abc\n";
        assert_eq!(whole(8, fits), vec![ok("msg", "abc")]);
        assert_eq!(bytewise(8, fits), vec![ok("msg", "abc")]);
        let over = b"msg:abcd\nmsg:ok\n";
        let expected = vec![Err(PeerError::TooLong { limit: 8 }), ok("msg", "ok")];
        assert_eq!(whole(8, over), expected);
        assert_eq!(bytewise(8, over), expected);
        // The CR of a CRLF counts too.
        let crlf = b"msg:abc\r\nmsg:ab\r\n";
        let expected = vec![Err(PeerError::TooLong { limit: 8 }), ok("msg", "ab")];
        assert_eq!(whole(8, crlf), expected);
        assert_eq!(bytewise(8, crlf), expected);
    }

    #[test]
    fn overlong_line_is_skipped_without_buffering() {
        let mut decoder = Decoder::new(16);
        let mut out = Vec::new();
        feed(&mut decoder, b"msg:0123456789", &mut out);
        assert_eq!(decoder.buffered(), 14);
        feed(&mut decoder, b"0123456789", &mut out);
        assert_eq!(out, vec![Err(PeerError::TooLong { limit: 16 })]);
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(decoder.buffer_capacity(), 0);
        for _ in 0..1000 {
            feed(&mut decoder, &[b'x'; 100], &mut out);
            assert_eq!(decoder.buffered(), 0);
        }
        feed(&mut decoder, b"yyy\nwho:\n", &mut out);
        assert_eq!(
            out,
            vec![Err(PeerError::TooLong { limit: 16 }), ok("who", "")]
        );
    }

    #[test]
    fn buffer_is_released_once_the_line_completes() {
        let mut decoder = Decoder::new(4096);
        let mut out = Vec::new();
        feed(&mut decoder, b"msg:half", &mut out);
        assert!(decoder.buffer_capacity() > 0);
        feed(&mut decoder, b" and the rest\n", &mut out);
        assert_eq!(out, vec![ok("msg", "half and the rest")]);
        assert_eq!(decoder.buffer_capacity(), 0);
    }

    #[test]
    fn bad_utf8_in_one_line_spares_its_neighbours() {
        let input = "msg:你好\nmsg:\u{1F600}\n".as_bytes();
        let mut bad = input.to_vec();
        bad.extend_from_slice(b"msg:\xe4\xbd\n");
        bad.extend_from_slice(input);
        let expected = vec![
            ok("msg", "你好"),
            ok("msg", "\u{1F600}"),
            Err(PeerError::BadUtf8),
            ok("msg", "你好"),
            ok("msg", "\u{1F600}"),
        ];
        assert_eq!(whole(64, &bad), expected);
        assert_eq!(bytewise(64, &bad), expected);
    }
}
