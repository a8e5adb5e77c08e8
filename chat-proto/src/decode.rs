//! The streaming frame decoder: bytes in any chunking in, frames out.
//!
//! The decoder is the hot path of every server built on this crate, so it
//! does as little work per byte as it can:
//!
//! * it works on the caller's input slice and hands out frames that borrow
//!   from it; only the unfinished line at the end of an input is copied, into
//!   a buffer that exists only while such a line is pending;
//! * it only ever scans new bytes: a line that arrives one byte at a time is
//!   never rescanned;
//! * all the complete lines of one input are checked for UTF-8 in a single
//!   `simdutf8` call; then a single vectorised pass over them, 64 bytes at a
//!   time, finds both the line ends and the control characters (the
//!   "special bytes" of [`special_mask`]), so the bytes between two line
//!   ends are looked at once, in bulk; only an input that is not valid UTF-8
//!   is looked at line by line;
//! * a line longer than the maximum frame length is reported once as
//!   [`PeerError::TooLong`] and skipped up to its LF without being buffered:
//!   the decoder never holds more than `max_frame_len - 1` bytes;
//! * after any error it resumes cleanly at the next line.
//!
//! The tag of each line is split off with `nom` (`msg:`, by far the most
//! frequent frame, takes a shortcut to the same result); the typed grammar
//! of each tag is in [`frame`](crate::frame). Empty lines (a bare LF or
//! CRLF) are ignored, so pressing Enter in `telnet` is harmless.

use std::ops::ControlFlow;

use memchr::{memchr, memchr_iter, memrchr};
use nom::Parser;
use nom::bytes::complete::take_while_m_n;
use nom::character::complete::char;
use nom::sequence::terminated;

use crate::error::PeerError;
use crate::text::{BLOCK, has_control, is_tag_byte, special_mask};

/// The most bytes a tag may have.
pub const MAX_TAG_LEN: usize = 16;

/// Extra room reserved when an unfinished line is first buffered.
const PARTIAL_SLACK: usize = 256;

/// One decoded line: its tag and its payload, both borrowed from the input.
///
/// The whole line is valid UTF-8 and holds no control character but TAB;
/// the tag is 1 to 16 of `a-z`, `0-9`, `-`. Only the [`Decoder`] and
/// [`RawFrame::from_line`] make one, so these checks always hold, and
/// [`ClientFrame::parse`](crate::ClientFrame::parse) and
/// [`ServerFrame::parse`](crate::ServerFrame::parse) can rely on them: no
/// payload can smuggle a line break into a frame encoded from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    tag: &'a str,
    payload: &'a str,
}

impl<'a> RawFrame<'a> {
    /// The tag, before the first `:`.
    pub fn tag(&self) -> &'a str {
        self.tag
    }

    /// Everything after the first `:`, without the line terminator.
    pub fn payload(&self) -> &'a str {
        self.payload
    }

    /// Checks one line, without its LF, as the decoder does (a final CR is
    /// dropped): for lines that arrive by other means than a byte stream.
    /// The maximum frame length is not checked.
    ///
    /// ```
    /// use chat_proto::{PeerError, RawFrame};
    ///
    /// let frame = RawFrame::from_line("msg:did you have dinner")?;
    /// assert_eq!((frame.tag(), frame.payload()), ("msg", "did you have dinner"));
    /// assert_eq!(RawFrame::from_line("msg:a\nwho:"), Err(PeerError::ControlChar));
    /// # Ok::<(), PeerError>(())
    /// ```
    pub fn from_line(line: &'a str) -> Result<Self, PeerError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if has_control(line.as_bytes()) {
            return Err(PeerError::ControlChar);
        }
        split_tag(line)
    }

    /// A frame from parts the caller has checked (tests of this crate).
    #[cfg(test)]
    pub(crate) fn trusted(tag: &'a str, payload: &'a str) -> Self {
        RawFrame { tag, payload }
    }
}

/// A streaming decoder of LF-terminated frames.
///
/// ```
/// use chat_proto::Decoder;
///
/// let mut decoder = Decoder::new(4096);
/// let mut lines = Vec::new();
/// // Input arrives in any chunking; a character may be split between reads.
/// for chunk in [&b"msg:ni h"[..], &b"ao \xe4\xbd"[..], &b"\xa0\xe5\xa5\xbd\r\nwho:\n"[..]] {
///     decoder.decode(chunk, |frame| {
///         let frame = frame.unwrap();
///         lines.push(format!("{}|{}", frame.tag(), frame.payload()));
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
    partial: Vec<u8>,
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
            partial: Vec::new(),
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
    pub fn decode<F>(&mut self, input: &[u8], mut on_frame: F)
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>),
    {
        let consumed = self.decode_until(input, |frame| {
            on_frame(frame);
            ControlFlow::Continue(())
        });
        debug_assert_eq!(consumed, input.len());
    }

    /// Decodes `input` like [`decode`](Decoder::decode), but `on_frame` may
    /// stop the decoding with `ControlFlow::Break`: the frame (or error) it
    /// was given then counts as not seen, and neither it nor anything after
    /// it is consumed. Returns how many bytes of `input` were consumed; the
    /// caller keeps the rest and passes it (followed by whatever arrives
    /// later) to a later call, which starts again with that frame.
    ///
    /// This is how a receiver stops taking input from a peer for a while
    /// (a login that waits for a decision, a rate limit) without losing or
    /// reordering anything. The unconsumed rest always starts where a frame
    /// starts, or continues a line whose beginning this decoder buffered.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use chat_proto::Decoder;
    ///
    /// let mut decoder = Decoder::new(4096);
    /// let input = b"iam:zhangsan\nmsg:hello\nmsg:again\n";
    /// let mut seen = Vec::new();
    /// // Take one frame, then stop.
    /// let consumed = decoder.decode_until(input, |frame| {
    ///     if !seen.is_empty() {
    ///         return ControlFlow::Break(());
    ///     }
    ///     seen.push(frame.unwrap().payload().to_owned());
    ///     ControlFlow::Continue(())
    /// });
    /// assert_eq!(&input[consumed..], b"msg:hello\nmsg:again\n");
    /// assert_eq!(seen, ["zhangsan"]);
    /// ```
    pub fn decode_until<F>(&mut self, input: &[u8], mut on_frame: F) -> usize
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>) -> ControlFlow<()>,
    {
        let max = self.max_frame_len;
        let mut consumed = 0;
        if self.discarding {
            let Some(lf) = memchr(b'\n', input) else {
                return input.len();
            };
            self.discarding = false;
            consumed = lf + 1;
        }
        if !self.partial.is_empty() {
            let rest = &input[consumed..];
            let Some(lf) = memchr(b'\n', rest) else {
                return match self.buffer_or_overflow(rest, &mut on_frame) {
                    ControlFlow::Continue(()) => input.len(),
                    ControlFlow::Break(()) => consumed,
                };
            };
            let mut line = std::mem::take(&mut self.partial);
            let buffered = line.len();
            let flow = if buffered + lf + 1 > max {
                on_frame(Err(PeerError::TooLong { limit: max }))
            } else {
                line.extend_from_slice(&rest[..=lf]);
                match emit_lines(&line, max, &mut on_frame) {
                    Some(_) => ControlFlow::Break(()),
                    None => ControlFlow::Continue(()),
                }
            };
            if flow.is_break() {
                // The line is not taken: keep its beginning buffered.
                line.truncate(buffered);
                self.partial = line;
                return consumed;
            }
            consumed += lf + 1;
            // Kept, empty, for the next unfinished line of this input.
            line.clear();
            self.partial = line;
        }
        let rest = &input[consumed..];
        if let Some(last) = memrchr(b'\n', rest) {
            if let Some(stop) = emit_lines(&rest[..=last], max, &mut on_frame) {
                self.partial = Vec::new();
                return consumed + stop;
            }
            consumed += last + 1;
        }
        let tail = &input[consumed..];
        if tail.is_empty() {
            // No line is pending: hold no buffer.
            self.partial = Vec::new();
            return consumed;
        }
        match self.buffer_or_overflow(tail, &mut on_frame) {
            ControlFlow::Continue(()) => input.len(),
            ControlFlow::Break(()) => consumed,
        }
    }

    /// Keeps the bytes of an unfinished line, or reports it as too long once
    /// it can no longer fit (the LF still has to come). On a break nothing
    /// changes.
    fn buffer_or_overflow<F>(&mut self, input: &[u8], on_frame: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>) -> ControlFlow<()>,
    {
        if input.is_empty() {
            return ControlFlow::Continue(());
        }
        if self.partial.len() + input.len() >= self.max_frame_len {
            on_frame(Err(PeerError::TooLong {
                limit: self.max_frame_len,
            }))?;
            self.partial = Vec::new();
            self.discarding = true;
        } else {
            if self.partial.is_empty() {
                // Room for the rest of a typical line, so that finishing it
                // does not move it; bounded, so that idle connections with
                // a pending line stay cheap.
                self.partial.reserve(input.len() + PARTIAL_SLACK);
            }
            self.partial.extend_from_slice(input);
        }
        ControlFlow::Continue(())
    }
}

/// Emits every line of `lines`, which ends with an LF. Returns where the
/// line `on_frame` stopped at starts, if it stopped.
fn emit_lines<F>(lines: &[u8], max: usize, on_frame: &mut F) -> Option<usize>
where
    F: FnMut(Result<RawFrame<'_>, PeerError>) -> ControlFlow<()>,
{
    if let Ok(text) = simdutf8::basic::from_utf8(lines) {
        return emit_valid(text, max, on_frame);
    }
    // Some line is not UTF-8: find out which, one line at a time.
    let mut start = 0;
    for lf in memchr_iter(b'\n', lines) {
        let line = &lines[start..=lf];
        let flow = if line.len() > max {
            on_frame(Err(PeerError::TooLong { limit: max }))
        } else {
            match simdutf8::basic::from_utf8(line) {
                Ok(line) => match emit_valid(line, max, on_frame) {
                    Some(_) => ControlFlow::Break(()),
                    None => ControlFlow::Continue(()),
                },
                Err(_) => on_frame(Err(PeerError::BadUtf8)),
            }
        };
        if flow.is_break() {
            return Some(start);
        }
        start = lf + 1;
    }
    None
}

/// Emits every line of `text`, which ends with an LF. One pass over the
/// special bytes (see [`special_mask`]) finds both the line ends and the
/// control characters. Returns where the line `on_frame` stopped at
/// starts, if it stopped.
fn emit_valid<F>(text: &str, max: usize, on_frame: &mut F) -> Option<usize>
where
    F: FnMut(Result<RawFrame<'_>, PeerError>) -> ControlFlow<()>,
{
    let bytes = text.as_bytes();
    let mut line = Line {
        start: 0,
        control: false,
    };
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        let mask = special_mask(block.try_into().expect("chunks of 64"));
        if let Some(stop) = line.specials(text, base, mask, max, on_frame) {
            return Some(stop);
        }
        base += BLOCK;
    }
    let rest = blocks.remainder().len();
    if rest == 0 {
        return None;
    }
    if let Some(tail) = bytes.last_chunk::<BLOCK>() {
        // The last 64 bytes, but for the `BLOCK - rest` already seen.
        let seen = BLOCK - rest;
        let mask = special_mask(tail) & u64::MAX.checked_shl(seen as u32).unwrap_or(0);
        line.specials(text, bytes.len() - BLOCK, mask, max, on_frame)
    } else {
        // Less than a block in all, padded with bytes that are not special.
        let mut block = [b' '; BLOCK];
        block[..rest].copy_from_slice(bytes);
        line.specials(text, 0, special_mask(&block), max, on_frame)
    }
}

/// The line `emit_valid` is in.
struct Line {
    /// Where it starts.
    start: usize,
    /// Whether it holds a control character so far.
    control: bool,
}

impl Line {
    /// Handles the special bytes of the block at `base`: bit `i` of `mask`
    /// is byte `base + i`. Returns the start of the line `on_frame` stopped
    /// at, if it stopped (the line is then not taken).
    #[inline(always)]
    fn specials<F>(
        &mut self,
        text: &str,
        base: usize,
        mut mask: u64,
        max: usize,
        on_frame: &mut F,
    ) -> Option<usize>
    where
        F: FnMut(Result<RawFrame<'_>, PeerError>) -> ControlFlow<()>,
    {
        let bytes = text.as_bytes();
        while mask != 0 {
            let at = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            match bytes[at] {
                b'\n' => {
                    // An LF is always a char boundary, so this cannot panic.
                    let line = &text[self.start..at];
                    let flow = if line.len() + 1 > max {
                        on_frame(Err(PeerError::TooLong { limit: max }))
                    } else {
                        emit_line(line, self.control, on_frame)
                    };
                    if flow.is_break() {
                        return Some(self.start);
                    }
                    self.start = at + 1;
                    self.control = false;
                }
                b'\t' => {}
                // Allowed only just before the LF.
                b'\r' => self.control |= bytes.get(at + 1) != Some(&b'\n'),
                // U+0080 to U+009F are the C1 controls; the rest of C2 is not.
                0xc2 => self.control |= matches!(bytes.get(at + 1), Some(0x80..=0x9f)),
                _ => self.control = true,
            }
        }
        None
    }
}

/// Hands out one line (without its LF); `control` says it holds a control
/// character other than TAB and a CR just before the LF.
#[inline(always)]
fn emit_line<F>(line: &str, control: bool, on_frame: &mut F) -> ControlFlow<()>
where
    F: FnMut(Result<RawFrame<'_>, PeerError>) -> ControlFlow<()>,
{
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return ControlFlow::Continue(());
    }
    if control {
        on_frame(Err(PeerError::ControlChar))
    } else if let Some(payload) = line.strip_prefix("msg:") {
        // `msg:`, by far the most frequent frame, takes a shortcut: the
        // general case is nom's, in `split_tag`.
        on_frame(Ok(RawFrame {
            tag: &line[..3],
            payload,
        }))
    } else {
        on_frame(split_tag(line))
    }
}

/// Splits `tag:payload` with nom. The tag is ASCII, so the split is at a
/// char boundary.
#[inline(never)]
fn split_tag(line: &str) -> Result<RawFrame<'_>, PeerError> {
    let tag = take_while_m_n(1, MAX_TAG_LEN, is_tag_byte);
    let parsed: nom::IResult<&[u8], &[u8], ()> = terminated(tag, char(':')).parse(line.as_bytes());
    match parsed {
        Ok((_, tag)) => {
            let (tag, rest) = line.split_at(tag.len());
            Ok(RawFrame {
                tag,
                payload: &rest[1..],
            })
        }
        Err(_) => Err(PeerError::MissingTag),
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

    /// The decoder as PROTOCOL.md states it, one line at a time, for
    /// input that ends with an LF.
    fn model(max: usize, input: &[u8]) -> Out {
        let mut out = Vec::new();
        for line in input.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n') {
            if line.len() + 1 > max {
                out.push(Err(PeerError::TooLong { limit: max }));
                continue;
            }
            let Ok(line) = std::str::from_utf8(line) else {
                out.push(Err(PeerError::BadUtf8));
                continue;
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                out.push(Err(PeerError::ControlChar));
                continue;
            }
            out.push(match line.split_once(':') {
                Some((tag, payload))
                    if (1..=MAX_TAG_LEN).contains(&tag.len()) && tag.bytes().all(is_tag_byte) =>
                {
                    ok(tag, payload)
                }
                _ => Err(PeerError::MissingTag),
            });
        }
        out
    }

    #[test]
    fn every_special_byte_at_every_place_of_a_block() {
        // Lines of every length around the 64-byte blocks, each with one
        // odd character at each position, after lines that shift them
        // across the block boundaries; fed whole and in reads of 61 bytes.
        let odd: [&[u8]; 12] = [
            b"\x00",
            b"\t",
            b"\r",
            b"\x1b",
            b"\x1f",
            b"\x7f",
            b"\xc2\x80",
            b"\xc2\x9f",
            b"\xc2\xa0",
            "你".as_bytes(),
            b":",
            b"\xe4",
        ];
        for shift in [0, 33] {
            for len in 0..140 {
                for ch in odd {
                    let mut input = vec![b'a'; shift];
                    input.push(b'\n');
                    for at in 0..=len {
                        let mut payload = vec![b'x'; len];
                        payload.splice(at..at, ch.iter().copied());
                        input.extend_from_slice(b"msg:");
                        input.extend_from_slice(&payload);
                        input.extend_from_slice(if at % 2 == 0 { b"\n" } else { b"\r\n" });
                    }
                    let expected = model(100, &input);
                    assert_eq!(whole(100, &input), expected, "{shift} {len} {ch:?}");
                    let mut decoder = Decoder::new(100);
                    let mut out = Vec::new();
                    for read in input.chunks(61) {
                        feed(&mut decoder, read, &mut out);
                    }
                    assert_eq!(out, expected, "{shift} {len} {ch:?} in reads");
                }
            }
        }
    }

    #[test]
    fn msg_shortcut_agrees_with_nom() {
        for line in ["msg:", "msg:x", "msg:a:b", "msg:你好"] {
            let shortcut = whole(64, format!("{line}\n").as_bytes());
            let (tag, payload) = line.split_once(':').unwrap();
            assert_eq!(shortcut, vec![ok(tag, payload)]);
            assert_eq!(split_tag(line), Ok(RawFrame { tag, payload }), "{line}");
        }
        assert_eq!(
            whole(64, b"msgs:x\nms:x\n"),
            vec![ok("msgs", "x"), ok("ms", "x")]
        );
    }

    /// Decodes `reads` with a consumer that refuses the `n`th event the
    /// first time it is offered, whenever `refuse(n)` says so, keeping what
    /// was not consumed and passing it again, followed by the next read, as
    /// a receiver with paused input does. Returns the events taken.
    fn with_stops(max: usize, reads: &[&[u8]], refuse: impl Fn(usize) -> bool) -> Out {
        let mut decoder = Decoder::new(max);
        let mut out: Out = Vec::new();
        let mut kept: Vec<u8> = Vec::new();
        let mut refused: Option<usize> = None;
        for read in reads {
            kept.extend_from_slice(read);
            loop {
                let mut stopped = false;
                let consumed = decoder.decode_until(&kept, |r| {
                    let n = out.len();
                    if refused != Some(n) && refuse(n) {
                        refused = Some(n);
                        stopped = true;
                        return ControlFlow::Break(());
                    }
                    out.push(r.map(|f| (f.tag.to_owned(), f.payload.to_owned())));
                    ControlFlow::Continue(())
                });
                kept.drain(..consumed);
                assert!(decoder.buffered() < max);
                if !stopped {
                    assert!(kept.is_empty());
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn stopping_and_resuming_loses_and_repeats_nothing() {
        let input: &[u8] = b"iam:a\nmsg:\xff\nmsg:1\r\n\nnocolon\nmsg:0123456789abcdef\nmsg:x\x01\nmsg:2\nwho:\nmsg:\xe4\xbd\xa0\n";
        for max in [12, 64] {
            let expected = whole(max, input);
            for every in 1..5 {
                let refuse = |n: usize| n.is_multiple_of(every);
                assert_eq!(with_stops(max, &[input], refuse), expected, "{max} {every}");
                let reads: Vec<&[u8]> = input.chunks(5).collect();
                assert_eq!(
                    with_stops(max, &reads, refuse),
                    expected,
                    "{max} {every} in 5s"
                );
                let bytes: Vec<&[u8]> = input.chunks(1).collect();
                assert_eq!(
                    with_stops(max, &bytes, refuse),
                    expected,
                    "{max} {every} in 1s"
                );
            }
        }
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
