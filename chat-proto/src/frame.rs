//! The frames of both directions, their parsing and their encoding.
//!
//! A frame is one line, `tag:payload`. The [`Decoder`](crate::Decoder) splits
//! the byte stream into [`RawFrame`]s (tag and payload, UTF-8 and control
//! characters already checked); [`ClientFrame::parse`] and
//! [`ServerFrame::parse`] apply the grammar of each tag with `nom`. Encoding
//! cannot fail: the payload types ([`Name`], [`Text`], ...) only hold values
//! the grammar allows. Whether a frame fits the maximum frame length is for
//! the caller to check with `encoded_len`, since only it knows the limit.
//!
//! A payload is made of fields separated by `:`; only the last field of a
//! frame may hold a colon (text), so every frame splits unambiguously.
//! Room names follow the rules of user names.

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::combinator::rest;
use nom::sequence::separated_pair;

use crate::decode::RawFrame;
use crate::error::PeerError;
use crate::text::{CapList, Code, Name, NameList, RoomList, Text, Token};

/// A frame sent by a client to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ClientFrame<'a> {
    /// `iam:NAME`: log in as `NAME`.
    Iam(Name<'a>),
    /// `iam:NAME:SECRET`: log in as `NAME`, proving it with `SECRET` (a
    /// password). A server without accounts, or one that reads names only
    /// (an older one), refuses it: names hold no colon.
    IamSecret {
        /// The name.
        name: Name<'a>,
        /// The secret; it may hold `:`, and may be empty (a server refuses
        /// an empty one like any wrong secret).
        secret: Text<'a>,
    },
    /// `msg:TEXT`: say `TEXT` in the default room.
    Msg(Text<'a>),
    /// `who:`: ask who is in the default room.
    Who,
    /// `who:ROOM`: ask who is in `ROOM`.
    WhoIn(Name<'a>),
    /// `ping:TOKEN`: are you there? Answered by `pong:TOKEN`.
    Ping(Token<'a>),
    /// `pong:TOKEN`: the answer to a ping.
    Pong(Token<'a>),
    /// `bye:REASON`: close the connection.
    Bye(Text<'a>),
    /// `cap:LIST`: ask for capabilities; answered by `cap:` with those the
    /// server enabled.
    Cap(CapList<'a>),
    /// `join:ROOM`: join a room (created if it does not exist).
    Join(Name<'a>),
    /// `part:ROOM`: leave a room.
    Part(Name<'a>),
    /// `rooms:`: ask which rooms exist.
    Rooms,
    /// `say:ROOM:TEXT`: say `TEXT` in `ROOM`.
    Say {
        /// The room.
        room: Name<'a>,
        /// What to say.
        text: Text<'a>,
    },
    /// `pm:NAME:TEXT`: say `TEXT` to the user `NAME` only.
    Pm {
        /// The recipient.
        to: Name<'a>,
        /// What to say.
        text: Text<'a>,
    },
    /// `resume:ROOM:EPOCH:NEXT`: join `ROOM` (or, before login, the rooms
    /// joined at login) from the message at offset `NEXT` of the log
    /// `EPOCH` on: the messages missed since are replayed before live
    /// traffic. Needs the `rooms` capability.
    Resume {
        /// The room.
        room: Name<'a>,
        /// The log the offsets belong to (hexadecimal on the wire), as the
        /// `room:` frame gave it.
        epoch: u64,
        /// The offset of the first message wanted: one past the last seen.
        next: u64,
    },
}

/// A frame sent by the server to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ServerFrame<'a> {
    /// `ok:NAME`: the login as `NAME` succeeded.
    Ok(Name<'a>),
    /// `msg:FROM:TEXT`: `FROM` said `TEXT` in the default room.
    Msg {
        /// Who said it.
        from: Name<'a>,
        /// What they said.
        text: Text<'a>,
    },
    /// `join:NAME`: `NAME` joined the default room (logged in).
    Join(Name<'a>),
    /// `left:NAME`: `NAME` left the default room.
    Left(Name<'a>),
    /// `users:N1,N2,...`: part of the answer to `who:`; an empty list ends it.
    Users(NameList<'a>),
    /// `err:CODE:TEXT`: the last frame was refused, or (fatal codes) the
    /// connection is about to close.
    Err {
        /// The error code.
        code: Code<'a>,
        /// A human-readable explanation.
        text: Text<'a>,
    },
    /// `ping:TOKEN`: are you there?
    Ping(Token<'a>),
    /// `pong:TOKEN`: the answer to a ping.
    Pong(Token<'a>),
    /// `bye:REASON`: the server closes the connection.
    Bye(Text<'a>),
    /// `notice:TEXT`: a message from the server itself (its operator or
    /// application), not from a user.
    Notice(Text<'a>),
    /// `cap:LIST`: the capabilities the server enabled for this connection.
    Cap(CapList<'a>),
    /// `said:ROOM:OFFSET:FROM:TEXT`: `FROM` said `TEXT` in `ROOM`; the
    /// message's position in the room's log is `OFFSET`.
    Said {
        /// The room.
        room: Name<'a>,
        /// The message's position in the room.
        offset: u64,
        /// Who said it.
        from: Name<'a>,
        /// What they said.
        text: Text<'a>,
    },
    /// `joined:ROOM:NAME`: `NAME` joined `ROOM`.
    Joined {
        /// The room.
        room: Name<'a>,
        /// Who.
        name: Name<'a>,
    },
    /// `parted:ROOM:NAME`: `NAME` left `ROOM`.
    Parted {
        /// The room.
        room: Name<'a>,
        /// Who.
        name: Name<'a>,
    },
    /// `members:ROOM:N1,N2,...`: part of the answer to `who:ROOM`; an empty
    /// list ends it.
    Members {
        /// The room.
        room: Name<'a>,
        /// Some of its members.
        names: NameList<'a>,
    },
    /// `rooms:R1=N1,R2=N2,...`: part of the answer to `rooms:`; an empty
    /// list ends it.
    Rooms(RoomList<'a>),
    /// `room:ROOM:EPOCH:NEXT`: this connection now receives `ROOM` live,
    /// from the message at offset `NEXT` on; `EPOCH` names the room's log.
    Room {
        /// The room.
        room: Name<'a>,
        /// The identity of the room's log (hexadecimal on the wire).
        epoch: u64,
        /// The offset of the next message.
        next: u64,
    },
    /// `pm:FROM:TO:TEXT`: `FROM` said `TEXT` to `TO` only (sent to both).
    Pm {
        /// The sender.
        from: Name<'a>,
        /// The recipient.
        to: Name<'a>,
        /// What was said.
        text: Text<'a>,
    },
    /// `room-notice:ROOM:TEXT`: the server said `TEXT` to the members of
    /// `ROOM`.
    RoomNotice {
        /// The room.
        room: Name<'a>,
        /// What it said.
        text: Text<'a>,
    },
}

/// One field of a payload, as encoded.
#[derive(Clone, Copy)]
enum Part<'a> {
    Str(&'a str),
    Dec(u64),
    Hex(u64),
}

impl Part<'_> {
    fn len(self) -> usize {
        match self {
            Part::Str(s) => s.len(),
            Part::Dec(n) => n.checked_ilog10().map_or(1, |d| d as usize + 1),
            Part::Hex(n) => n.checked_ilog2().map_or(1, |b| b as usize / 4 + 1),
        }
    }

    fn put(self, dst: &mut BytesMut) {
        match self {
            Part::Str(s) => dst.put_slice(s.as_bytes()),
            Part::Dec(n) => {
                let mut digits = [0u8; 20];
                let mut at = digits.len();
                let mut n = n;
                loop {
                    at -= 1;
                    digits[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                dst.put_slice(&digits[at..]);
            }
            Part::Hex(n) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let len = self.len();
                for i in (0..len).rev() {
                    dst.put_u8(HEX[((n >> (4 * i)) & 0xf) as usize]);
                }
            }
        }
    }
}

/// The fields of a payload: up to four, joined by `:`.
type Parts<'a> = ([Part<'a>; 4], usize);

fn one(a: &str) -> Parts<'_> {
    (
        [Part::Str(a), Part::Str(""), Part::Str(""), Part::Str("")],
        1,
    )
}

fn two<'a>(a: &'a str, b: &'a str) -> Parts<'a> {
    (
        [Part::Str(a), Part::Str(b), Part::Str(""), Part::Str("")],
        2,
    )
}

fn encoded_len(tag: &str, (parts, n): Parts<'_>) -> usize {
    let payload: usize = parts[..n].iter().map(|p| p.len()).sum::<usize>() + (n - 1);
    tag.len() + 1 + payload + 1
}

/// Writes `tag:part1:part2...\n`.
fn put_frame(dst: &mut BytesMut, tag: &str, parts: Parts<'_>) {
    dst.reserve(encoded_len(tag, parts));
    dst.put_slice(tag.as_bytes());
    for part in &parts.0[..parts.1] {
        dst.put_u8(b':');
        part.put(dst);
    }
    dst.put_u8(b'\n');
}

impl<'a> ClientFrame<'a> {
    /// Applies the client-frame grammar to a decoded line.
    #[inline]
    pub fn parse(raw: RawFrame<'a>) -> Result<Self, PeerError> {
        let (tag, payload) = (raw.tag(), raw.payload());
        Ok(match tag {
            "iam" => match payload.split_once(':') {
                Some((name, secret)) => ClientFrame::IamSecret {
                    name: Name::new(name)?,
                    secret: Text::trusted(secret),
                },
                None => ClientFrame::Iam(Name::new(payload)?),
            },
            "msg" => ClientFrame::Msg(Text::trusted(payload)),
            "who" if payload.is_empty() => ClientFrame::Who,
            "who" => ClientFrame::WhoIn(room("who", payload)?),
            "ping" => ClientFrame::Ping(token("ping", payload)?),
            "pong" => ClientFrame::Pong(token("pong", payload)?),
            "bye" => ClientFrame::Bye(Text::trusted(payload)),
            "cap" => ClientFrame::Cap(
                CapList::new(payload).map_err(|_| bad("cap", "expected names split by ','"))?,
            ),
            "join" => ClientFrame::Join(room("join", payload)?),
            "part" => ClientFrame::Part(room("part", payload)?),
            "rooms" if payload.is_empty() => ClientFrame::Rooms,
            "rooms" => return Err(bad("rooms", "rooms: takes no payload")),
            "say" => {
                let (r, text) =
                    split_colon(payload).ok_or_else(|| bad("say", "expected say:ROOM:TEXT"))?;
                ClientFrame::Say {
                    room: room("say", r)?,
                    text: Text::trusted(text),
                }
            }
            "resume" => {
                const RESUME: &str = "expected resume:ROOM:EPOCH:NEXT";
                let (r, rest) = split_colon(payload).ok_or_else(|| bad("resume", RESUME))?;
                let (epoch, next) = split_colon(rest).ok_or_else(|| bad("resume", RESUME))?;
                ClientFrame::Resume {
                    room: room("resume", r)?,
                    epoch: hex("resume", epoch)?,
                    next: decimal("resume", next)?,
                }
            }
            "pm" => {
                let (to, text) =
                    split_colon(payload).ok_or_else(|| bad("pm", "expected pm:NAME:TEXT"))?;
                ClientFrame::Pm {
                    to: Name::new(to)?,
                    text: Text::trusted(text),
                }
            }
            other => return Err(PeerError::UnknownTag { tag: other.into() }),
        })
    }

    /// The frame's tag, e.g. `"msg"`.
    pub fn tag(&self) -> &'static str {
        match self {
            ClientFrame::Iam(_) | ClientFrame::IamSecret { .. } => "iam",
            ClientFrame::Msg(_) => "msg",
            ClientFrame::Who | ClientFrame::WhoIn(_) => "who",
            ClientFrame::Ping(_) => "ping",
            ClientFrame::Pong(_) => "pong",
            ClientFrame::Bye(_) => "bye",
            ClientFrame::Cap(_) => "cap",
            ClientFrame::Join(_) => "join",
            ClientFrame::Part(_) => "part",
            ClientFrame::Rooms => "rooms",
            ClientFrame::Say { .. } => "say",
            ClientFrame::Pm { .. } => "pm",
            ClientFrame::Resume { .. } => "resume",
        }
    }

    fn parts(&self) -> Parts<'_> {
        match self {
            ClientFrame::Iam(n)
            | ClientFrame::WhoIn(n)
            | ClientFrame::Join(n)
            | ClientFrame::Part(n) => one(n),
            ClientFrame::Msg(t) | ClientFrame::Bye(t) => one(t),
            ClientFrame::Who | ClientFrame::Rooms => one(""),
            ClientFrame::Ping(t) | ClientFrame::Pong(t) => one(t),
            ClientFrame::Cap(list) => one(list),
            ClientFrame::Say { room, text } => two(room, text),
            ClientFrame::Pm { to, text } => two(to, text),
            ClientFrame::IamSecret { name, secret } => two(name, secret),
            ClientFrame::Resume { room, epoch, next } => (
                [
                    Part::Str(room),
                    Part::Hex(*epoch),
                    Part::Dec(*next),
                    Part::Str(""),
                ],
                3,
            ),
        }
    }

    /// The encoded length in bytes, LF included.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self.tag(), self.parts())
    }

    /// Appends the frame, LF-terminated, to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        put_frame(dst, self.tag(), self.parts());
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> ClientFrame<'static> {
        match self {
            ClientFrame::Iam(n) => ClientFrame::Iam(n.into_owned()),
            ClientFrame::IamSecret { name, secret } => ClientFrame::IamSecret {
                name: name.into_owned(),
                secret: secret.into_owned(),
            },
            ClientFrame::Msg(t) => ClientFrame::Msg(t.into_owned()),
            ClientFrame::Who => ClientFrame::Who,
            ClientFrame::WhoIn(r) => ClientFrame::WhoIn(r.into_owned()),
            ClientFrame::Ping(t) => ClientFrame::Ping(t.into_owned()),
            ClientFrame::Pong(t) => ClientFrame::Pong(t.into_owned()),
            ClientFrame::Bye(t) => ClientFrame::Bye(t.into_owned()),
            ClientFrame::Cap(l) => ClientFrame::Cap(l.into_owned()),
            ClientFrame::Join(r) => ClientFrame::Join(r.into_owned()),
            ClientFrame::Part(r) => ClientFrame::Part(r.into_owned()),
            ClientFrame::Rooms => ClientFrame::Rooms,
            ClientFrame::Say { room, text } => ClientFrame::Say {
                room: room.into_owned(),
                text: text.into_owned(),
            },
            ClientFrame::Pm { to, text } => ClientFrame::Pm {
                to: to.into_owned(),
                text: text.into_owned(),
            },
            ClientFrame::Resume { room, epoch, next } => ClientFrame::Resume {
                room: room.into_owned(),
                epoch,
                next,
            },
        }
    }
}

impl<'a> ServerFrame<'a> {
    /// Applies the server-frame grammar to a decoded line.
    #[inline]
    pub fn parse(raw: RawFrame<'a>) -> Result<Self, PeerError> {
        let (tag, payload) = (raw.tag(), raw.payload());
        Ok(match tag {
            "ok" => ServerFrame::Ok(Name::new(payload)?),
            "msg" => {
                let (from, text) =
                    split_colon(payload).ok_or_else(|| bad("msg", "expected msg:FROM:TEXT"))?;
                ServerFrame::Msg {
                    from: Name::new(from)?,
                    text: Text::trusted(text),
                }
            }
            "join" => ServerFrame::Join(Name::new(payload)?),
            "left" => ServerFrame::Left(Name::new(payload)?),
            "users" => ServerFrame::Users(names("users", payload)?),
            "err" => {
                let (code, text) =
                    split_colon(payload).ok_or_else(|| bad("err", "expected err:CODE:TEXT"))?;
                ServerFrame::Err {
                    code: Code::new(code).map_err(|_| bad("err", "malformed error code"))?,
                    text: Text::trusted(text),
                }
            }
            "ping" => ServerFrame::Ping(token("ping", payload)?),
            "pong" => ServerFrame::Pong(token("pong", payload)?),
            "bye" => ServerFrame::Bye(Text::trusted(payload)),
            "notice" => ServerFrame::Notice(Text::trusted(payload)),
            "cap" => ServerFrame::Cap(
                CapList::new(payload).map_err(|_| bad("cap", "expected names split by ','"))?,
            ),
            "said" => {
                let (r, rest) = split_colon(payload).ok_or_else(|| bad("said", SAID))?;
                let (offset, rest) = split_colon(rest).ok_or_else(|| bad("said", SAID))?;
                let (from, text) = split_colon(rest).ok_or_else(|| bad("said", SAID))?;
                ServerFrame::Said {
                    room: room("said", r)?,
                    offset: decimal("said", offset)?,
                    from: Name::new(from)?,
                    text: Text::trusted(text),
                }
            }
            "joined" | "parted" => {
                let (r, name) = split_colon(payload)
                    .ok_or_else(|| bad(static_tag(tag), "expected ROOM:NAME"))?;
                let (room, name) = (room(static_tag(tag), r)?, Name::new(name)?);
                if tag == "joined" {
                    ServerFrame::Joined { room, name }
                } else {
                    ServerFrame::Parted { room, name }
                }
            }
            "members" => {
                let (r, list) = payload
                    .split_once(':')
                    .ok_or_else(|| bad("members", "expected members:ROOM:NAMES"))?;
                ServerFrame::Members {
                    room: room("members", r)?,
                    names: names("members", list)?,
                }
            }
            "rooms" => ServerFrame::Rooms(
                RoomList::new(payload)
                    .map_err(|_| bad("rooms", "expected ROOM=COUNT entries split by ','"))?,
            ),
            "room" => {
                const ROOM: &str = "expected room:ROOM:EPOCH:NEXT";
                let (r, rest) = split_colon(payload).ok_or_else(|| bad("room", ROOM))?;
                let (epoch, next) = split_colon(rest).ok_or_else(|| bad("room", ROOM))?;
                ServerFrame::Room {
                    room: room("room", r)?,
                    epoch: hex("room", epoch)?,
                    next: decimal("room", next)?,
                }
            }
            "pm" => {
                const PM: &str = "expected pm:FROM:TO:TEXT";
                let (from, rest) = split_colon(payload).ok_or_else(|| bad("pm", PM))?;
                let (to, text) = split_colon(rest).ok_or_else(|| bad("pm", PM))?;
                ServerFrame::Pm {
                    from: Name::new(from)?,
                    to: Name::new(to)?,
                    text: Text::trusted(text),
                }
            }
            "room-notice" => {
                let (r, text) = split_colon(payload)
                    .ok_or_else(|| bad("room-notice", "expected room-notice:ROOM:TEXT"))?;
                ServerFrame::RoomNotice {
                    room: room("room-notice", r)?,
                    text: Text::trusted(text),
                }
            }
            other => return Err(PeerError::UnknownTag { tag: other.into() }),
        })
    }

    /// The frame's tag, e.g. `"users"`.
    pub fn tag(&self) -> &'static str {
        match self {
            ServerFrame::Ok(_) => "ok",
            ServerFrame::Msg { .. } => "msg",
            ServerFrame::Join(_) => "join",
            ServerFrame::Left(_) => "left",
            ServerFrame::Users(_) => "users",
            ServerFrame::Err { .. } => "err",
            ServerFrame::Ping(_) => "ping",
            ServerFrame::Pong(_) => "pong",
            ServerFrame::Bye(_) => "bye",
            ServerFrame::Notice(_) => "notice",
            ServerFrame::Cap(_) => "cap",
            ServerFrame::Said { .. } => "said",
            ServerFrame::Joined { .. } => "joined",
            ServerFrame::Parted { .. } => "parted",
            ServerFrame::Members { .. } => "members",
            ServerFrame::Rooms(_) => "rooms",
            ServerFrame::Room { .. } => "room",
            ServerFrame::Pm { .. } => "pm",
            ServerFrame::RoomNotice { .. } => "room-notice",
        }
    }

    fn parts(&self) -> Parts<'_> {
        match self {
            ServerFrame::Ok(n) | ServerFrame::Join(n) | ServerFrame::Left(n) => one(n),
            ServerFrame::Msg { from, text } => two(from, text),
            ServerFrame::Users(list) => one(list),
            ServerFrame::Err { code, text } => two(code, text),
            ServerFrame::Ping(t) | ServerFrame::Pong(t) => one(t),
            ServerFrame::Bye(t) | ServerFrame::Notice(t) => one(t),
            ServerFrame::Cap(list) => one(list),
            ServerFrame::Said {
                room,
                offset,
                from,
                text,
            } => (
                [
                    Part::Str(room),
                    Part::Dec(*offset),
                    Part::Str(from),
                    Part::Str(text),
                ],
                4,
            ),
            ServerFrame::Joined { room, name } | ServerFrame::Parted { room, name } => {
                two(room, name)
            }
            ServerFrame::Members { room, names } => two(room, names),
            ServerFrame::Rooms(list) => one(list),
            ServerFrame::Room { room, epoch, next } => (
                [
                    Part::Str(room),
                    Part::Hex(*epoch),
                    Part::Dec(*next),
                    Part::Str(""),
                ],
                3,
            ),
            ServerFrame::Pm { from, to, text } => (
                [
                    Part::Str(from),
                    Part::Str(to),
                    Part::Str(text),
                    Part::Str(""),
                ],
                3,
            ),
            ServerFrame::RoomNotice { room, text } => two(room, text),
        }
    }

    /// The encoded length in bytes, LF included.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self.tag(), self.parts())
    }

    /// Appends the frame, LF-terminated, to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        put_frame(dst, self.tag(), self.parts());
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> ServerFrame<'static> {
        match self {
            ServerFrame::Ok(n) => ServerFrame::Ok(n.into_owned()),
            ServerFrame::Msg { from, text } => ServerFrame::Msg {
                from: from.into_owned(),
                text: text.into_owned(),
            },
            ServerFrame::Join(n) => ServerFrame::Join(n.into_owned()),
            ServerFrame::Left(n) => ServerFrame::Left(n.into_owned()),
            ServerFrame::Users(l) => ServerFrame::Users(l.into_owned()),
            ServerFrame::Err { code, text } => ServerFrame::Err {
                code: code.into_owned(),
                text: text.into_owned(),
            },
            ServerFrame::Ping(t) => ServerFrame::Ping(t.into_owned()),
            ServerFrame::Pong(t) => ServerFrame::Pong(t.into_owned()),
            ServerFrame::Bye(t) => ServerFrame::Bye(t.into_owned()),
            ServerFrame::Notice(t) => ServerFrame::Notice(t.into_owned()),
            ServerFrame::Cap(l) => ServerFrame::Cap(l.into_owned()),
            ServerFrame::Said {
                room,
                offset,
                from,
                text,
            } => ServerFrame::Said {
                room: room.into_owned(),
                offset,
                from: from.into_owned(),
                text: text.into_owned(),
            },
            ServerFrame::Joined { room, name } => ServerFrame::Joined {
                room: room.into_owned(),
                name: name.into_owned(),
            },
            ServerFrame::Parted { room, name } => ServerFrame::Parted {
                room: room.into_owned(),
                name: name.into_owned(),
            },
            ServerFrame::Members { room, names } => ServerFrame::Members {
                room: room.into_owned(),
                names: names.into_owned(),
            },
            ServerFrame::Rooms(l) => ServerFrame::Rooms(l.into_owned()),
            ServerFrame::Room { room, epoch, next } => ServerFrame::Room {
                room: room.into_owned(),
                epoch,
                next,
            },
            ServerFrame::Pm { from, to, text } => ServerFrame::Pm {
                from: from.into_owned(),
                to: to.into_owned(),
                text: text.into_owned(),
            },
            ServerFrame::RoomNotice { room, text } => ServerFrame::RoomNotice {
                room: room.into_owned(),
                text: text.into_owned(),
            },
        }
    }
}

const SAID: &str = "expected said:ROOM:OFFSET:FROM:TEXT";

/// The tags that share a parser, as `'static` strings for errors.
fn static_tag(tag: &str) -> &'static str {
    if tag == "joined" { "joined" } else { "parted" }
}

/// Splits `FIELD:REST` at the first colon; the field must not be empty.
fn split_colon(payload: &str) -> Option<(&str, &str)> {
    let field = take_while1(|c: char| c != ':');
    let parsed: nom::IResult<&str, (&str, &str), ()> =
        separated_pair(field, char(':'), rest).parse(payload);
    parsed.ok().map(|(_, pair)| pair)
}

fn token<'a>(tag: &'static str, payload: &'a str) -> Result<Token<'a>, PeerError> {
    Token::new(payload).map_err(|_| bad(tag, "token must be 0 to 64 visible ASCII characters"))
}

/// A room name: the rules of a user name.
fn room<'a>(tag: &'static str, payload: &'a str) -> Result<Name<'a>, PeerError> {
    Name::new(payload).map_err(|_| {
        bad(
            tag,
            "a room name is 1 to 32 letters, digits, '_', '-' or '.'",
        )
    })
}

fn names<'a>(tag: &'static str, payload: &'a str) -> Result<NameList<'a>, PeerError> {
    NameList::new(payload).map_err(|_| bad(tag, "expected names split by ','"))
}

/// A decimal `u64`: 1 to 20 digits, no sign.
fn decimal(tag: &'static str, field: &str) -> Result<u64, PeerError> {
    if field.is_empty() || field.len() > 20 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(tag, "expected a decimal number"));
    }
    field
        .parse()
        .map_err(|_| bad(tag, "number larger than 2^64 - 1"))
}

/// A lowercase hexadecimal `u64`: 1 to 16 digits.
fn hex(tag: &'static str, field: &str) -> Result<u64, PeerError> {
    if field.is_empty()
        || field.len() > 16
        || !field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(bad(tag, "expected a lowercase hexadecimal number"));
    }
    u64::from_str_radix(field, 16).map_err(|_| bad(tag, "bad hexadecimal number"))
}

fn bad(tag: &'static str, reason: &'static str) -> PeerError {
    PeerError::BadPayload { tag, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvalidName;
    use crate::text::{CapList, RoomList};

    fn raw<'a>(tag: &'a str, payload: &'a str) -> RawFrame<'a> {
        RawFrame::trusted(tag, payload)
    }

    fn encoded(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut dst = BytesMut::new();
        f(&mut dst);
        String::from_utf8(dst.to_vec()).unwrap()
    }

    #[test]
    fn client_frames_parse() {
        let p = |t, p| ClientFrame::parse(raw(t, p));
        assert_eq!(
            p("iam", "张三"),
            Ok(ClientFrame::Iam(Name::new("张三").unwrap()))
        );
        assert_eq!(
            p("msg", "a:b"),
            Ok(ClientFrame::Msg(Text::new("a:b").unwrap()))
        );
        assert_eq!(p("who", ""), Ok(ClientFrame::Who));
        assert_eq!(
            p("ping", "7"),
            Ok(ClientFrame::Ping(Token::new("7").unwrap()))
        );
        assert_eq!(p("bye", ""), Ok(ClientFrame::Bye(Text::new("").unwrap())));
        assert_eq!(
            p("iam", "a b"),
            Err(PeerError::BadName(InvalidName::BadChar))
        );
        assert_eq!(
            p("who", "rust"),
            Ok(ClientFrame::WhoIn(Name::new("rust").unwrap()))
        );
        assert!(matches!(p("who", "x y"), Err(PeerError::BadPayload { .. })));
        assert!(matches!(
            p("ping", "a b"),
            Err(PeerError::BadPayload { .. })
        ));
        assert_eq!(
            p("nick", "x"),
            Err(PeerError::UnknownTag { tag: "nick".into() })
        );
        // Server-only tags are unknown from a client.
        assert!(matches!(p("ok", "x"), Err(PeerError::UnknownTag { .. })));
    }

    #[test]
    fn server_frames_parse() {
        let p = |t, p| ServerFrame::parse(raw(t, p));
        assert_eq!(
            p("msg", "lisi:hi: there"),
            Ok(ServerFrame::Msg {
                from: Name::new("lisi").unwrap(),
                text: Text::new("hi: there").unwrap()
            })
        );
        assert_eq!(
            p("msg", "lisi:"),
            Ok(ServerFrame::Msg {
                from: Name::new("lisi").unwrap(),
                text: Text::new("").unwrap()
            })
        );
        assert!(matches!(
            p("msg", "lisi"),
            Err(PeerError::BadPayload { .. })
        ));
        assert!(matches!(p("msg", ":hi"), Err(PeerError::BadPayload { .. })));
        assert!(matches!(p("msg", "a b:hi"), Err(PeerError::BadName(_))));
        let Ok(ServerFrame::Users(list)) = p("users", "a,b") else {
            panic!()
        };
        assert_eq!(list.names().collect::<Vec<_>>(), ["a", "b"]);
        assert!(matches!(
            p("users", "a,,b"),
            Err(PeerError::BadPayload { .. })
        ));
        let Ok(ServerFrame::Err { code, text }) = p("err", "name-taken:taken") else {
            panic!()
        };
        assert!(code == crate::ErrorCode::NameTaken);
        assert_eq!(text, "taken");
        assert!(matches!(
            p("err", "NOPE:x"),
            Err(PeerError::BadPayload { .. })
        ));
        assert!(matches!(p("iam", "x"), Err(PeerError::UnknownTag { .. })));
    }

    #[test]
    fn frames_encode() {
        let name = Name::new("zhangsan").unwrap();
        let text = Text::new("did you have dinner").unwrap();
        let f = ClientFrame::Msg(text.clone());
        assert_eq!(encoded(|d| f.encode(d)), "msg:did you have dinner\n");
        assert_eq!(f.encoded_len(), "msg:did you have dinner\n".len());
        assert_eq!(encoded(|d| ClientFrame::Who.encode(d)), "who:\n");
        assert_eq!(ClientFrame::Who.encoded_len(), 5);
        let s = ServerFrame::Msg { from: name, text };
        assert_eq!(
            encoded(|d| s.encode(d)),
            "msg:zhangsan:did you have dinner\n"
        );
        assert_eq!(s.encoded_len(), "msg:zhangsan:did you have dinner\n".len());
        let e = ServerFrame::Err {
            code: crate::ErrorCode::Timeout.into(),
            text: Text::new("").unwrap(),
        };
        assert_eq!(encoded(|d| e.encode(d)), "err:timeout:\n");
        assert_eq!(e.encoded_len(), 13);
    }

    #[test]
    fn room_frames_round_trip_and_refuse_what_breaks_their_grammar() {
        let n = |s| Name::new(s).unwrap();
        let t = |s| Text::new(s).unwrap();
        let client = [
            ClientFrame::IamSecret {
                name: n("zhangsan"),
                secret: t("pass:word with spaces"),
            },
            ClientFrame::Cap(CapList::new("rooms,x-1").unwrap()),
            ClientFrame::Resume {
                room: n("rust"),
                epoch: 0xfeed,
                next: 17,
            },
            ClientFrame::Join(n("rust")),
            ClientFrame::Part(n("张三")),
            ClientFrame::Rooms,
            ClientFrame::WhoIn(n("rust")),
            ClientFrame::Say {
                room: n("rust"),
                text: t("hi: there"),
            },
            ClientFrame::Pm {
                to: n("lisi"),
                text: t(""),
            },
        ];
        for frame in client {
            let mut bytes = BytesMut::new();
            frame.encode(&mut bytes);
            assert_eq!(bytes.len(), frame.encoded_len(), "{frame:?}");
            let line = std::str::from_utf8(&bytes[..bytes.len() - 1]).unwrap();
            let raw = RawFrame::from_line(line).unwrap();
            assert_eq!(ClientFrame::parse(raw).unwrap(), frame);
        }
        let server = [
            ServerFrame::Cap(CapList::new("").unwrap()),
            ServerFrame::Said {
                room: n("rust"),
                offset: u64::MAX,
                from: n("zhangsan"),
                text: t("a:b"),
            },
            ServerFrame::Said {
                room: n("r"),
                offset: 0,
                from: n("1"),
                text: t(""),
            },
            ServerFrame::Joined {
                room: n("rust"),
                name: n("lisi"),
            },
            ServerFrame::Parted {
                room: n("rust"),
                name: n("lisi"),
            },
            ServerFrame::Members {
                room: n("rust"),
                names: NameList::new("a,b").unwrap(),
            },
            ServerFrame::Members {
                room: n("rust"),
                names: NameList::new("").unwrap(),
            },
            ServerFrame::Rooms(RoomList::new("lobby=3,rust=0").unwrap()),
            ServerFrame::Room {
                room: n("rust"),
                epoch: 0x0123_4567_89ab_cdef,
                next: 42,
            },
            ServerFrame::Room {
                room: n("rust"),
                epoch: 0,
                next: 0,
            },
            ServerFrame::Pm {
                from: n("a"),
                to: n("b"),
                text: t("psst: hi"),
            },
            ServerFrame::RoomNotice {
                room: n("rust"),
                text: t("restart at 3"),
            },
        ];
        for frame in server {
            let mut bytes = BytesMut::new();
            frame.encode(&mut bytes);
            assert_eq!(bytes.len(), frame.encoded_len(), "{frame:?}");
            let line = std::str::from_utf8(&bytes[..bytes.len() - 1]).unwrap();
            let raw = RawFrame::from_line(line).unwrap();
            assert_eq!(ServerFrame::parse(raw).unwrap(), frame, "{line}");
        }
        assert_eq!(
            encoded(|d| ServerFrame::Room {
                room: n("rust"),
                epoch: 255,
                next: 7
            }
            .encode(d)),
            "room:rust:ff:7\n"
        );
        let p = |t, p| ServerFrame::parse(raw(t, p));
        for (tag, payload) in [
            ("said", "rust:x:a:b"),
            ("said", "rust:18446744073709551616:a:b"),
            ("said", "rust:1"),
            ("room", "rust:FF:1"),
            ("room", "rust:12345678901234567:1"),
            ("joined", "rust"),
            ("members", "rust"),
            ("rooms", "rust"),
            ("pm", "a:b"),
        ] {
            assert!(p(tag, payload).is_err(), "{tag}:{payload}");
        }
        let c = |t, p| ClientFrame::parse(raw(t, p));
        for (tag, payload) in [
            ("say", "rust"),
            ("pm", "lisi"),
            ("rooms", "x"),
            ("cap", "A"),
            ("resume", "rust:1"),
            ("resume", "rust:g:1"),
            ("resume", "rust:1:-1"),
        ] {
            assert!(c(tag, payload).is_err(), "{tag}:{payload}");
        }
    }

    #[test]
    fn owned_frames_equal_borrowed() {
        let line = String::from("lisi");
        let f = ServerFrame::Join(Name::new(line.as_str()).unwrap());
        let owned: ServerFrame<'static> = f.clone().into_owned();
        drop(line);
        assert_eq!(owned.tag(), "join");
        assert_eq!(owned, ServerFrame::Join(Name::new("lisi").unwrap()));
    }
}
