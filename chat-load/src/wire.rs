//! What a fan-out client speaks: how it logs in, says a load message and
//! hears one, over chat (one room, or rooms) or IRC.
//!
//! | | log in | say | hear |
//! |---|---|---|---|
//! | chat | `iam:NAME` → `ok:NAME` | `msg:TEXT` | `msg:FROM:TEXT` |
//! | chat, rooms | `cap:rooms`, `iam:NAME` → `ok:`; `join:ROOM` → `room:ROOM:..` | `say:ROOM:TEXT` | `said:ROOM:OFFSET:FROM:TEXT` |
//! | IRC | `NICK`, `USER` → `001`; `JOIN #chan` → `366` | `PRIVMSG #chan :TEXT` | `:FROM!u@h PRIVMSG #chan :TEXT` |
//!
//! `TEXT` is the same in every row ([`message::encode_text`]). The writer
//! encodes with a [`Speech`]; the reader feeds what it reads to a
//! [`Listener`], which answers pings into a buffer the writer sends, and
//! hands the reader each message as [`Heard`]. The chat row is what
//! `chat-load` has always sent, byte for byte.

use std::sync::Arc;

use bytes::BytesMut;
use chat_proto::{ClientFrame, Decoder};
use tokio::net::TcpStream;

use crate::irc::{self, Line, Lines};
use crate::message::{self, Stamp};
use crate::net::{self, Incoming, classify};
use crate::topology::Topology;
use crate::{DECODER_MAX_FRAME, LoadError};

/// The protocol the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// This project's protocol (PROTOCOL.md).
    #[default]
    Chat,
    /// IRC (RFC 2812), one channel per room.
    Irc,
}

impl Protocol {
    /// `chat` or `irc`.
    pub fn word(self) -> &'static str {
        match self {
            Protocol::Chat => "chat",
            Protocol::Irc => "irc",
        }
    }

    /// Whether the server sends a sender its own messages.
    pub fn echo(self) -> bool {
        self == Protocol::Chat
    }
}

/// How one client says its load messages: the bytes around the text.
#[derive(Debug, Clone)]
pub struct Speech {
    head: Vec<u8>,
    tail: &'static [u8],
    text_len: usize,
}

impl Speech {
    /// How client `me` says `size`-byte load messages (`size` as for a
    /// `msg:` frame, see [`message::text_len`]).
    pub fn new(protocol: Protocol, topology: &Topology, me: usize, size: usize) -> Self {
        let room = topology.room_of(me);
        let (head, tail): (Vec<u8>, &[u8]) = match protocol {
            Protocol::Chat if topology.has_rooms() => (
                format!("say:{}:", Topology::room_name(room)).into_bytes(),
                b"\n",
            ),
            Protocol::Chat => (b"msg:".to_vec(), b"\n"),
            Protocol::Irc => (
                format!("PRIVMSG {} :", topology.channel(room)).into_bytes(),
                b"\r\n",
            ),
        };
        Speech {
            head,
            tail,
            text_len: message::text_len(size),
        }
    }

    /// Appends the line saying `stamp`.
    #[inline]
    pub fn encode(&self, buf: &mut Vec<u8>, stamp: Stamp) {
        buf.extend_from_slice(&self.head);
        message::encode_text(buf, stamp, self.text_len);
        buf.extend_from_slice(self.tail);
    }
}

/// What a reader makes of one frame or line.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard<'a> {
    /// A message in the reader's room: its sender's name and its text.
    Said {
        /// The sender's name.
        from: &'a str,
        /// The text.
        text: &'a str,
    },
    /// Something that should not come: counted as an error.
    Unexpected(String),
    /// The server is closing the connection, and why.
    End(String),
    /// Presence, listings, notices, pongs: nothing to do.
    Nothing,
}

/// Reads one client's connection: a decoder and the room it hears.
#[derive(Debug)]
pub enum Listener {
    /// Chat frames; `room` is `None` in the default room (`msg:` frames),
    /// else the room whose `said:` frames are the client's.
    Chat {
        /// The client's decoder, with what it holds of an unfinished frame.
        decoder: Decoder,
        /// The room it hears, if not the default one.
        room: Option<Arc<str>>,
    },
    /// IRC lines; `PRIVMSG` to `channel` are the client's.
    Irc {
        /// The line splitter, with what it holds of an unfinished line.
        lines: Lines,
        /// The channel it hears.
        channel: Arc<str>,
    },
}

impl Listener {
    /// Decodes `input`, hands `f` what each frame means, and appends the
    /// answer to every ping to `pongs`.
    #[inline]
    pub fn feed(&mut self, input: &[u8], pongs: &mut BytesMut, mut f: impl FnMut(Heard<'_>)) {
        match self {
            Listener::Chat { decoder, room } => decoder.decode(input, |frame| {
                classify(frame, |incoming| match incoming {
                    Incoming::Msg { from, text } if room.is_none() => f(Heard::Said { from, text }),
                    Incoming::Said {
                        room: r,
                        from,
                        text,
                    } if room.as_deref() == Some(r) => f(Heard::Said { from, text }),
                    Incoming::Msg { from, text } => f(Heard::Unexpected(format!(
                        "msg: in the default room from {from}: {text:.40}"
                    ))),
                    Incoming::Said { room, from, text } => f(Heard::Unexpected(format!(
                        "said: in {room} from {from}: {text:.40}"
                    ))),
                    Incoming::Ping(token) => ClientFrame::Pong(token).encode(pongs),
                    Incoming::Err(code, text) => f(Heard::Unexpected(format!("err:{code}:{text}"))),
                    Incoming::Bye(reason) => f(Heard::End(format!("server said bye:{reason}"))),
                    Incoming::Bad(e) => f(Heard::Unexpected(format!("undecodable frame: {e}"))),
                    Incoming::Ok(_) | Incoming::Room(_) | Incoming::Ignored => f(Heard::Nothing),
                })
            }),
            Listener::Irc { lines, channel } => lines.feed(input, |line| {
                let line = match line.map(std::str::from_utf8) {
                    Ok(Ok(line)) => line,
                    Ok(Err(_)) => return f(Heard::Unexpected("a line that is not UTF-8".into())),
                    Err(e) => {
                        return f(Heard::Unexpected(format!(
                            "a line longer than {} bytes",
                            e.max
                        )));
                    }
                };
                f(hear_irc(line, channel, pongs))
            }),
        }
    }
}

/// What one IRC line means to a client of `channel`.
fn hear_irc<'a>(line: &'a str, channel: &str, pongs: &mut BytesMut) -> Heard<'a> {
    let Some(parsed) = Line::parse(line) else {
        return Heard::Unexpected(format!("unparsable line: {line:.60}"));
    };
    match parsed.command {
        "PRIVMSG" => {
            let mut params = parsed.params();
            match (parsed.nick(), params.next(), params.next()) {
                (Some(from), Some(to), Some(text)) if to.eq_ignore_ascii_case(channel) => {
                    Heard::Said { from, text }
                }
                _ => Heard::Unexpected(format!("PRIVMSG not to {channel}: {line:.60}")),
            }
        }
        "PING" => {
            irc::pong(pongs, parsed.params().last().unwrap_or(""));
            Heard::Nothing
        }
        "ERROR" => Heard::End(format!("server said {line:.80}")),
        _ => match parsed.numeric() {
            Some(400..=599) => Heard::Unexpected(format!("error reply: {line:.80}")),
            _ => Heard::Nothing,
        },
    }
}

/// Logs client `me` (named `name`) in as `protocol` and into its room,
/// on a connected `stream`; returns the listener for the rest of the run.
pub async fn log_in(
    stream: &mut TcpStream,
    protocol: Protocol,
    topology: &Topology,
    me: usize,
    name: &str,
) -> Result<Listener, LoadError> {
    let mut buf = vec![0u8; 4096];
    let room = topology.room_of(me);
    match protocol {
        Protocol::Chat => {
            let mut decoder = Decoder::new(DECODER_MAX_FRAME);
            let room = if topology.has_rooms() {
                let room = Topology::room_name(room);
                net::login_in_room(stream, &mut decoder, &mut buf, name, &room).await?;
                Some(Arc::from(room))
            } else {
                net::login(stream, &mut decoder, &mut buf, name).await?;
                None
            };
            Ok(Listener::Chat { decoder, room })
        }
        Protocol::Irc => {
            let mut lines = Lines::new(DECODER_MAX_FRAME);
            let channel = topology.channel(room);
            irc::register(stream, &mut lines, &mut buf, name, &channel).await?;
            Ok(Listener::Irc {
                lines,
                channel: Arc::from(channel),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u32) -> Stamp {
        Stamp {
            sender: 4,
            seq,
            t_ns: 1_234_567,
        }
    }

    #[test]
    fn chat_speech_is_the_msg_frame_byte_for_byte() {
        let t = Topology::new(5, None, true);
        for size in [20, 64, 128, 1000] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            Speech::new(Protocol::Chat, &t, 4, size).encode(&mut ours, stamp(9));
            message::encode(&mut theirs, stamp(9), size);
            assert_eq!(ours, theirs);
            assert_eq!(ours.len(), size);
        }
    }

    #[test]
    fn rooms_and_irc_carry_the_same_text() {
        let mut msg = Vec::new();
        message::encode(&mut msg, stamp(1), 64);
        let text = &msg[4..63];
        let rooms = Topology::new(10, Some(3), true);
        let mut say = Vec::new();
        Speech::new(Protocol::Chat, &rooms, 4, 64).encode(&mut say, stamp(1));
        assert_eq!(say, [b"say:bench1:", text, b"\n"].concat());
        let irc = Topology::new(10, None, false);
        let mut privmsg = Vec::new();
        Speech::new(Protocol::Irc, &irc, 4, 64).encode(&mut privmsg, stamp(1));
        assert_eq!(privmsg, [b"PRIVMSG #bench :", text, b"\r\n"].concat());
    }

    fn hear(listener: &mut Listener, input: &[u8]) -> (Vec<String>, BytesMut) {
        let mut pongs = BytesMut::new();
        let mut seen = Vec::new();
        listener.feed(input, &mut pongs, |h| seen.push(format!("{h:?}")));
        (seen, pongs)
    }

    #[test]
    fn a_chat_listener_hears_its_room_only() {
        let mut plain = Listener::Chat {
            decoder: Decoder::new(4096),
            room: None,
        };
        let (seen, pongs) = hear(
            &mut plain,
            b"msg:a:1 2 3\nping:7\nsaid:x:0:a:1 2 3\nbye:x\n",
        );
        assert_eq!(seen[0], r#"Said { from: "a", text: "1 2 3" }"#);
        assert!(
            seen[1].starts_with("Unexpected(\"said: in x from a"),
            "{}",
            seen[1]
        );
        assert_eq!(seen[2], r#"End("server said bye:x")"#);
        assert_eq!(&pongs[..], b"pong:7\n");

        let mut room = Listener::Chat {
            decoder: Decoder::new(4096),
            room: Some(Arc::from("bench1")),
        };
        let (seen, _) = hear(
            &mut room,
            b"said:bench1:5:a:1 2 3\nsaid:lobby:0:a:1 2 3\njoined:bench1:b\nmsg:a:x\n",
        );
        assert_eq!(seen[0], r#"Said { from: "a", text: "1 2 3" }"#);
        assert!(seen[1].starts_with("Unexpected(\"said: in lobby"));
        assert_eq!(seen[2], "Nothing");
        assert!(seen[3].starts_with("Unexpected(\"msg: in the default room"));
    }

    #[test]
    fn an_irc_listener_hears_privmsg_to_its_channel_and_answers_ping() {
        let mut irc = Listener::Irc {
            lines: Lines::new(512),
            channel: Arc::from("#bench"),
        };
        let (seen, pongs) = hear(
            &mut irc,
            b":a!~a@localhost PRIVMSG #Bench :1 2 3 xx\r\nPING :srv\r\n:b!~b@h JOIN :#bench\r\n\
              :srv 404 me #bench :Cannot send\r\n:a!~a@h PRIVMSG me :hi\r\nERROR :bye\r\n",
        );
        assert_eq!(seen[0], r#"Said { from: "a", text: "1 2 3 xx" }"#);
        assert_eq!(seen[1], "Nothing");
        assert_eq!(seen[2], "Nothing");
        assert!(seen[3].starts_with("Unexpected(\"error reply: :srv 404"));
        assert!(seen[4].starts_with("Unexpected(\"PRIVMSG not to #bench"));
        assert_eq!(seen[5], r#"End("server said ERROR :bye")"#);
        assert_eq!(&pongs[..], b"PONG :srv\r\n");
    }
}
