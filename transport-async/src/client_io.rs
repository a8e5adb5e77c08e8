//! The async client: a handle for the application, and the I/O task behind
//! it, written once over `futures-io` for every async runtime.
//!
//! [`Client::connect_on`] resolves the address, tries each resolved address
//! in turn (each within [`ClientOptions::connect_timeout`]), logs in, and
//! returns once the server said `ok:` (or refused). From then on a
//! background task moves bytes between the socket and the [`ClientShared`]
//! state and runs the core's keepalive timer, whether or not the
//! application is waiting for events. With a reconnect policy, a connection
//! lost for any reason but a local `close` is reopened after an exponential
//! backoff with jitter, and the client logs in again under the same name;
//! the application sees `Closed` followed, later, by `LoggedIn`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chat_proto::{ClientConfig, Event, MAX_DURATION, UsageError, after};
use futures_io::AsyncWrite;
use transport_common::{
    Address, ClientOptions, ClientShared, ConnectError, Reconnector, WriteQueue, login_outcome,
};

use crate::read::poll_read_bytes;
use crate::runtime::{BoxFuture, Runtime, Stream};

/// A connected, logged-in chat client, on the runtime it was connected
/// with.
///
/// Commands return at once; what the server says arrives through
/// [`next_event`](Client::next_event). Keepalive runs in a background
/// task. Dropping the client closes the connection.
#[derive(Debug)]
pub struct Client {
    shared: Arc<ClientShared>,
}

impl Client {
    /// Connects to `addr` (`"host:port"` or a `SocketAddr`) on runtime `rt`
    /// and logs in as `name`; returns once the server answered `ok:` (or
    /// refused). Every resolved address is tried in order.
    pub async fn connect_on(
        rt: impl Runtime,
        addr: impl Into<Address>,
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        config.validate()?;
        let rt: Arc<dyn Runtime> = Arc::new(rt);
        let addrs: Arc<[SocketAddr]> = rt.resolve(addr.into()).await?.into();
        let (stream, addr) =
            connect_any(rt.clone(), addrs.clone(), options.connect_timeout).await?;
        let core = chat_proto::Client::new(config.clone(), rt.now())?;
        let shared = Arc::new(ClientShared::new(core));
        shared.login(name)?;
        let reconnector = Reconnector::new(options.reconnect, Reconnector::seed(addr));
        let io = ClientIo {
            rt: rt.clone(),
            addrs,
            connect_timeout: options.connect_timeout,
            config,
            shared: shared.clone(),
            reconnector,
            state: State::Connected {
                stream,
                queue: WriteQueue::new(),
            },
            timer: None,
            linger: None,
        };
        rt.spawn(Box::pin(io));
        let client = Client { shared };
        loop {
            if let Some(outcome) = login_outcome(client.next_event().await) {
                return outcome.map(|()| client);
            }
        }
    }

    /// Says `text` to the room.
    pub fn say(&self, text: &str) -> Result<(), UsageError> {
        self.shared.say(text)
    }

    /// Asks who is there; the answer arrives as [`Event::Users`].
    pub fn who(&self) -> Result<(), UsageError> {
        self.shared.who()
    }

    /// Sends `bye:REASON` and closes; the events end with
    /// `Closed { reason: Local }` and then `None`.
    pub fn close(&self, reason: &str) -> Result<(), UsageError> {
        self.shared.stop();
        self.shared.close(reason)
    }

    /// The name logged in with.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// The next event; `None` once the connection is over for good. After
    /// [`Event::Closed`] (and no reconnect), `None` comes once the last
    /// bytes, such as the `bye:` of [`close`](Self::close), are flushed:
    /// wait for it before dropping the runtime, or they may be lost.
    pub async fn next_event(&self) -> Option<Event> {
        std::future::poll_fn(|cx| self.shared.poll_event(cx)).await
    }

    /// The next event if one is waiting; `Poll::Ready(None)` once the
    /// connection is over.
    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.shared.poll_event(cx)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.stop();
        let _ = self.shared.close("");
    }
}

/// Connects to the first of `addrs` that accepts, giving each `timeout`.
/// Returns the stream and the address it reached, or the last error.
async fn connect_any(
    rt: Arc<dyn Runtime>,
    addrs: Arc<[SocketAddr]>,
    timeout: Duration,
) -> io::Result<(Box<dyn Stream>, SocketAddr)> {
    let mut last_error = None;
    for &addr in addrs.iter() {
        match with_timeout(&*rt, timeout, rt.connect(addr)).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                last_error = Some(e);
            }
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")))
}

/// `future`, or a `TimedOut` error once `timeout` has passed.
async fn with_timeout<T>(
    rt: &dyn Runtime,
    timeout: Duration,
    mut future: BoxFuture<io::Result<T>>,
) -> io::Result<T> {
    let mut sleep = rt.sleep_until(after(rt.now(), timeout.min(MAX_DURATION)));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = future.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

enum State {
    Connected {
        stream: Box<dyn Stream>,
        queue: WriteQueue,
    },
    Waiting(BoxFuture<()>),
    Connecting(BoxFuture<io::Result<(Box<dyn Stream>, SocketAddr)>>),
    Done,
}

/// The background task of one client: its socket, keepalive and
/// reconnects.
struct ClientIo {
    rt: Arc<dyn Runtime>,
    /// Every address the server's name resolved to, tried in order.
    addrs: Arc<[SocketAddr]>,
    connect_timeout: Duration,
    config: ClientConfig,
    shared: Arc<ClientShared>,
    reconnector: Reconnector,
    state: State,
    timer: Option<(Instant, BoxFuture<()>)>,
    /// Bounds the flush of the last bytes once the core closed.
    linger: Option<BoxFuture<()>>,
}

impl ClientIo {
    /// After the connection ended: reconnect, or finish.
    fn after_close(&mut self) {
        let delay = self.reconnector.after_close(&self.shared);
        self.timer = None;
        self.linger = None;
        self.state = match delay {
            Some(delay) => {
                tracing::info!(addrs = ?self.addrs, ?delay, "connection lost; reconnecting");
                State::Waiting(self.rt.sleep_until(after(self.rt.now(), delay)))
            }
            None => State::Done,
        };
    }

    /// One round of work on an open connection; returns whether anything
    /// happened.
    fn step_connected(&mut self, cx: &mut Context<'_>) -> bool {
        let State::Connected { stream, queue } = &mut self.state else {
            return false;
        };
        let mut progress = false;
        if let Poll::Ready(data) = self.shared.poll_transmit(cx) {
            queue.extend(data);
            progress = true;
        }
        if !queue.is_empty() {
            let written = {
                let slices = queue.io_slices();
                Pin::new(&mut *stream).poll_write_vectored(cx, &slices)
            };
            match written {
                Poll::Ready(Ok(n)) if n > 0 => {
                    queue.advance(n);
                    progress = true;
                }
                Poll::Ready(_) => return self.lost(),
                Poll::Pending => {}
            }
        }
        let now = self.rt.now();
        if self.shared.close_reason().is_some() {
            // The core closed (bye, keepalive, fatal error): flush, then go,
            // waiting at most CLOSE_LINGER for a peer that does not read.
            if queue.is_empty() && Pin::new(&mut *stream).poll_close(cx).is_ready() {
                self.after_close();
                return true;
            }
            let linger = self
                .linger
                .get_or_insert_with(|| self.rt.sleep_until(after(now, CLOSE_LINGER)));
            if linger.as_mut().poll(cx).is_ready() {
                self.after_close();
                return true;
            }
            return progress;
        }
        if self.reconnector.name_still_held(&self.shared) {
            // Our old session still holds the name on the server: try later.
            self.shared.disconnected(now);
            self.after_close();
            return true;
        }
        match poll_read_bytes(&mut *stream, cx) {
            Poll::Ready(Ok(bytes)) if !bytes.is_empty() => {
                self.shared.input(now, &bytes);
                self.reconnector.after_input(&self.shared);
                progress = true;
            }
            Poll::Ready(_) => return self.lost(),
            Poll::Pending => {}
        }
        progress | self.poll_keepalive(cx)
    }

    /// The socket failed or the server closed it.
    fn lost(&mut self) -> bool {
        self.shared.disconnected(self.rt.now());
        self.after_close();
        true
    }

    /// Runs the core's timer; returns whether it fired.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.shared.poll_timeout() else {
            return false;
        };
        if self.rt.now() >= deadline {
            self.timer = None;
            self.shared.timeout(self.rt.now());
            return true;
        }
        if self.timer.as_ref().is_none_or(|(at, _)| *at != deadline) {
            self.timer = Some((deadline, self.rt.sleep_until(deadline)));
        }
        let (_, sleep) = self.timer.as_mut().expect("set above");
        if sleep.as_mut().poll(cx).is_ready() {
            self.timer = None;
            return true;
        }
        false
    }
}

impl Future for ClientIo {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..64 {
            let progress = match &mut this.state {
                State::Connected { .. } => this.step_connected(cx),
                State::Waiting(_) | State::Connecting(_) if this.shared.is_stopped() => {
                    this.state = State::Done;
                    true
                }
                State::Waiting(sleep) => {
                    if sleep.as_mut().poll(cx).is_ready() {
                        this.state = State::Connecting(Box::pin(connect_any(
                            this.rt.clone(),
                            this.addrs.clone(),
                            this.connect_timeout,
                        )));
                        true
                    } else {
                        // Hear of a stop while waiting.
                        this.shared.register_io_waker(cx);
                        false
                    }
                }
                State::Connecting(connecting) => match connecting.as_mut().poll(cx) {
                    Poll::Ready(Ok((stream, addr))) => {
                        tracing::info!(%addr, "reconnected; logging in again");
                        let core = chat_proto::Client::new(this.config.clone(), this.rt.now())
                            .expect("config validated in connect");
                        // The name was accepted before, so it is valid.
                        let _ = this.shared.reconnected(core);
                        this.state = State::Connected {
                            stream,
                            queue: WriteQueue::new(),
                        };
                        true
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "reconnect failed");
                        this.after_close();
                        true
                    }
                    Poll::Pending => false,
                },
                State::Done => {
                    this.shared.finish();
                    return Poll::Ready(());
                }
            };
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// How long a client waits at most for its `bye:` to be flushed.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);
