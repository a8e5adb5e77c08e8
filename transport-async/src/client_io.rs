//! The async client: a handle for the application, and the I/O task behind
//! it, written once over `futures-io` for every async runtime.
//!
//! [`Client::connect_on`] resolves the address, tries each resolved address
//! in turn (each within [`ClientOptions::connect_timeout`]), logs in, and
//! returns once the server said `ok:` (or refused). From then on a
//! background task carries out what the core session asks
//! ([`SocketOrder`]s: open a connection, close it) and moves bytes and time
//! between the socket and the [`ClientShared`] state, whether or not the
//! application is waiting for events. Whether and when to reconnect, and
//! logging in again, are the core's decisions
//! ([`ClientConfig::reconnect`]); the application sees `Closed`, then
//! `Reconnecting`, then `LoggedIn` again.

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
    Address, ClientOptions, ClientShared, ConnectError, Login, SocketOrder, WriteQueue,
    jitter_seed, login_outcome,
};

use crate::read::poll_read_bytes;
use crate::runtime::{BoxFuture, Runtime, Stream};

/// A connected, logged-in chat session, on the runtime it was connected
/// with.
///
/// Commands return at once (the `say` family waits while the outgoing
/// buffer is full); what the server says arrives through
/// [`next_event`](Client::next_event). Keepalive and reconnects run in a
/// background task. Dropping the client closes the session.
#[derive(Debug)]
pub struct Client {
    shared: Arc<ClientShared>,
}

impl Client {
    /// Connects to `addr` (`"host:port"` or a `SocketAddr`) on runtime `rt`
    /// and logs in (as a guest with a plain name, to an account with
    /// [`Login::with_secret`]); returns once the server answered `ok:` (or
    /// refused). Every resolved address is tried in order.
    pub async fn connect_on(
        rt: impl Runtime,
        addr: impl Into<Address>,
        login: impl Into<Login>,
        mut config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        config.validate()?;
        if config.jitter_seed == 0 {
            config.jitter_seed = jitter_seed();
        }
        let rt: Arc<dyn Runtime> = Arc::new(rt);
        let addrs: Arc<[SocketAddr]> = rt.resolve(addr.into()).await?.into();
        let (stream, _) = connect_any(rt.clone(), addrs.clone(), options.connect_timeout).await?;
        let core = chat_proto::Client::new(config, rt.now())?;
        let shared = Arc::new(ClientShared::new(core, &options));
        shared.command(|c| login.into().start(c))?;
        let io = ClientIo {
            rt: rt.clone(),
            addrs,
            connect_timeout: options.connect_timeout,
            shared: shared.clone(),
            socket: Socket::Open {
                stream,
                queue: WriteQueue::new(),
                closing: false,
            },
            timer: None,
        };
        rt.spawn(Box::pin(io));
        let client = Client { shared };
        loop {
            if let Some(outcome) = login_outcome(client.next_event().await) {
                return outcome.map(|()| client);
            }
        }
    }

    /// Says `text` in the default room, waiting while the outgoing buffer
    /// is full.
    pub async fn say(&self, text: &str) -> Result<(), UsageError> {
        self.send(|c| c.say(text)).await
    }

    /// Says `text` in the default room, or fails with
    /// [`UsageError::WouldBlock`] if the outgoing buffer is full.
    pub fn try_say(&self, text: &str) -> Result<(), UsageError> {
        self.shared.try_say(text)
    }

    /// Says `text` in `room`, which the session joined, waiting while the
    /// outgoing buffer is full.
    pub async fn say_in(&self, room: &str, text: &str) -> Result<(), UsageError> {
        self.send(|c| c.say_in(room, text)).await
    }

    /// Says `text` to the user `to` only, waiting while the outgoing
    /// buffer is full.
    pub async fn pm(&self, to: &str, text: &str) -> Result<(), UsageError> {
        self.send(|c| c.pm(to, text)).await
    }

    async fn send(
        &self,
        f: impl Fn(&mut chat_proto::Client) -> Result<(), UsageError>,
    ) -> Result<(), UsageError> {
        loop {
            std::future::poll_fn(|cx| self.shared.poll_room(cx)).await;
            match self.shared.try_send(&f) {
                Err(UsageError::WouldBlock) => continue,
                other => return other,
            }
        }
    }

    /// Asks who is in the default room; the answer arrives as
    /// [`Event::Users`].
    pub fn who(&self) -> Result<(), UsageError> {
        self.shared.command(|c| c.who())
    }

    /// Asks who is in `room`; the answer arrives as [`Event::Users`].
    pub fn who_in(&self, room: &str) -> Result<(), UsageError> {
        self.shared.command(|c| c.who_in(room))
    }

    /// Joins `room` (created if it does not exist); the session joins it
    /// again after a reconnect.
    pub fn join(&self, room: &str) -> Result<(), UsageError> {
        self.shared.command(|c| c.join(room))
    }

    /// Leaves `room`.
    pub fn part(&self, room: &str) -> Result<(), UsageError> {
        self.shared.command(|c| c.part(room))
    }

    /// Asks which rooms exist; the answer arrives as [`Event::Rooms`].
    pub fn rooms(&self) -> Result<(), UsageError> {
        self.shared.command(|c| c.rooms())
    }

    /// Closes the session: `bye:REASON`; the events end with
    /// `Closed { reason: Local }` and then `None`.
    pub fn close(&self, reason: &str) -> Result<(), UsageError> {
        self.shared.close(reason)
    }

    /// The name logged in with.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// The rooms joined besides the default one.
    pub fn joined_rooms(&self) -> Vec<String> {
        self.shared.joined_rooms()
    }

    /// The next event; `None` once the session is over for good. After the
    /// last [`Event::Closed`], `None` comes once the last bytes, such as
    /// the `bye:` of [`close`](Self::close), are flushed: wait for it before
    /// dropping the runtime, or they may be lost.
    pub async fn next_event(&self) -> Option<Event> {
        std::future::poll_fn(|cx| self.shared.poll_event(cx)).await
    }

    /// The next event if one is waiting; `Poll::Ready(None)` once the
    /// session is over.
    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.shared.poll_event(cx)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
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

/// The socket of the session's current connection, as the I/O sees it.
enum Socket {
    /// No connection: between two, or at the end.
    None,
    /// Opening one, as the core ordered.
    Connecting(BoxFuture<io::Result<(Box<dyn Stream>, SocketAddr)>>),
    /// Open; `closing` once the core ordered it closed after the flush.
    Open {
        stream: Box<dyn Stream>,
        queue: WriteQueue,
        closing: bool,
    },
}

/// The background task of one client session: it carries out the core's
/// socket orders and moves bytes and time.
struct ClientIo {
    rt: Arc<dyn Runtime>,
    /// Every address the server's name resolved to, tried in order.
    addrs: Arc<[SocketAddr]>,
    connect_timeout: Duration,
    shared: Arc<ClientShared>,
    socket: Socket,
    timer: Option<(Instant, BoxFuture<()>)>,
}

impl ClientIo {
    /// The socket is gone (lost, closed or dropped as ordered).
    fn gone(&mut self) {
        self.socket = Socket::None;
        self.shared.disconnected(self.rt.now());
    }

    /// Carries out the core's orders; returns whether there was any.
    fn take_orders(&mut self) -> bool {
        let mut any = false;
        while let Some(order) = self.shared.take_order() {
            any = true;
            match order {
                SocketOrder::Connect => {
                    tracing::info!(addrs = ?self.addrs, "reconnecting");
                    self.socket = Socket::Connecting(Box::pin(connect_any(
                        self.rt.clone(),
                        self.addrs.clone(),
                        self.connect_timeout,
                    )));
                }
                SocketOrder::Disconnect => {
                    if let Socket::Open { closing, .. } = &mut self.socket {
                        *closing = true;
                    }
                }
                SocketOrder::Abort => {
                    if !matches!(self.socket, Socket::None) {
                        self.gone();
                    }
                }
            }
        }
        any
    }

    /// One round of work on the socket; returns whether anything happened.
    fn step_socket(&mut self, cx: &mut Context<'_>) -> bool {
        let now = self.rt.now();
        match &mut self.socket {
            Socket::None => false,
            Socket::Connecting(connecting) => match connecting.as_mut().poll(cx) {
                Poll::Ready(Ok((stream, addr))) => {
                    tracing::info!(%addr, "reconnected; logging in again");
                    self.socket = Socket::Open {
                        stream,
                        queue: WriteQueue::new(),
                        closing: false,
                    };
                    self.shared.connected(now);
                    true
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "reconnect failed");
                    self.socket = Socket::None;
                    self.shared.connect_failed(now);
                    true
                }
                Poll::Pending => false,
            },
            Socket::Open {
                stream,
                queue,
                closing,
            } => {
                let mut progress = false;
                let data = self.shared.take_transmit();
                if !data.is_empty() {
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
                            self.shared.written(n);
                            progress = true;
                        }
                        Poll::Ready(_) => {
                            self.gone();
                            return true;
                        }
                        Poll::Pending => {}
                    }
                }
                if *closing {
                    // Flush, then close; the core bounds how long this may
                    // take (it orders an abort).
                    if queue.is_empty() && Pin::new(&mut *stream).poll_close(cx).is_ready() {
                        self.gone();
                        return true;
                    }
                    return progress;
                }
                if self.shared.wants_input() {
                    match poll_read_bytes(stream, cx) {
                        Poll::Ready(Ok(bytes)) if !bytes.is_empty() => {
                            self.shared.input(now, &bytes);
                            progress = true;
                        }
                        Poll::Ready(_) => {
                            self.gone();
                            return true;
                        }
                        Poll::Pending => {}
                    }
                }
                progress
            }
        }
    }

    /// Runs the core's timer; returns whether it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.shared.poll_timeout() else {
            self.timer = None;
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
            // Registered first, so that nothing the application does from
            // here on goes unnoticed.
            this.shared.register_io_waker(cx);
            let mut progress = this.take_orders();
            progress |= this.step_socket(cx);
            progress |= this.poll_timer(cx);
            if matches!(this.socket, Socket::None) && this.shared.is_finished() {
                this.shared.finish();
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
