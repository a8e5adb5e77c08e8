//! One server connection's I/O, as a single future over a `futures-io`
//! stream.
//!
//! The future reads and writes at the same time without blocking either:
//! every poll it offers the hub what was read, takes what the hub queued in
//! the connection's [`Outbox`] and writes it with vectored writes, and reports
//! written bytes back so the hub's outbound bound works. It holds no buffer
//! while idle (see [`read`](crate::read)) and sends at most one message to
//! the hub at a time, so a fast sender cannot outrun the hub: backpressure
//! reaches it through TCP.
//!
//! When the peer ends its side of the stream it stops reading, tells the
//! hub ([`HubMsg::Eof`]), and goes on writing what the hub still owes the
//! peer. It ends when the connection fails, when the hub closes the
//! connection (after flushing), or when the hub or the server aborts it;
//! its last word to the hub is always [`HubMsg::Closed`]. It reads only
//! while the hub takes input (see [`Outbox::input_paused`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chat_proto::ConnId;
use futures_channel::mpsc;

use crate::read::poll_read_bytes;
use crate::runtime::Stream;
use transport_common::{HubMsg, Outbox, WriteQueue};

/// How many steps one poll may take before yielding to other tasks.
const POLL_BUDGET: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// The hub asked to close: flush, then shut the socket down. (The hub
    /// bounds how long that may take: past `close_linger` it aborts.)
    Flushing,
    /// Done with the socket; `Closed` still has to reach the hub.
    Exiting,
}

/// The I/O of one server connection.
pub(crate) struct ConnIo<S> {
    id: ConnId,
    stream: S,
    outbox: Arc<Outbox>,
    to_hub: mpsc::Sender<HubMsg>,
    phase: Phase,
    /// The peer ended its side: nothing more to read.
    eof: bool,
    queue: WriteQueue,
    /// A message waiting for room in the hub's channel.
    outgoing: Option<HubMsg>,
    /// Bytes written and not yet reported.
    unreported: usize,
    /// Bytes were written since the stream was last flushed: a stream that
    /// buffers (TLS, whose session holds records the socket did not take)
    /// must be flushed once the queue is empty, or they wait for the next
    /// write.
    unflushed: bool,
}

impl<S: Stream> ConnIo<S> {
    pub(crate) fn new(
        id: ConnId,
        stream: S,
        outbox: Arc<Outbox>,
        to_hub: mpsc::Sender<HubMsg>,
    ) -> Self {
        ConnIo {
            id,
            stream,
            outbox,
            to_hub,
            phase: Phase::Open,
            eof: false,
            queue: WriteQueue::new(),
            outgoing: None,
            unreported: 0,
            unflushed: false,
        }
    }

    fn exit(&mut self, why: &str) {
        if self.phase != Phase::Exiting {
            tracing::debug!(conn = %self.id, why, "connection I/O ends");
            self.phase = Phase::Exiting;
            self.queue.clear();
            // Whatever was waiting is moot; the hub must hear `Closed`.
            self.outgoing = Some(HubMsg::Closed(self.id));
        }
    }

    /// Whether the future is finished: `Closed` delivered, or the hub gone.
    fn finished(&self) -> bool {
        self.phase == Phase::Exiting && self.outgoing.is_none()
    }

    /// One round of work. `Ready(true)`: something happened, go again;
    /// `Ready(false)`: nothing to do, every source has our waker.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut progress = false;

        // Hand the pending message to the hub if there is room.
        if self.outgoing.is_some() {
            match self.to_hub.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let msg = self.outgoing.take().expect("checked above");
                    // poll_ready reserved a slot, so this cannot fail unless
                    // the hub went away, which the next poll_ready reports.
                    let _ = self.to_hub.start_send(msg);
                    progress = true;
                }
                Poll::Ready(Err(_)) => {
                    // The server stopped: nobody is left to talk to.
                    self.phase = Phase::Exiting;
                    self.outgoing = None;
                    return Poll::Ready(true);
                }
                Poll::Pending => {}
            }
        }
        if self.phase == Phase::Exiting {
            return Poll::Ready(progress);
        }

        // Take what the hub queued.
        if let Poll::Ready(taken) = self.outbox.poll_take(cx) {
            progress = true;
            if taken.abort {
                self.exit("server aborted");
                return Poll::Ready(true);
            }
            self.queue.extend(taken.data);
            if taken.close && self.phase == Phase::Open {
                self.phase = Phase::Flushing;
            }
        }

        // Write.
        if !self.queue.is_empty() {
            let written = {
                let slices = self.queue.io_slices();
                Pin::new(&mut self.stream).poll_write_vectored(cx, &slices)
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    self.exit("socket accepts no more bytes");
                    return Poll::Ready(true);
                }
                Poll::Ready(Ok(n)) => {
                    self.queue.advance(n);
                    self.unreported += n;
                    self.unflushed = true;
                    progress = true;
                    if self.queue.is_empty() {
                        // The server loop may write through again.
                        self.outbox.writer_drained();
                    }
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = %self.id, error = %e, "write failed");
                    self.exit("write failed");
                    return Poll::Ready(true);
                }
                Poll::Pending => {}
            }
        }
        // Everything written: what a buffering stream still holds goes out
        // now (for plain TCP a flush does nothing). Pending registers the
        // task for the socket's writability.
        if self.queue.is_empty() && self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = %self.id, error = %e, "flush failed");
                    self.exit("write failed");
                    return Poll::Ready(true);
                }
                Poll::Pending => {}
            }
        }
        if self.outgoing.is_none() && self.unreported > 0 {
            self.outgoing = Some(HubMsg::Written(self.id, self.unreported));
            self.unreported = 0;
            progress = true;
        }

        if self.phase == Phase::Flushing {
            if self.queue.is_empty() && Pin::new(&mut self.stream).poll_close(cx).is_ready() {
                self.exit("closed by the hub");
                return Poll::Ready(true);
            }
            // Nothing more is read from a connection being closed.
            return Poll::Ready(progress);
        }

        // Read, unless the peer is done, the hub takes no input for now (it
        // wakes this task when it does again), or the hub has not taken the
        // last message yet.
        if self.outgoing.is_none() && !self.eof && !self.outbox.input_paused() {
            match poll_read_bytes(&mut self.stream, cx) {
                Poll::Ready(Ok(bytes)) if bytes.is_empty() => {
                    // Half-closed: the peer may still read what it is owed.
                    self.eof = true;
                    self.outgoing = Some(HubMsg::Eof(self.id));
                }
                Poll::Ready(Ok(bytes)) => self.outgoing = Some(HubMsg::Input(self.id, bytes)),
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = %self.id, error = %e, "read failed");
                    self.exit("read failed");
                }
                Poll::Pending => return Poll::Ready(progress),
            }
            progress = true;
        }
        Poll::Ready(progress)
    }
}

impl<S: Stream> Future for ConnIo<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..POLL_BUDGET {
            match this.step(cx) {
                _ if this.finished() => return Poll::Ready(()),
                Poll::Ready(true) => continue,
                Poll::Ready(false) | Poll::Pending => return Poll::Pending,
            }
        }
        // A busy connection: let other tasks run, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S> Unpin for ConnIo<S> {}

#[cfg(test)]
mod tests {
    use std::io;
    use std::task::Waker;
    use std::time::Instant;

    use bytes::Bytes;
    use chat_proto::{Hub, ServerConfig};

    use super::*;

    /// A stream that buffers what is written (as a TLS session holds the
    /// records the socket did not take) until it is flushed; nothing is
    /// ever read.
    #[derive(Default)]
    struct Buffering {
        held: Vec<u8>,
        sent: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl futures_io::AsyncRead for Buffering {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl futures_io::AsyncWrite for Buffering {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().held.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.sent.lock().unwrap().append(&mut this.held);
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[test]
    fn what_a_buffering_stream_accepted_is_flushed_once_the_queue_is_empty() {
        let id = Hub::new(ServerConfig::default())
            .unwrap()
            .accept(Instant::now(), None);
        let stream = Buffering::default();
        let sent = stream.sent.clone();
        let outbox = Arc::new(Outbox::new());
        let (to_hub, _from_conn) = mpsc::channel(8);
        let mut io = ConnIo::new(id, stream, outbox.clone(), to_hub);
        assert!(outbox.push(&mut vec![Bytes::from_static(b"ok:a\n")]));
        outbox.wake();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut io).poll(&mut cx).is_pending());
        assert_eq!(sent.lock().unwrap().as_slice(), b"ok:a\n");
    }
}
