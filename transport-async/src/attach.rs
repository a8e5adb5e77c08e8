//! Streams that reach a server some other way than its listener.
//!
//! A server's connections usually come from its TCP listener. An
//! application may have others: a WebSocket bridged to a byte stream, a
//! TLS stream it terminated itself, a Unix socket, a pipe in memory for a
//! test. An [`Attacher`], taken from the server before it serves, hands
//! any such stream (anything [`Stream`]: `futures-io` `AsyncRead` +
//! `AsyncWrite`) to the running server with what is known of its other
//! end (a [`Peer`]). The server's loop accepts it exactly as it accepts a
//! socket from its listener: the hub decides (the connection limit and the
//! per-address limits apply, a late arrival during shutdown is answered
//! `bye:`), and the stream gets a connection task of its own, on the
//! server's runtime, that reads and writes it like any socket. Nothing
//! about the stream's origin reaches the hub but the [`Peer`].
//!
//! Only the byte stream is the caller's: the protocol is spoken on it
//! unchanged (frames ended by LF), and the stream ends as a socket would
//! (`poll_close` when the hub closes the connection, a read of 0 bytes
//! when the peer is done).

use std::fmt;
use std::future::poll_fn;
use std::task::Poll;

use chat_proto::Peer;
use futures_channel::mpsc;

use crate::runtime::Stream;

/// How many streams may wait for the server's loop before
/// [`Attacher::attach`] waits too.
pub(crate) const ATTACH_QUEUE: usize = 64;

/// A stream on its way to the server's loop.
pub(crate) struct Attach {
    pub(crate) stream: Box<dyn Stream>,
    pub(crate) peer: Peer,
    pub(crate) via: &'static str,
}

impl fmt::Debug for Attach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attach")
            .field("peer", &self.peer)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// Hands streams that did not come from the listener to a server, from
/// any task or thread; from `Server::attacher`, cheap to clone.
///
/// ```no_run
/// use transport_async::proto::Peer;
/// use transport_async::{Server, ServerGone, Stream};
///
/// // `stream`: any futures-io AsyncRead + AsyncWrite, such as one end of
/// // a pipe in memory.
/// async fn attach_one(server: &Server, stream: impl Stream) -> Result<(), ServerGone> {
///     let attacher = server.attacher("pipe");
///     attacher.attach(stream, Peer::plain(None)).await
/// }
/// ```
#[derive(Clone)]
pub struct Attacher {
    tx: mpsc::Sender<Attach>,
    via: &'static str,
}

impl fmt::Debug for Attacher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attacher")
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// The server has stopped: the stream was not attached (and is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerGone;

impl fmt::Display for ServerGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server has stopped")
    }
}

impl std::error::Error for ServerGone {}

impl Attacher {
    pub(crate) fn new(tx: mpsc::Sender<Attach>, via: &'static str) -> Self {
        Attacher { tx, via }
    }

    /// Hands `stream` to the server as a new connection from `peer`
    /// (`Peer::secure` only if the stream is encrypted end to end). Waits
    /// while the server's loop has many streams still to take; returns
    /// once the stream is queued for it. The server accepts it at its next
    /// batch, as it accepts a socket: it may still refuse it then, with an
    /// `err:` frame written to the stream, as it would to a socket.
    pub async fn attach(&self, stream: impl Stream, peer: Peer) -> Result<(), ServerGone> {
        let mut tx = self.tx.clone();
        poll_fn(|cx| match tx.poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(_)) => Poll::Ready(Err(ServerGone)),
            Poll::Pending => Poll::Pending,
        })
        .await?;
        let attach = Attach {
            stream: Box::new(stream),
            peer,
            via: self.via,
        };
        // poll_ready reserved a slot: this fails only if the loop is gone.
        tx.start_send(attach).map_err(|_| ServerGone)
    }

    /// Whether the server has stopped (a stream attached now would be
    /// refused with [`ServerGone`]).
    pub fn is_server_gone(&self) -> bool {
        self.tx.is_closed()
    }
}
