//! The load messages: what a client says and how a receiver reads it back.
//!
//! A load message is the frame `msg:<sender> <seq> <t_ns>[ <padding>]\n`,
//! exactly `size` bytes long counting `msg:` and the LF: `sender` is the
//! client's index, `seq` counts its messages from 0, and `t_ns` is the send
//! time in nanoseconds since the generator started (monotonic). The padding
//! is a space and `x`s. The server relays it as `msg:<name>:<text>`; the
//! receiver gets the text back from `chat_proto::ServerFrame::Msg` and
//! [`parse`]s the three numbers without allocating.
//!
//! The same text (the frame without `msg:` and the LF, [`encode_text`]) is
//! what clients say in a room (`say:ROOM:<text>`, relayed as
//! `said:ROOM:OFFSET:<name>:<text>`) and over IRC (`PRIVMSG #chan :<text>`),
//! so `size` names one payload whatever the clients speak.
//!
//! Encoding appends to a reused buffer and formats the numbers by hand, so
//! a burst of messages costs no allocation either.

/// The three numbers a load message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending client.
    pub sender: u32,
    /// The sender's message counter, from 0.
    pub seq: u32,
    /// Send time, nanoseconds since the generator started.
    pub t_ns: u64,
}

/// Bytes of `msg:` and the LF around the text.
const OVERHEAD: usize = 5;

/// Digits `t_ns` is allowed for when checking a size: 10^13 ns is almost
/// three hours of run time.
const T_NS_DIGITS: usize = 13;

/// Decimal digits of `n`.
pub fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// The smallest frame size that fits every message of `clients` senders
/// with `messages` each, without padding.
pub fn min_size(clients: usize, messages: u32) -> usize {
    let sender = digits(clients.saturating_sub(1) as u64);
    let seq = digits(u64::from(messages.saturating_sub(1)));
    OVERHEAD + sender + 1 + seq + 1 + T_NS_DIGITS
}

fn put_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends the frame for `stamp`, padded to `size` bytes (LF included).
/// A frame whose numbers do not fit in `size` is written unpadded, longer
/// than asked; [`min_size`] tells the caller in advance.
pub fn encode(buf: &mut Vec<u8>, stamp: Stamp, size: usize) {
    buf.extend_from_slice(b"msg:");
    encode_text(buf, stamp, text_len(size));
    buf.push(b'\n');
}

/// The text length of a `size`-byte `msg:` frame: the text every form of a
/// load message carries (`msg:`, `say:ROOM:`, IRC's `PRIVMSG`), so a run's
/// `size` means the same payload whatever the clients speak.
pub fn text_len(size: usize) -> usize {
    size.saturating_sub(OVERHEAD)
}

/// Appends the text alone (`<sender> <seq> <t_ns>[ <padding>]`), padded to
/// `len` bytes; unpadded, and longer, if the numbers do not fit.
pub fn encode_text(buf: &mut Vec<u8>, stamp: Stamp, len: usize) {
    let start = buf.len();
    put_u64(buf, u64::from(stamp.sender));
    buf.push(b' ');
    put_u64(buf, u64::from(stamp.seq));
    buf.push(b' ');
    put_u64(buf, stamp.t_ns);
    let used = buf.len() - start;
    if len > used {
        buf.push(b' ');
        buf.resize(buf.len() + (len - used - 1), b'x');
    }
}

/// Parses a decimal number made of ASCII digits only.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Reads the stamp back from a relayed message's text
/// (`<sender> <seq> <t_ns>[ <padding>]`); `None` if it is not a load
/// message.
pub fn parse(text: &str) -> Option<Stamp> {
    let mut fields = text.as_bytes().splitn(4, |&b| b == b' ');
    let sender = u32::try_from(parse_u64(fields.next()?)?).ok()?;
    let seq = u32::try_from(parse_u64(fields.next()?)?).ok()?;
    let t_ns = parse_u64(fields.next()?)?;
    Some(Stamp { sender, seq, t_ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stamp: Stamp, size: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, stamp, size);
        buf
    }

    #[test]
    fn encodes_exactly_the_requested_size() {
        let s = Stamp {
            sender: 7,
            seq: 42,
            t_ns: 123_456_789,
        };
        assert_eq!(frame(s, 64).len(), 64);
        assert!(frame(s, 64).starts_with(b"msg:7 42 123456789 xxx"));
        assert!(frame(s, 64).ends_with(b"x\n"));
        // No room for padding: exactly the numbers.
        assert_eq!(frame(s, 19), b"msg:7 42 123456789\n");
        // One byte of room: a lone space.
        assert_eq!(frame(s, 20), b"msg:7 42 123456789 \n");
        // Too small: longer than asked, never truncated.
        assert_eq!(frame(s, 10), b"msg:7 42 123456789\n");
    }

    #[test]
    fn the_text_alone_is_the_frame_without_msg_and_lf() {
        let s = Stamp {
            sender: 3,
            seq: 17,
            t_ns: 99_000,
        };
        for size in [5, 10, 19, 20, 21, 64, 200] {
            let mut text = Vec::new();
            encode_text(&mut text, s, text_len(size));
            let f = frame(s, size);
            assert_eq!(text, &f[4..f.len() - 1], "size {size}");
        }
    }

    #[test]
    fn round_trips_through_the_relayed_text() {
        for (sender, seq, t_ns) in [(0, 0, 0), (49, 999, 9_999_999_999_999), (u32::MAX, 1, 5)] {
            let s = Stamp { sender, seq, t_ns };
            let f = frame(s, 80);
            // What the server relays: `msg:NAME:` + the client's text.
            let text = std::str::from_utf8(&f[4..f.len() - 1]).unwrap();
            assert_eq!(parse(text), Some(s));
        }
    }

    #[test]
    fn appends_without_disturbing_the_buffer() {
        let mut buf = b"head".to_vec();
        encode(
            &mut buf,
            Stamp {
                sender: 1,
                seq: 2,
                t_ns: 3,
            },
            16,
        );
        assert_eq!(buf, b"headmsg:1 2 3 xxxxx\n");
    }

    #[test]
    fn rejects_foreign_text() {
        for text in [
            "",
            "hello",
            "1 2",
            "1 2 x",
            "-1 2 3",
            "1  2 3",
            "99999999999 1 2",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        assert_eq!(
            parse("1 2 3"),
            Some(Stamp {
                sender: 1,
                seq: 2,
                t_ns: 3
            })
        );
    }

    #[test]
    fn min_size_fits_the_largest_message() {
        let size = min_size(50, 1000);
        let f = frame(
            Stamp {
                sender: 49,
                seq: 999,
                t_ns: 9_999_999_999_999,
            },
            size,
        );
        assert_eq!(f.len(), size);
        assert_eq!(digits(0), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(u64::MAX), 20);
    }
}
