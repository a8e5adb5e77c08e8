//! The socket a blocking connection reads and writes: plain TCP, or (feature
//! `tls`) TLS over TCP.
//!
//! The blocking server and client read on one thread and write on another
//! (or on the caller's), both through a shared `&Socket`, as they did with a
//! `&TcpStream`. For plain TCP these calls are the socket's own; for TLS
//! they go through one rustls session shared by both threads (see
//! the `tls` module, feature `tls`).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A connected socket, plain or TLS.
#[derive(Debug)]
pub(crate) enum Socket {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsSocket>),
}

impl Socket {
    /// The TCP socket underneath, for timeouts and shutdown.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Socket::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.tcp(),
        }
    }

    /// Reads what arrived (plaintext, for TLS; its handshake runs in the
    /// first reads); `Ok(0)` at the end. A timeout of the TCP socket comes
    /// back as `WouldBlock` or `TimedOut`, with nothing lost.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => (&*tcp).read(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.read(buf),
        }
    }

    /// Writes some of `bufs`; returns how much was taken. A write timeout
    /// comes back as `WouldBlock` or `TimedOut` with nothing taken.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => (&*tcp).write_vectored(bufs),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    /// Puts on the wire what was taken and is still held (TLS records a
    /// timed-out write left behind); nothing to do for plain TCP.
    pub(crate) fn flush(&self) -> io::Result<()> {
        match self {
            Socket::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.flush(),
        }
    }

    /// Ends the connection: for TLS, says `close_notify` if that can be
    /// done without waiting; then shuts the TCP socket down both ways.
    pub(crate) fn close(&self) {
        #[cfg(feature = "tls")]
        if let Socket::Tls(tls) = self {
            tls.close_notify();
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

/// Whether `e` only says that a socket timeout passed.
pub(crate) fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
