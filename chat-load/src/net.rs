//! Sockets and login, shared by both scenarios.
//!
//! * [`check_loopback`]: the generator only ever talks to, and binds,
//!   addresses in 127.0.0.0/8.
//! * [`source_addr`] and [`connect`]: a client socket bound to
//!   127.0.0.(1 + i mod k) before it connects, so many connections can
//!   spread over several source addresses when one runs out of ephemeral
//!   ports.
//! * [`login`]: `iam:NAME` until `ok:NAME`, answering pings on the way;
//!   [`login_in_room`]: the same as a client of the rooms capability
//!   (`cap:rooms` first), then `join:ROOM` until the server says the
//!   client reads `ROOM` (`room:ROOM:...`).
//! * [`Incoming`]: a server frame decoded with `chat_proto::Decoder` and
//!   `ServerFrame::parse`, reduced to what the generator acts on.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::BytesMut;
use chat_proto::{CapList, ClientFrame, Decoder, Name, PeerError, RawFrame, ServerFrame, Token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::LoadError;

/// Refuses any address outside 127.0.0.0/8 (IPv6 included: the scenarios
/// are defined on IPv4 loopback).
pub fn check_loopback(ip: IpAddr, what: &str) -> Result<(), LoadError> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[0] == 127 => Ok(()),
        _ => Err(LoadError::Config(format!(
            "{what} {ip} is outside 127.0.0.0/8; chat-load only runs over loopback"
        ))),
    }
}

/// Parses a target `IP:PORT` (no name lookup) and checks it is loopback.
pub fn parse_target(addr: &str) -> Result<SocketAddr, LoadError> {
    let target: SocketAddr = addr
        .parse()
        .map_err(|_| LoadError::Config(format!("--addr {addr:?} is not IP:PORT")))?;
    check_loopback(target.ip(), "target address")?;
    Ok(target)
}

/// The source address of connection `i` when spreading over `sources`
/// addresses: 127.0.0.(1 + i mod sources). `sources` is 1 to 254.
pub fn source_addr(i: usize, sources: u8) -> Ipv4Addr {
    let k = usize::from(sources.clamp(1, 254));
    Ipv4Addr::new(127, 0, 0, 1 + (i % k) as u8)
}

/// Connects to `target` from `source` (port chosen by the kernel), with
/// `TCP_NODELAY` like the servers.
///
/// With `abortive_close`, closing the socket resets the connection
/// (`SO_LINGER` 0) instead of leaving it in `TIME_WAIT` for a minute: tens
/// of thousands of those from one run make the next run's port search in
/// `bind` slow (seconds of kernel time) or fail.
pub async fn connect(
    target: SocketAddr,
    source: Ipv4Addr,
    abortive_close: bool,
) -> Result<TcpStream, LoadError> {
    check_loopback(target.ip(), "target address")?;
    check_loopback(IpAddr::V4(source), "source address")?;
    let fail =
        |what: &str, e: io::Error| LoadError::Io(format!("{what} {source} -> {target}: {e}"));
    let socket = TcpSocket::new_v4().map_err(|e| fail("socket", e))?;
    // Lets a port still in TIME_WAIT from an earlier run be bound again.
    socket
        .set_reuseaddr(true)
        .map_err(|e| fail("setsockopt", e))?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .map_err(|e| fail("bind", e))?;
    if abortive_close {
        socket
            .set_zero_linger()
            .map_err(|e| fail("setsockopt", e))?;
    }
    let stream = socket
        .connect(target)
        .await
        .map_err(|e| fail("connect", e))?;
    stream.set_nodelay(true).map_err(|e| fail("nodelay", e))?;
    Ok(stream)
}

/// A server frame, reduced to what the generator acts on; borrows from the
/// parsed frame, which borrows from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// `ok:NAME`.
    Ok(&'a str),
    /// `msg:FROM:TEXT`.
    Msg {
        /// The sender's name.
        from: &'a str,
        /// The text.
        text: &'a str,
    },
    /// `said:ROOM:OFFSET:FROM:TEXT` (the room form).
    Said {
        /// The room.
        room: &'a str,
        /// The sender's name.
        from: &'a str,
        /// The text.
        text: &'a str,
    },
    /// `room:ROOM:EPOCH:NEXT`: the client now reads `ROOM`.
    Room(&'a str),
    /// `ping:TOKEN`: must be answered with `pong:TOKEN`.
    Ping(Token<'a>),
    /// `err:CODE:TEXT`.
    Err(&'a str, &'a str),
    /// `bye:REASON`: the server is closing the connection.
    Bye(&'a str),
    /// `join:`, `left:`, `users:`, `pong:`, `cap:`, `joined:`, ...: nothing
    /// to do.
    Ignored,
    /// A frame the decoder or the grammar refused.
    Bad(&'a PeerError),
}

/// Parses one decoded frame with `ServerFrame::parse` and hands `f` what it
/// is. Nothing is copied: the strings borrow from the decoder's input.
#[inline]
pub fn classify<R>(frame: Result<RawFrame<'_>, PeerError>, f: impl FnOnce(Incoming<'_>) -> R) -> R {
    let parsed = frame.and_then(ServerFrame::parse);
    let incoming = match &parsed {
        Ok(ServerFrame::Msg { from, text }) => Incoming::Msg {
            from: from.as_str(),
            text: text.as_str(),
        },
        Ok(ServerFrame::Said {
            room, from, text, ..
        }) => Incoming::Said {
            room: room.as_str(),
            from: from.as_str(),
            text: text.as_str(),
        },
        Ok(ServerFrame::Room { room, .. }) => Incoming::Room(room.as_str()),
        Ok(ServerFrame::Ok(name)) => Incoming::Ok(name.as_str()),
        Ok(ServerFrame::Ping(token)) => Incoming::Ping(token.clone()),
        Ok(ServerFrame::Bye(reason)) => Incoming::Bye(reason.as_str()),
        Ok(ServerFrame::Err { code, text }) => Incoming::Err(code.as_str(), text.as_str()),
        Ok(_) => Incoming::Ignored,
        Err(e) => Incoming::Bad(e),
    };
    f(incoming)
}

/// Writes `pong:TOKEN` for each token, encoded by the core, in one write.
pub async fn write_pongs<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    tokens: &[Token<'_>],
) -> io::Result<()> {
    let mut out = BytesMut::new();
    for token in tokens {
        ClientFrame::Pong(token.clone()).encode(&mut out);
    }
    w.write_all(&out).await
}

/// Logs in as `name`: sends `iam:NAME` and reads until `ok:NAME`,
/// answering pings. Frames after the `ok:` in the same read are handled
/// too (pings answered, presence ignored); `msg:` frames cannot come yet in
/// these scenarios and are dropped. Returns an error on `err:`, `bye:` or a
/// closed connection.
pub async fn login(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buf: &mut [u8],
    name: &str,
) -> Result<(), LoadError> {
    let valid = Name::new(name).map_err(|e| LoadError::Config(format!("name {name:?}: {e}")))?;
    let mut iam = BytesMut::new();
    ClientFrame::Iam(valid).encode(&mut iam);
    exchange(
        stream,
        decoder,
        buf,
        name,
        &iam,
        "ok:",
        |incoming| matches!(incoming, Incoming::Ok(n) if *n == name),
    )
    .await
}

/// Logs in as `name` with the rooms capability (`cap:rooms`, then
/// `iam:NAME` until `ok:NAME`), then joins `room` (`join:ROOM` until
/// `room:ROOM:...`, the frame that says the client now reads it). The
/// client is then in the server's default room and in `room`. Errors as
/// for [`login`]; a refused join (`err:` after the `ok:`) is one too.
pub async fn login_in_room(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buf: &mut [u8],
    name: &str,
    room: &str,
) -> Result<(), LoadError> {
    let valid = Name::new(name).map_err(|e| LoadError::Config(format!("name {name:?}: {e}")))?;
    let room_name =
        Name::new(room).map_err(|e| LoadError::Config(format!("room {room:?}: {e}")))?;
    let caps = CapList::new("rooms").expect("a valid capability list");
    let mut out = BytesMut::new();
    ClientFrame::Cap(caps).encode(&mut out);
    ClientFrame::Iam(valid).encode(&mut out);
    exchange(
        stream,
        decoder,
        buf,
        name,
        &out,
        "ok:",
        |incoming| matches!(incoming, Incoming::Ok(n) if *n == name),
    )
    .await?;
    out.clear();
    ClientFrame::Join(room_name).encode(&mut out);
    exchange(
        stream,
        decoder,
        buf,
        name,
        &out,
        "room:",
        |incoming| matches!(incoming, Incoming::Room(r) if *r == room),
    )
    .await
}

/// Writes `out`, then reads until a frame for which `done` is true,
/// answering pings; `err:` or `bye:` before it, or a closed connection, is
/// an error. `awaited` names the frame for the error message.
async fn exchange(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buf: &mut [u8],
    name: &str,
    out: &[u8],
    awaited: &str,
    mut done: impl FnMut(&Incoming<'_>) -> bool,
) -> Result<(), LoadError> {
    let io_err = |e: io::Error| LoadError::Io(format!("{name}: {e}"));
    stream.write_all(out).await.map_err(io_err)?;
    let mut finished = false;
    while !finished {
        let n = stream.read(buf).await.map_err(io_err)?;
        if n == 0 {
            return Err(LoadError::Io(format!(
                "{name}: the server closed the connection before {awaited}"
            )));
        }
        let mut pongs = Vec::new();
        let mut refused = None;
        decoder.decode(&buf[..n], |frame| {
            classify(frame, |incoming| {
                if !finished && done(&incoming) {
                    finished = true;
                    return;
                }
                match incoming {
                    Incoming::Ping(token) => pongs.push(token.into_owned()),
                    Incoming::Err(code, text) if refused.is_none() && !finished => {
                        refused = Some(format!("err:{code}:{text}"));
                    }
                    Incoming::Bye(reason) if refused.is_none() => {
                        refused = Some(format!("bye:{reason}"));
                    }
                    _ => {}
                }
            })
        });
        write_pongs(stream, &pongs).await.map_err(io_err)?;
        if let Some(why) = refused {
            return Err(LoadError::Io(format!("{name}: login refused: {why}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_127_slash_8_is_accepted() {
        for ok in ["127.0.0.1", "127.255.255.254", "127.0.0.2"] {
            assert!(check_loopback(ok.parse().unwrap(), "x").is_ok(), "{ok}");
        }
        for bad in [
            "128.0.0.1",
            "10.0.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "192.168.1.1",
        ] {
            let e = check_loopback(bad.parse().unwrap(), "target address").unwrap_err();
            assert!(e.to_string().contains("outside 127.0.0.0/8"), "{bad}: {e}");
        }
        assert!(parse_target("127.0.0.1:7878").is_ok());
        assert!(parse_target("10.1.2.3:7878").is_err());
        assert!(parse_target("localhost:7878").is_err());
    }

    #[test]
    fn sources_cycle_through_127_0_0_x() {
        assert_eq!(source_addr(0, 1), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_addr(5, 1), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_addr(5, 4), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_addr(253, 254), Ipv4Addr::new(127, 0, 0, 254));
        assert_eq!(source_addr(254, 254), Ipv4Addr::new(127, 0, 0, 1));
        // Out-of-range counts are clamped, never leaving 127.0.0.0/8.
        assert_eq!(source_addr(3, 0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_addr(254, 255), Ipv4Addr::new(127, 0, 0, 1));
    }

    #[test]
    fn frames_are_classified_without_copies() {
        let mut decoder = Decoder::new(4096);
        let input = b"ok:a\nmsg:a:1 2 3 x:y\nping:7f\nerr:name-taken:a is taken\njoin:b\nbye:x\nmsg:nocolon\n";
        let mut seen = Vec::new();
        decoder.decode(input, |f| classify(f, |i| seen.push(format!("{i:?}"))));
        assert_eq!(
            seen,
            [
                r#"Ok("a")"#,
                r#"Msg { from: "a", text: "1 2 3 x:y" }"#,
                r#"Ping("7f")"#,
                r#"Err("name-taken", "a is taken")"#,
                "Ignored",
                r#"Bye("x")"#,
                seen[6].as_str(),
            ]
        );
        assert!(seen[6].starts_with("Bad("), "{}", seen[6]);
    }

    #[test]
    fn room_frames_are_classified_too() {
        let mut decoder = Decoder::new(4096);
        let input = b"said:bench3:17:a:1 2 3 x:y\nroom:bench3:1f:0\njoined:bench3:a\ncap:rooms\n";
        let mut seen = Vec::new();
        decoder.decode(input, |f| classify(f, |i| seen.push(format!("{i:?}"))));
        assert_eq!(
            seen,
            [
                r#"Said { room: "bench3", from: "a", text: "1 2 3 x:y" }"#,
                r#"Room("bench3")"#,
                "Ignored",
                "Ignored",
            ]
        );
    }
}
