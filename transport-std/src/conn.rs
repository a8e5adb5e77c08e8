//! One server connection on two threads: a reader and a writer.
//!
//! The reader blocks in `read` and hands each chunk to the hub thread; the
//! writer blocks on the connection's [`Outbox`] and writes what the hub
//! queued with vectored writes, reporting what it wrote (on a channel of its
//! own, so that reports are never stuck behind input). Neither ever waits
//! for another connection, so a client that stops reading only stalls its
//! own writer (and the hub's outbound bound drops it).
//!
//! The reader waits while the hub takes no input from the connection (see
//! [`Outbox::wait_for_input`]). On EOF it tells the hub the peer is done
//! sending and stops; the writer goes on with what the hub still owes the
//! peer. On a read error the connection is broken: the reader stops the
//! writer through the outbox. Whichever thread finishes second tells the
//! hub the socket is gone: the writer finishes once the hub asked for the
//! close and the last bytes are flushed (shutting the socket down, which
//! ends the reader's `read`), or when the hub aborts it.
//!
//! The socket is plain TCP or TLS ([`Socket`]); for TLS the reader's first
//! reads do the handshake and the writer waits for it (see
//! the `tls` module, feature `tls`), so the threads below are the same for both.

use std::io::{ErrorKind, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use bytes::Bytes;
use chat_proto::ConnId;
use transport_common::{HubMsg, Outbox, TryWrite, WriteQueue};

use crate::reports::ReportSender;
use crate::server::Event;
use crate::socket::{Socket, timed_out};

/// Stack size of connection threads: enough for a 16 KiB read buffer and
/// the calls below, far less than the default 2 MiB.
const STACK_SIZE: usize = 64 * 1024;
/// Stack size of a TLS connection's threads, which also run rustls and its
/// cryptography (only the pages touched take memory).
const TLS_STACK_SIZE: usize = 256 * 1024;
const READ_SIZE: usize = 16 * 1024;
/// How long a blocked write waits before checking for an abort.
const ABORT_CHECK: Duration = Duration::from_millis(200);

/// What both threads of a connection share.
#[derive(Debug)]
pub(crate) struct Conn {
    id: ConnId,
    socket: Socket,
    outbox: Arc<Outbox>,
    to_hub: SyncSender<Event>,
    /// Write reports take their own channel (see
    /// [`reports`](crate::reports)): behind queued input they would reach
    /// the hub late, and it would see writes as still pending that long
    /// succeeded.
    written: ReportSender,
    /// Threads still running; the last one out reports `Closed`.
    running: AtomicU8,
}

impl Conn {
    /// Starts the reader and writer of a connection the hub accepted.
    pub(crate) fn spawn(
        id: ConnId,
        peer: SocketAddr,
        socket: Socket,
        outbox: Arc<Outbox>,
        to_hub: SyncSender<Event>,
        written: ReportSender,
    ) -> std::io::Result<Arc<Conn>> {
        // A blocked write returns now and then to see whether the hub
        // aborted the connection.
        socket.tcp().set_write_timeout(Some(ABORT_CHECK))?;
        let stack_size = match socket {
            Socket::Plain(_) => STACK_SIZE,
            #[allow(unreachable_patterns)]
            _ => TLS_STACK_SIZE,
        };
        let conn = Arc::new(Conn {
            id,
            socket,
            outbox,
            to_hub,
            written,
            running: AtomicU8::new(2),
        });
        // Debug level: at the default `info` no span exists, so an idle
        // connection pays nothing for it.
        let span = tracing::debug_span!("conn", %id, %peer);
        let reader = conn.clone();
        let reader_span = span.clone();
        std::thread::Builder::new()
            .name(format!("chat-read-{}", id.index()))
            .stack_size(stack_size)
            .spawn(move || reader_span.in_scope(|| reader.read_loop()))?;
        let writer = conn.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("chat-write-{}", id.index()))
            .stack_size(stack_size)
            .spawn(move || span.in_scope(|| writer.write_loop()));
        if let Err(e) = spawned {
            // The reader is running: stop it, and let it report the close.
            conn.finish();
            conn.socket.close();
            return Err(e);
        }
        Ok(conn)
    }

    /// Whether the connection is plain TCP (not TLS): only then may the
    /// hub thread write to its socket directly.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.socket, Socket::Plain(_))
    }

    fn send(&self, msg: HubMsg) -> bool {
        self.to_hub.send(Event::Hub(msg)).is_ok()
    }

    fn finish(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.send(HubMsg::Closed(self.id));
        }
    }

    fn read_loop(&self) {
        let mut buf = [0u8; READ_SIZE];
        loop {
            if !self.outbox.wait_for_input() {
                break;
            }
            match self.socket.read(&mut buf) {
                Ok(0) => {
                    // Half-closed: the writer still owes the peer its
                    // answers; the hub closes the connection after them.
                    self.send(HubMsg::Eof(self.id));
                    break;
                }
                Ok(n) => {
                    if !self.send(HubMsg::Input(self.id, Bytes::copy_from_slice(&buf[..n]))) {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(conn = %self.id, error = %e, "read failed");
                    // Broken: the writer has nothing left to do.
                    self.outbox.abort();
                    break;
                }
            }
        }
        self.finish();
    }

    fn write_loop(&self) {
        let mut queue = WriteQueue::new();
        loop {
            let Some(taken) = self.outbox.take_blocking(None) else {
                continue;
            };
            if taken.abort {
                break;
            }
            queue.extend(taken.data);
            if !self.write_all(&mut queue) || taken.close {
                break;
            }
            // The hub thread may write through again.
            self.outbox.writer_drained();
        }
        self.socket.close();
        self.finish();
    }

    /// Writes the whole queue, and what TLS still holds of it; false if
    /// the socket failed or the hub aborted the connection meanwhile (a
    /// peer that stops reading blocks a write, so writes time out now and
    /// then to look).
    fn write_all(&self, queue: &mut WriteQueue) -> bool {
        loop {
            let result = match queue.is_empty() {
                true => match self.socket.flush() {
                    Ok(()) => return true,
                    Err(e) => Err(e),
                },
                false => self.socket.write_vectored(&queue.io_slices()),
            };
            match result {
                Err(e) if timed_out(&e) => {
                    if self.outbox.is_aborted() {
                        return false;
                    }
                }
                Ok(0) => return false,
                Ok(n) => {
                    queue.advance(n);
                    if !self.written.send(self.id, n) {
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(conn = %self.id, error = %e, "write failed");
                    return false;
                }
            }
        }
    }
}

/// The hub thread writes small output straight to a plain socket, without
/// waking the writer thread, when the socket takes it at once: one
/// `sendmsg` with `MSG_DONTWAIT` on the blocking socket (and
/// `MSG_NOSIGNAL`, so a peer gone does not raise `SIGPIPE`). Never for a
/// TLS socket, whose bytes go through its session: the server gives the
/// hub this writer only for plain connections ([`Conn::is_plain`]).
#[cfg(unix)]
impl TryWrite for Conn {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let flags = libc::MSG_DONTWAIT;
        socket2::SockRef::from(self.socket.tcp()).send_vectored_with_flags(bufs, flags)
    }
}
