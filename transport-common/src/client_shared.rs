//! A client session shared by the application and the I/O.
//!
//! The core [`Client`] is a whole session: it decides when to reconnect and
//! logs in again by itself. [`ClientShared`] holds it under a mutex between
//! the two sides that drive it: the application, which calls commands and
//! waits for events, and the I/O (an async task or a thread), which feeds it
//! what arrives and the time, and carries out what it asks
//! ([`ClientOutput`]: bytes to write, a socket to open or to close). After
//! every call it drains the core, as the core's contract requires, and wakes
//! whichever side has something new: an async side through its `Waker`, a
//! blocking side through a `Condvar`.
//!
//! Both directions are bounded. Events the application has not taken stop
//! the I/O from reading once there are [`ClientOptions::max_pending_events`]
//! of them (the server then slows down through TCP); bytes not yet written
//! make [`ClientShared::try_say`] refuse with
//! [`UsageError::WouldBlock`] past [`ClientOptions::max_unsent`], and the
//! waiting `say` of each transport wait for room.
//!
//! [`ClientOptions::max_pending_events`]: crate::ClientOptions::max_pending_events
//! [`ClientOptions::max_unsent`]: crate::ClientOptions::max_unsent

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chat_proto::{Client, ClientOutput, CloseReason, Event, UsageError};

use crate::blocking::{Blocking, wait_until};
use crate::options::{ClientOptions, ConnectError};

/// What the core asks of the I/O about the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOrder {
    /// Open a new connection; then call [`ClientShared::connected`] or
    /// [`ClientShared::connect_failed`].
    Connect,
    /// Close the socket once what was taken is written; then call
    /// [`ClientShared::disconnected`].
    Disconnect,
    /// Drop the socket now; then call [`ClientShared::disconnected`].
    Abort,
}

#[derive(Debug)]
struct Inner {
    core: Client,
    /// Bytes the core queued and the I/O has not taken yet.
    out: Vec<Bytes>,
    /// Bytes queued or taken by the I/O and not yet written.
    unsent: usize,
    orders: VecDeque<SocketOrder>,
    events: VecDeque<Event>,
    io_waker: Option<Waker>,
    app_waker: Option<Waker>,
    /// The I/O is over for good: no event will follow those queued.
    finished: bool,
    /// Threads blocked waiting; only they need the condvar notified.
    blocked: usize,
}

impl Blocking for Inner {
    fn blocked(&mut self) -> &mut usize {
        &mut self.blocked
    }
}

/// The meeting point of a client's application side and its I/O side.
#[derive(Debug)]
pub struct ClientShared {
    inner: Mutex<Inner>,
    changed: Condvar,
    max_events: usize,
    max_unsent: usize,
}

/// Waiting for an event timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl ClientShared {
    /// Shares `core`, a session whose first socket is open, with the
    /// bounds of `options`.
    pub fn new(core: Client, options: &ClientOptions) -> Self {
        ClientShared {
            inner: Mutex::new(Inner {
                core,
                out: Vec::new(),
                unsent: 0,
                orders: VecDeque::new(),
                events: VecDeque::new(),
                io_waker: None,
                app_waker: None,
                finished: false,
                blocked: 0,
            }),
            changed: Condvar::new(),
            max_events: options.max_pending_events,
            max_unsent: options.max_unsent,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core, then drains it and wakes whoever must act.
    fn with_core<T>(&self, f: impl FnOnce(&mut Client) -> T) -> T {
        let mut inner = self.lock();
        let result = f(&mut inner.core);
        self.drain(inner);
        result
    }

    fn drain(&self, mut inner: MutexGuard<'_, Inner>) {
        let (mut wake_io, mut wake_app) = (false, false);
        while let Some(output) = inner.core.poll_output() {
            match output {
                ClientOutput::Transmit(bytes) => {
                    inner.unsent += bytes.len();
                    inner.out.push(bytes);
                    wake_io = true;
                }
                ClientOutput::Event(event) => {
                    inner.events.push_back(event);
                    wake_app = true;
                }
                ClientOutput::Connect => {
                    inner.orders.push_back(SocketOrder::Connect);
                    wake_io = true;
                }
                ClientOutput::Disconnect => {
                    inner.orders.push_back(SocketOrder::Disconnect);
                    wake_io = true;
                }
                ClientOutput::Abort => {
                    inner.orders.push_back(SocketOrder::Abort);
                    wake_io = true;
                }
                other => tracing::debug!(?other, "client output"),
            }
        }
        self.wake(inner, wake_io, wake_app);
    }

    fn wake(&self, mut inner: MutexGuard<'_, Inner>, io: bool, app: bool) {
        let io = io.then(|| inner.io_waker.take()).flatten();
        let app = app.then(|| inner.app_waker.take()).flatten();
        let blocked = inner.blocked > 0;
        drop(inner);
        if let Some(w) = io {
            w.wake();
        }
        if let Some(w) = app {
            w.wake();
        }
        if blocked {
            self.changed.notify_all();
        }
    }

    // ---- the application's side ------------------------------------------

    /// Runs a command on the core (login, who, join, ...).
    pub fn command<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, UsageError>,
    ) -> Result<T, UsageError> {
        self.with_core(f)
    }

    /// Says `text` in the default room, unless the outgoing buffer is full
    /// ([`UsageError::WouldBlock`]).
    pub fn try_say(&self, text: &str) -> Result<(), UsageError> {
        self.try_send(|c| c.say(text))
    }

    /// Runs a command that sends a message (say, say in a room, a private
    /// message), unless the outgoing buffer is full.
    pub fn try_send(
        &self,
        f: impl FnOnce(&mut Client) -> Result<(), UsageError>,
    ) -> Result<(), UsageError> {
        let mut inner = self.lock();
        if inner.unsent >= self.max_unsent {
            return Err(UsageError::WouldBlock);
        }
        let result = f(&mut inner.core);
        self.drain(inner);
        result
    }

    /// Registers `cx` to be woken when the outgoing buffer has room;
    /// `Ready` if it has room now.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.unsent < self.max_unsent || inner.finished {
            return Poll::Ready(());
        }
        inner.app_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Blocks until the outgoing buffer has room.
    pub fn wait_room(&self) {
        let mut inner = self.lock();
        while inner.unsent >= self.max_unsent && !inner.finished {
            inner.blocked += 1;
            inner = self
                .changed
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
            inner.blocked -= 1;
        }
    }

    /// Closes the session for good: `bye:` on an open connection, at once
    /// between connections.
    pub fn close(&self, reason: &str) -> Result<(), UsageError> {
        self.with_core(|c| c.close(reason))
    }

    /// The name the session logged in with.
    pub fn name(&self) -> Option<String> {
        self.lock().core.name().map(String::from)
    }

    /// The rooms the session joined besides the default one.
    pub fn joined_rooms(&self) -> Vec<String> {
        self.lock().core.joined_rooms().to_vec()
    }

    /// The next event; `Ready(None)` once the session is over for good.
    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut inner = self.lock();
        if let Some(event) = inner.events.pop_front() {
            // Taking one may let the I/O read again.
            let wake_io = inner.events.len() + 1 == self.max_events;
            if wake_io {
                self.wake(inner, true, false);
            }
            return Poll::Ready(Some(event));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        inner.app_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next event, waiting up to `timeout` (forever if `None`);
    /// `Ok(None)` once the session is over for good.
    pub fn recv_blocking(&self, timeout: Option<Duration>) -> Result<Option<Event>, TimedOut> {
        let ready = |inner: &mut Inner| match inner.events.pop_front() {
            Some(event) => Some(Some(event)),
            None => inner.finished.then_some(None),
        };
        let (inner, event) = wait_until(&self.changed, self.lock(), timeout, ready)?;
        // A reader taking an event from a full queue lets the I/O go on.
        if event.is_some() && inner.events.len() + 1 == self.max_events {
            self.wake(inner, true, false);
        }
        Ok(event)
    }

    // ---- the I/O's side ---------------------------------------------------

    /// Bytes arrived from the server.
    pub fn input(&self, now: Instant, bytes: &[u8]) {
        self.with_core(|c| c.handle_input(now, bytes));
    }

    /// Time passed; runs keepalive and the reconnect backoff.
    pub fn timeout(&self, now: Instant) {
        self.with_core(|c| c.handle_timeout(now));
    }

    /// The socket is gone: lost, or closed as ordered.
    pub fn disconnected(&self, now: Instant) {
        let mut inner = self.lock();
        inner.out.clear();
        inner.unsent = 0;
        inner.core.disconnected(now);
        self.drain(inner);
    }

    /// A new connection is open, as ordered.
    pub fn connected(&self, now: Instant) {
        self.with_core(|c| c.connected(now));
    }

    /// Opening the ordered connection failed.
    pub fn connect_failed(&self, now: Instant) {
        self.with_core(|c| c.connect_failed(now));
    }

    /// When [`timeout`](Self::timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock().core.poll_timeout()
    }

    /// Takes the bytes to write, if any.
    pub fn take_transmit(&self) -> Vec<Bytes> {
        std::mem::take(&mut self.lock().out)
    }

    /// Takes the next socket order, if any.
    pub fn take_order(&self) -> Option<SocketOrder> {
        self.lock().orders.pop_front()
    }

    /// The I/O wrote `n` bytes: the outgoing buffer has that much more
    /// room.
    pub fn written(&self, n: usize) {
        let mut inner = self.lock();
        let was_full = inner.unsent >= self.max_unsent;
        inner.unsent = inner.unsent.saturating_sub(n);
        if was_full && inner.unsent < self.max_unsent {
            self.wake(inner, false, true);
        }
    }

    /// Whether the I/O may read: the application is not too far behind
    /// on events.
    pub fn wants_input(&self) -> bool {
        self.lock().events.len() < self.max_events
    }

    /// Registers `cx` to hear of new bytes, orders, room for events, or
    /// the end.
    pub fn register_io_waker(&self, cx: &mut Context<'_>) {
        self.lock().io_waker = Some(cx.waker().clone());
    }

    /// Blocks a reader thread while the application is too far behind on
    /// events (up to `timeout`).
    pub fn wait_wants_input(&self, timeout: Duration) {
        let mut inner = self.lock();
        if inner.events.len() >= self.max_events && !inner.finished {
            inner.blocked += 1;
            inner = self
                .changed
                .wait_timeout(inner, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            inner.blocked -= 1;
        }
    }

    /// Blocks an I/O thread until the session has something for it (bytes,
    /// an order, the end) or `timeout` passes.
    pub fn wait_for_io(&self, timeout: Duration) {
        let mut inner = self.lock();
        if !inner.out.is_empty() || !inner.orders.is_empty() || inner.core.is_finished() {
            return;
        }
        inner.blocked += 1;
        inner = self
            .changed
            .wait_timeout(inner, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        inner.blocked -= 1;
    }

    /// Whether the session is over and its socket closed: the I/O may end.
    pub fn is_finished(&self) -> bool {
        let inner = self.lock();
        inner.core.is_finished() && inner.orders.is_empty()
    }

    /// The I/O is over for good; the application gets `None` after the
    /// queued events.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.finished = true;
        self.wake(inner, false, true);
        self.changed.notify_all();
    }
}

/// What an event means for a first login: `None` to keep waiting.
pub fn login_outcome(event: Option<Event>) -> Option<Result<(), ConnectError>> {
    match event {
        Some(Event::LoggedIn { .. }) => Some(Ok(())),
        Some(Event::Error { code, text }) => Some(Err(ConnectError::Rejected { code, text })),
        Some(Event::Closed { reason }) => Some(Err(ConnectError::Closed(reason))),
        Some(_) => None,
        None => Some(Err(ConnectError::Closed(CloseReason::Disconnected))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::ClientConfig;
    use std::sync::Arc;

    fn shared(config: ClientConfig, options: &ClientOptions) -> ClientShared {
        ClientShared::new(Client::new(config, Instant::now()).unwrap(), options)
    }

    #[test]
    fn commands_queue_bytes_and_input_queues_events() {
        let now = Instant::now();
        let shared = shared(ClientConfig::plain(), &ClientOptions::default());
        shared.command(|c| c.login("zhangsan")).unwrap();
        assert_eq!(shared.take_transmit().concat(), b"iam:zhangsan\n");
        assert_eq!(shared.try_say("x"), Err(UsageError::NotLoggedIn));
        shared.input(now, b"ok:zhangsan\nping:9\n");
        assert_eq!(shared.take_transmit().concat(), b"pong:9\n");
        assert_eq!(shared.name().as_deref(), Some("zhangsan"));
        assert_eq!(
            shared.recv_blocking(Some(Duration::ZERO)),
            Ok(Some(Event::LoggedIn {
                name: "zhangsan".into()
            }))
        );
        assert_eq!(
            shared.recv_blocking(Some(Duration::from_millis(1))),
            Err(TimedOut)
        );
    }

    #[test]
    fn a_full_outgoing_buffer_refuses_until_written() {
        let now = Instant::now();
        let options = ClientOptions {
            max_unsent: 30,
            ..ClientOptions::default()
        };
        let shared = shared(ClientConfig::plain(), &options);
        shared.command(|c| c.login("a")).unwrap();
        shared.input(now, b"ok:a\n");
        assert_eq!(shared.try_say("0123456789"), Ok(()));
        assert_eq!(shared.try_say("0123456789"), Ok(()));
        // 6 + 15 + 15 bytes unsent: full.
        assert_eq!(shared.try_say("x"), Err(UsageError::WouldBlock));
        let taken: usize = shared.take_transmit().iter().map(Bytes::len).sum();
        shared.written(taken);
        assert_eq!(shared.try_say("x"), Ok(()));
    }

    #[test]
    fn too_many_untaken_events_stop_the_reading() {
        let now = Instant::now();
        let options = ClientOptions {
            max_pending_events: 3,
            ..ClientOptions::default()
        };
        let shared = shared(ClientConfig::plain(), &options);
        shared.command(|c| c.login("a")).unwrap();
        shared.input(now, b"ok:a\nmsg:b:1\nmsg:b:2\n");
        assert!(!shared.wants_input());
        assert!(
            shared
                .recv_blocking(Some(Duration::ZERO))
                .unwrap()
                .is_some()
        );
        assert!(shared.wants_input());
    }

    #[test]
    fn a_lost_connection_orders_a_reconnect_and_a_blocked_reader_hears_the_end() {
        let now = Instant::now();
        let mut config = ClientConfig::plain();
        config.reconnect = Some(chat_proto::ReconnectPolicy::default());
        let shared = Arc::new(shared(config, &ClientOptions::default()));
        shared.command(|c| c.login("lisi")).unwrap();
        shared.input(now, b"ok:lisi\n");
        shared.disconnected(now);
        let at = shared.poll_timeout().unwrap();
        shared.timeout(at);
        assert_eq!(shared.take_order(), Some(SocketOrder::Connect));
        shared.connected(at);
        assert_eq!(shared.take_transmit().concat(), b"iam:lisi\n");
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut events = Vec::new();
                while let Ok(Some(e)) = shared.recv_blocking(Some(Duration::from_secs(10))) {
                    events.push(e);
                }
                events
            })
        };
        shared.finish();
        let events = reader.join().unwrap();
        assert!(events.contains(&Event::Closed {
            reason: CloseReason::Disconnected
        }));
    }
}
