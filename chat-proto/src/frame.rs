//! The frames of both directions, their parsing and their encoding.
//!
//! A frame is one line, `tag:payload`. The [`Decoder`](crate::Decoder) splits
//! the byte stream into [`RawFrame`]s (tag and payload, UTF-8 and control
//! characters already checked); [`ClientFrame::parse`] and
//! [`ServerFrame::parse`] apply the grammar of each tag with `nom`. Encoding
//! cannot fail: the payload types ([`Name`], [`Text`], ...) only hold values
//! the grammar allows. Whether a frame fits the maximum frame length is for
//! the caller to check with `encoded_len`, since only it knows the limit.

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::combinator::rest;
use nom::sequence::separated_pair;

use crate::decode::RawFrame;
use crate::error::PeerError;
use crate::text::{Code, Name, NameList, Text, Token};

/// A frame sent by a client to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ClientFrame<'a> {
    /// `iam:NAME`: log in as `NAME`.
    Iam(Name<'a>),
    /// `msg:TEXT`: say `TEXT` to the room.
    Msg(Text<'a>),
    /// `who:`: ask for the list of logged-in users.
    Who,
    /// `ping:TOKEN`: are you there? Answered by `pong:TOKEN`.
    Ping(Token<'a>),
    /// `pong:TOKEN`: the answer to a ping.
    Pong(Token<'a>),
    /// `bye:REASON`: close the connection.
    Bye(Text<'a>),
}

/// A frame sent by the server to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ServerFrame<'a> {
    /// `ok:NAME`: the login as `NAME` succeeded.
    Ok(Name<'a>),
    /// `msg:FROM:TEXT`: `FROM` said `TEXT`.
    Msg {
        /// Who said it.
        from: Name<'a>,
        /// What they said.
        text: Text<'a>,
    },
    /// `join:NAME`: `NAME` logged in.
    Join(Name<'a>),
    /// `left:NAME`: `NAME` left.
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
}

impl<'a> ClientFrame<'a> {
    /// Applies the client-frame grammar to a decoded line.
    #[inline]
    pub fn parse(raw: RawFrame<'a>) -> Result<Self, PeerError> {
        let (tag, payload) = (raw.tag(), raw.payload());
        Ok(match tag {
            "iam" => ClientFrame::Iam(Name::new(payload)?),
            "msg" => ClientFrame::Msg(Text::trusted(payload)),
            "who" if payload.is_empty() => ClientFrame::Who,
            "who" => return Err(bad("who", "who: takes no payload")),
            "ping" => ClientFrame::Ping(token("ping", payload)?),
            "pong" => ClientFrame::Pong(token("pong", payload)?),
            "bye" => ClientFrame::Bye(Text::trusted(payload)),
            other => return Err(PeerError::UnknownTag { tag: other.into() }),
        })
    }

    /// The frame's tag, e.g. `"msg"`.
    pub fn tag(&self) -> &'static str {
        match self {
            ClientFrame::Iam(_) => "iam",
            ClientFrame::Msg(_) => "msg",
            ClientFrame::Who => "who",
            ClientFrame::Ping(_) => "ping",
            ClientFrame::Pong(_) => "pong",
            ClientFrame::Bye(_) => "bye",
        }
    }

    fn payload(&self) -> &str {
        match self {
            ClientFrame::Iam(n) => n,
            ClientFrame::Msg(t) | ClientFrame::Bye(t) => t,
            ClientFrame::Who => "",
            ClientFrame::Ping(t) | ClientFrame::Pong(t) => t,
        }
    }

    /// The encoded length in bytes, LF included.
    pub fn encoded_len(&self) -> usize {
        self.tag().len() + 1 + self.payload().len() + 1
    }

    /// Appends the frame, LF-terminated, to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        put_frame(dst, self.tag(), &[self.payload()]);
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> ClientFrame<'static> {
        match self {
            ClientFrame::Iam(n) => ClientFrame::Iam(n.into_owned()),
            ClientFrame::Msg(t) => ClientFrame::Msg(t.into_owned()),
            ClientFrame::Who => ClientFrame::Who,
            ClientFrame::Ping(t) => ClientFrame::Ping(t.into_owned()),
            ClientFrame::Pong(t) => ClientFrame::Pong(t.into_owned()),
            ClientFrame::Bye(t) => ClientFrame::Bye(t.into_owned()),
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
            "users" => ServerFrame::Users(
                NameList::new(payload).map_err(|_| bad("users", "expected names split by ','"))?,
            ),
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
        }
    }

    /// The payload in its parts: one part, or two joined by `:`.
    fn parts(&self) -> ([&str; 2], usize) {
        match self {
            ServerFrame::Ok(n) | ServerFrame::Join(n) | ServerFrame::Left(n) => ([n, ""], 1),
            ServerFrame::Msg { from, text } => ([from, text], 2),
            ServerFrame::Users(list) => ([list, ""], 1),
            ServerFrame::Err { code, text } => ([code, text], 2),
            ServerFrame::Ping(t) | ServerFrame::Pong(t) => ([t, ""], 1),
            ServerFrame::Bye(t) | ServerFrame::Notice(t) => ([t, ""], 1),
        }
    }

    /// The encoded length in bytes, LF included.
    pub fn encoded_len(&self) -> usize {
        let (parts, n) = self.parts();
        let payload: usize = parts[..n].iter().map(|p| p.len()).sum::<usize>() + (n - 1);
        self.tag().len() + 1 + payload + 1
    }

    /// Appends the frame, LF-terminated, to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let (parts, n) = self.parts();
        put_frame(dst, self.tag(), &parts[..n]);
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
        }
    }
}

/// Writes `tag:part1:part2...\n`.
fn put_frame(dst: &mut BytesMut, tag: &str, parts: &[&str]) {
    let len = tag.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>() + 1;
    dst.reserve(len);
    dst.put_slice(tag.as_bytes());
    for part in parts {
        dst.put_u8(b':');
        dst.put_slice(part.as_bytes());
    }
    dst.put_u8(b'\n');
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

fn bad(tag: &'static str, reason: &'static str) -> PeerError {
    PeerError::BadPayload { tag, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvalidName;

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
        assert!(matches!(p("who", "x"), Err(PeerError::BadPayload { .. })));
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
    fn owned_frames_equal_borrowed() {
        let line = String::from("lisi");
        let f = ServerFrame::Join(Name::new(line.as_str()).unwrap());
        let owned: ServerFrame<'static> = f.clone().into_owned();
        drop(line);
        assert_eq!(owned.tag(), "join");
        assert_eq!(owned, ServerFrame::Join(Name::new("lisi").unwrap()));
    }
}
