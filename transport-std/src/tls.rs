//! TLS on blocking sockets (feature `tls`), with rustls's own connection
//! types, for a reader thread and a writer thread at once.
//!
//! rustls's `StreamOwned` wants one owner doing both reads and writes; the
//! blocking transport reads on one thread and writes on another. So a
//! [`TlsSocket`] keeps the rustls session behind a lock that is held only
//! to hand it bytes or take bytes from it, never during a blocking system
//! call: the reader reads from the TCP socket with no lock, then feeds what
//! it read to the session and takes the plaintext out; a writer hands the
//! session plaintext, takes the records out, and writes them to the socket
//! under a second lock, which keeps records in order on the wire. Records
//! a timed-out write left behind are written first by the next write or
//! [`flush`](TlsSocket::flush).
//!
//! A server connection's handshake runs in its reader's first reads (the
//! reader writes the handshake's answers); its writer waits for the
//! handshake to end before it writes, looking now and then whether the hub
//! gave up on the connection, so the hub's login timeout covers the
//! handshake. After the handshake the reader never waits to write: a
//! reader blocked on a peer that does not read would stop reading what
//! that peer sends, and the two would wait for each other. The rare
//! records that reading produces then (an answer to the peer's key
//! update) go out with the writer's next write. The [`HandshakeSlot`] it holds goes back when the handshake
//! ends. A client completes its handshake before `connect` returns, within
//! the connect timeout.
//!
//! The settings (certificates, roots) come from `transport-common`'s `tls`
//! module, shared with the async transports.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use transport_common::HandshakeSlot;

use crate::socket::timed_out;

/// Most bytes read from the socket at once: what rustls holds in decrypted
/// form at most (its received-plaintext limit).
const RAW_READ: usize = 16 * 1024;
/// Records taken out of the session and waiting for the socket beyond
/// which their buffer is not kept once empty.
const KEEP_PENDING: usize = 16 * 1024;

/// A TCP socket spoken to over TLS by a reader and a writer thread.
pub(crate) struct TlsSocket {
    tcp: TcpStream,
    session: Mutex<Session>,
    /// Notified when the handshake ends.
    handshake: Condvar,
    /// Records taken out of the session, not yet written; the lock orders
    /// writes to the socket.
    pending: Mutex<Vec<u8>>,
}

struct Session {
    conn: rustls::Connection,
    /// Held while the handshake runs.
    slot: Option<HandshakeSlot>,
    /// The handshake failed.
    failed: bool,
}

impl fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsSocket {
    /// A server connection on `tcp`, whose handshake runs in its first
    /// reads, holding `slot` until it ends.
    pub(crate) fn accept(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
        slot: HandshakeSlot,
    ) -> io::Result<TlsSocket> {
        let conn = rustls::ServerConnection::new(config).map_err(tls_error)?;
        Ok(Self::new(tcp, conn.into(), Some(slot)))
    }

    /// A client connection on `tcp`, with its handshake done within
    /// `timeout` (the socket's read and write timeouts are changed on the
    /// way).
    pub(crate) fn connect(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        timeout: Duration,
    ) -> io::Result<TlsSocket> {
        let mut conn = rustls::ClientConnection::new(config, name).map_err(tls_error)?;
        let deadline = chat_proto::after(Instant::now(), timeout.min(chat_proto::MAX_DURATION));
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TLS handshake not done within {timeout:?}"),
                ));
            }
            tcp.set_read_timeout(Some(left))?;
            tcp.set_write_timeout(Some(left))?;
            match conn.complete_io(&mut &tcp) {
                Ok(_) => {}
                Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("TLS handshake failed: {e}"),
                    ));
                }
            }
        }
        Ok(Self::new(tcp, conn.into(), None))
    }

    fn new(tcp: TcpStream, conn: rustls::Connection, slot: Option<HandshakeSlot>) -> TlsSocket {
        TlsSocket {
            tcp,
            session: Mutex::new(Session {
                conn,
                slot,
                failed: false,
            }),
            handshake: Condvar::new(),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The TCP socket.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plaintext into `buf`; `Ok(0)` at the end (`close_notify`, or the
    /// socket closed after the handshake).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session().conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            // Nothing decrypted is waiting: read records, with no lock held.
            let size = buf.len().min(RAW_READ);
            let n = (&self.tcp).read(&mut buf[..size])?;
            let (fed, handshaking) = self.feed(&buf[..n]);
            if handshaking {
                // The handshake's answers (and an alert if it failed): the
                // writer is not writing yet, and waits for them.
                let flushed = self.flush_blocking();
                fed?;
                flushed?;
            } else if let Err(e) = fed {
                // An alert saying why, if the socket takes it now.
                if let Ok(mut pending) = self.pending.try_lock() {
                    let _ = self.flush_locked(&mut pending);
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(0);
            }
        }
    }

    /// Hands `raw` (empty at the end of the stream) to the session; says
    /// too whether the handshake was still running.
    fn feed(&self, raw: &[u8]) -> (io::Result<()>, bool) {
        let mut session = self.session();
        let handshaking = session.conn.is_handshaking();
        (self.feed_locked(&mut session, raw), handshaking)
    }

    fn feed_locked(&self, session: &mut Session, mut raw: &[u8]) -> io::Result<()> {
        let result = if raw.is_empty() {
            match session.conn.is_handshaking() {
                true => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )),
                false => Ok(()),
            }
        } else {
            let mut result = Ok(());
            while !raw.is_empty() && result.is_ok() {
                result = session.conn.read_tls(&mut raw).and_then(|_| {
                    session
                        .conn
                        .process_new_packets()
                        .map(drop)
                        .map_err(tls_error)
                });
            }
            result
        };
        if session.slot.is_some() && (result.is_err() || !session.conn.is_handshaking()) {
            match &result {
                Ok(()) => tracing::debug!("TLS handshake done"),
                Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
            }
            session.failed = result.is_err();
            session.slot = None;
            self.handshake.notify_all();
        }
        result
    }

    /// Waits up to `patience` for the handshake to end; `TimedOut` if it
    /// has not, an error if it failed.
    fn wait_handshake(&self, patience: Duration) -> io::Result<()> {
        let session = self.session();
        let (session, _) = self
            .handshake
            .wait_timeout_while(session, patience, |s| s.conn.is_handshaking() && !s.failed)
            .unwrap_or_else(PoisonError::into_inner);
        if session.failed {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS handshake failed",
            ))
        } else if session.conn.is_handshaking() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS handshake is not done yet",
            ))
        } else {
            Ok(())
        }
    }

    /// Encrypts some of `bufs` and writes the records; returns how much
    /// plaintext was taken. Before the handshake ends, and while the
    /// socket takes nothing within its write timeout, nothing is taken
    /// and the error is `TimedOut`.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.wait_handshake(
            self.tcp
                .write_timeout()?
                .unwrap_or(Duration::from_millis(200)),
        )?;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        self.flush_locked(&mut pending)?;
        let taken = self.session().conn.writer().write_vectored(bufs)?;
        // What the socket does not take now goes out with the next write
        // or flush.
        match self.flush_locked(&mut pending) {
            Err(e) if !timed_out(&e) => Err(e),
            _ => Ok(taken),
        }
    }

    /// Writes every record held; `TimedOut` if the socket took nothing
    /// within its write timeout.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        self.flush_locked(&mut pending)
    }

    /// [`flush`](Self::flush), going on through write timeouts until done
    /// or failed (a peer that never reads makes the writer give up and
    /// shut the socket down, which fails it).
    fn flush_blocking(&self) -> io::Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match self.flush_locked(&mut pending) {
                Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn flush_locked(&self, pending: &mut Vec<u8>) -> io::Result<()> {
        loop {
            if pending.is_empty() {
                if pending.capacity() > KEEP_PENDING {
                    *pending = Vec::new();
                }
                let mut session = self.session();
                if !session.conn.wants_write() {
                    return Ok(());
                }
                session.conn.write_tls(pending)?;
            }
            while !pending.is_empty() {
                match (&self.tcp).write(pending) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Queues `close_notify` and writes it if the socket is free to take
    /// it now; never waits for a writer that is stuck.
    pub(crate) fn close_notify(&self) {
        self.session().conn.send_close_notify();
        if let Ok(mut pending) = self.pending.try_lock() {
            let _ = self.flush_locked(&mut pending);
        }
    }
}
