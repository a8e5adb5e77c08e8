//! Raw protocol bytes over a loopback socket, with `std::net` only.
//!
//! The suite never uses our own client to test a server: it writes the bytes
//! PROTOCOL.md describes and reads what comes back, line by line, with a
//! timeout on every read so that a broken server fails a test instead of
//! hanging it.
//!
//! Against a TLS server ([`Target::tls`]) the same bytes go through a TLS
//! session (rustls's own stream type), trusting the suite's test CA
//! ([`test_ca`](crate::tls::test_ca)); the handshake is done in
//! [`RawConn::connect`], so every case reads the same over both.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_proto::{MAX_DURATION, after};
use rustls::pki_types::ServerName;

/// How long any single expectation may wait.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Where a server under test listens, and whether it speaks TLS there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The address.
    pub addr: SocketAddr,
    /// TLS with the test CA's certificate.
    pub tls: bool,
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Self {
        Target { addr, tls: false }
    }
}

/// The bytes of a raw connection: as they are, or through TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.write_all(bytes),
            Stream::Tls(tls) => tls.write_all(bytes).and_then(|()| tls.flush()),
        }
    }
}

/// One raw connection to a server.
#[derive(Debug)]
pub struct RawConn {
    stream: Stream,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts (lines before it were taken).
    start: usize,
    eof: bool,
}

impl RawConn {
    /// Connects to `target` (a `SocketAddr` is a plain one), with the TLS
    /// handshake done if it speaks TLS.
    pub fn connect(target: impl Into<Target>) -> RawConn {
        let target = target.into();
        let tcp =
            TcpStream::connect_timeout(&target.addr, PATIENCE).expect("connect to the server");
        tcp.set_nodelay(true).expect("set TCP_NODELAY");
        let stream = match target.tls {
            false => Stream::Plain(tcp),
            true => Stream::Tls(Box::new(
                tls_handshake(tcp, PATIENCE).expect("the TLS handshake"),
            )),
        };
        RawConn::from_stream(stream)
    }

    /// Connects to `addr` (plain text) with a receive buffer of about
    /// `bytes` (the kernel may round it), set before connecting so that the
    /// window the server sees is small from the start: a reader that stops
    /// reading holds little in its own buffers.
    pub fn connect_with_recv_buffer(addr: SocketAddr, bytes: usize) -> RawConn {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("create a socket");
        socket
            .set_recv_buffer_size(bytes)
            .expect("set the receive buffer");
        socket
            .connect_timeout(&addr.into(), PATIENCE)
            .expect("connect to the server");
        RawConn::from_stream(Stream::Plain(socket.into()))
    }

    fn from_stream(stream: Stream) -> RawConn {
        stream.tcp().set_nodelay(true).expect("set TCP_NODELAY");
        RawConn {
            stream,
            buf: Vec::new(),
            start: 0,
            eof: false,
        }
    }

    /// Connects to `addr` from the source address `source` (a socket bound
    /// to it, port chosen by the kernel, before it connects), so that a
    /// server can tell clients apart by address: any of 127.0.0.0/8 works
    /// on loopback.
    pub fn connect_from(addr: SocketAddr, source: IpAddr) -> RawConn {
        use socket2::{Domain, Socket, Type};
        let socket =
            Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("create a socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .unwrap_or_else(|e| panic!("bind {source}: {e}"));
        socket
            .connect_timeout(&addr.into(), PATIENCE)
            .expect("connect to the server");
        RawConn::from_stream(Stream::Plain(socket.into()))
    }

    /// Logs in as `name` on a connection made already, expecting `ok:NAME`.
    pub fn log_in(&mut self, name: &str) {
        self.send(format!("iam:{name}\n").as_bytes());
        self.expect(&format!("ok:{name}"));
    }

    /// A second handle on the socket, for a thread that writes while
    /// another reads. Plain text only: a TLS session cannot be shared.
    pub fn writer(&self) -> TcpStream {
        match &self.stream {
            Stream::Plain(tcp) => tcp.try_clone().expect("clone the socket"),
            Stream::Tls(_) => panic!("RawConn::writer needs a plain connection"),
        }
    }

    /// Connects and logs in as `name`, expecting `ok:NAME`.
    pub fn login(target: impl Into<Target>, name: &str) -> RawConn {
        let mut conn = RawConn::connect(target);
        conn.log_in(name);
        conn
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// Writes `bytes` one byte per write, pausing briefly between writes so
    /// the server sees them in separate reads.
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send(std::slice::from_ref(b));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The next line, without its LF, waiting up to `patience`; `None` at
    /// EOF or timeout.
    pub fn try_line(&mut self, patience: Duration) -> Option<String> {
        let deadline = after(Instant::now(), patience.min(MAX_DURATION));
        loop {
            if let Some(line) = self.take_line() {
                return Some(line);
            }
            if self.eof {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_some(64 << 10, left) {
                return self.take_line();
            }
        }
    }

    /// A whole line already read from the socket, if there is one.
    pub fn take_line(&mut self) -> Option<String> {
        let Some(lf) = self.buf[self.start..].iter().position(|&b| b == b'\n') else {
            // Only a partial line is left: keep it at the front.
            self.buf.drain(..self.start);
            self.start = 0;
            return None;
        };
        let line = &self.buf[self.start..self.start + lf];
        let text = String::from_utf8(line.to_vec()).expect("server sent UTF-8");
        self.start += lf + 1;
        Some(text)
    }

    /// One read of at most `max` bytes, waiting up to `patience`; false if
    /// nothing came in time or the stream ended (see
    /// [`is_eof`](Self::is_eof)). A slow reader reads this way, a sip at a
    /// time.
    pub fn read_some(&mut self, max: usize, patience: Duration) -> bool {
        if self.eof {
            return false;
        }
        self.stream
            .tcp()
            .set_read_timeout(Some(patience.clamp(Duration::from_millis(1), MAX_DURATION)))
            .expect("set timeout");
        let mut chunk = vec![0u8; max.clamp(1, 64 << 10)];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A reset after the server closed counts as the end.
                Err(_) => self.eof = true,
            }
            return false;
        }
    }

    /// Whether the server ended the stream (or reset it).
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Whether a whole line is already read from the socket, so the next
    /// [`try_line`](Self::try_line) returns it without reading.
    pub fn has_line(&self) -> bool {
        self.buf[self.start..].contains(&b'\n')
    }

    /// The next line; panics if none comes in time.
    pub fn line(&mut self) -> String {
        match self.try_line(PATIENCE) {
            Some(line) => line,
            None => panic!("expected a line from the server, got EOF or nothing in {PATIENCE:?}"),
        }
    }

    /// Asserts the next line is `expected`.
    pub fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// Asserts the next line starts with `prefix`, and returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(
            line.starts_with(prefix),
            "expected a line starting with {prefix:?}, got {line:?}"
        );
        line
    }

    /// Skips lines until one equals `expected`; returns those skipped.
    pub fn skip_to(&mut self, expected: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let line = self.line();
            if line == expected {
                return skipped;
            }
            skipped.push(line);
        }
    }

    /// A barrier: sends `ping:TOKEN` and returns every line before its
    /// `pong:TOKEN`. What the server queued for this connection before it
    /// read the ping comes before the pong.
    pub fn sync(&mut self, token: &str) -> Vec<String> {
        self.send(format!("ping:{token}\n").as_bytes());
        self.skip_to(&format!("pong:{token}"))
    }

    /// Reads a listing (`users:`, `members:ROOM:`, `rooms:`): frames that
    /// start with `head` up to the empty one, each within `max_frame_len`
    /// bytes with its LF; returns the comma-separated items in order.
    pub fn listing(&mut self, head: &str, max_frame_len: usize) -> Vec<String> {
        let mut items = Vec::new();
        loop {
            let line = self.expect_prefix(head);
            assert!(
                line.len() < max_frame_len,
                "{} bytes with LF, more than {max_frame_len}: {line:?}",
                line.len() + 1
            );
            let rest = &line[head.len()..];
            if rest.is_empty() {
                return items;
            }
            items.extend(rest.split(',').map(String::from));
        }
    }

    /// Asserts nothing arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Some(line) = self.try_line(quiet) {
            panic!("expected silence, got {line:?}");
        }
        assert!(!self.eof, "expected silence, got EOF");
    }

    /// Reads until EOF, which must come within `patience`; returns the lines
    /// read on the way.
    pub fn expect_eof_within(&mut self, patience: Duration) -> Vec<String> {
        match self.read_to_eof(patience) {
            (lines, true) => lines,
            (lines, false) => panic!(
                "expected EOF within {patience:?}; read {} lines",
                lines.len()
            ),
        }
    }

    /// Asserts the server closes the connection soon.
    pub fn expect_eof(&mut self) -> Vec<String> {
        self.expect_eof_within(PATIENCE)
    }

    /// Ends our side of the stream (a TCP half-close, as `nc -N` does at
    /// the end of its input): the server sees EOF and we can still read.
    /// Over TLS, `close_notify` goes first, as a TLS half-close.
    pub fn shutdown_write(&mut self) {
        if let Stream::Tls(tls) = &mut self.stream {
            tls.conn.send_close_notify();
            tls.flush().expect("send close_notify");
        }
        self.stream
            .tcp()
            .shutdown(Shutdown::Write)
            .expect("shut down the write side");
    }

    /// Reads until EOF or until `patience` has passed, whichever comes
    /// first; returns the lines read and whether EOF came.
    pub fn read_to_eof(&mut self, patience: Duration) -> (Vec<String>, bool) {
        let deadline = after(Instant::now(), patience.min(MAX_DURATION));
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_line(left) {
                Some(line) => lines.push(line),
                None => return (lines, self.eof),
            }
        }
    }

    /// Closes our side completely.
    pub fn close(self) {
        let _ = self.stream.tcp().shutdown(Shutdown::Both);
    }
}

/// A TLS session over `tcp` trusting the test CA, its handshake done
/// within `patience`.
fn tls_handshake(
    mut tcp: TcpStream,
    patience: Duration,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let config = crate::tls::test_ca().client_config();
    let name = ServerName::try_from("localhost").expect("a server name");
    let mut conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let deadline = after(Instant::now(), patience.min(MAX_DURATION));
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        tcp.set_read_timeout(Some(left))?;
        conn.complete_io(&mut tcp)?;
    }
    tcp.set_read_timeout(None)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// Connects to `addr` and tries a TLS handshake trusting the test CA,
/// giving up after `patience`; says whether it was done.
pub fn try_tls_handshake(addr: SocketAddr, patience: Duration) -> std::io::Result<()> {
    let tcp = TcpStream::connect_timeout(&addr, patience)?;
    tls_handshake(tcp, patience).map(drop)
}
