//! A client connection's state, shared by the application and the I/O.
//!
//! The application calls commands (`say`, `who`, `close`) and waits for
//! events; the I/O (a task, or a thread in the blocking transport) feeds the
//! core what arrives and writes what it queues. Both sides go through
//! [`ClientShared`], which holds the core [`Client`] under a mutex, drains
//! every `poll_*` after every call as the core's contract requires, and wakes
//! whichever side has something new: an async side through its `Waker`, a
//! blocking side through a `Condvar`. Commands therefore return at once with
//! the core's verdict (`UsageError` or queued), and keepalive runs in the
//! I/O whether or not the application is waiting for anything.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chat_proto::{Client, CloseReason, ErrorCode, Event, UsageError};

#[derive(Debug)]
struct Inner {
    core: Client,
    /// Bytes the core queued and the I/O has not taken yet.
    out: Vec<Bytes>,
    events: VecDeque<Event>,
    io_waker: Option<Waker>,
    app_waker: Option<Waker>,
    /// The name the server last accepted, for logging in again after a
    /// reconnect.
    name: Option<String>,
    /// How the current core closed, once it has.
    close_reason: Option<CloseReason>,
    /// The last login attempt was refused with `name-taken`.
    name_refused: bool,
    /// Logins accepted so far, over all connections.
    logins: u64,
    /// The application closed or dropped the client: never reconnect.
    stopped: bool,
    /// The I/O is over for good: no event will follow those queued.
    finished: bool,
}

/// The meeting point of a client's application side and its I/O side.
#[derive(Debug)]
pub struct ClientShared {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// Waiting for an event timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl ClientShared {
    /// Shares `core`, a client connection whose socket is open.
    pub fn new(core: Client) -> Self {
        ClientShared {
            inner: Mutex::new(Inner {
                core,
                out: Vec::new(),
                events: VecDeque::new(),
                io_waker: None,
                app_waker: None,
                name: None,
                close_reason: None,
                name_refused: false,
                logins: 0,
                stopped: false,
                finished: false,
            }),
            changed: Condvar::new(),
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
        let mut wake_io = false;
        while let Some(bytes) = inner.core.poll_transmit() {
            inner.out.push(bytes);
            wake_io = true;
        }
        let mut wake_app = false;
        while let Some(event) = inner.core.poll_event() {
            match &event {
                Event::LoggedIn { name } => {
                    inner.name = Some(name.clone());
                    inner.name_refused = false;
                    inner.logins += 1;
                }
                Event::Error { code, .. } if *code == ErrorCode::NameTaken => {
                    inner.name_refused = true;
                }
                Event::Closed { reason } => {
                    inner.close_reason = Some(reason.clone());
                    wake_io = true;
                }
                _ => {}
            }
            inner.events.push_back(event);
            wake_app = true;
        }
        let io = wake_io.then(|| inner.io_waker.take()).flatten();
        let app = wake_app.then(|| inner.app_waker.take()).flatten();
        drop(inner);
        if let Some(w) = io {
            w.wake();
        }
        if let Some(w) = app {
            w.wake();
        }
        if wake_app {
            self.changed.notify_all();
        }
    }

    // ---- the application's side ------------------------------------------

    /// Logs in (see [`Client::login`]).
    pub fn login(&self, name: &str) -> Result<(), UsageError> {
        self.with_core(|c| c.login(name))
    }

    /// Says `text` to the room (see [`Client::say`]).
    pub fn say(&self, text: &str) -> Result<(), UsageError> {
        self.with_core(|c| c.say(text))
    }

    /// Asks who is there; the answer comes as [`Event::Users`].
    pub fn who(&self) -> Result<(), UsageError> {
        self.with_core(|c| c.who())
    }

    /// Sends `bye:` and closes; no reconnect follows.
    pub fn close(&self, reason: &str) -> Result<(), UsageError> {
        self.with_core(|c| c.close(reason))
    }

    /// Marks the client as given up by the application: the I/O will not
    /// reconnect.
    pub fn stop(&self) {
        let mut inner = self.lock();
        inner.stopped = true;
        let io = inner.io_waker.take();
        drop(inner);
        if let Some(w) = io {
            w.wake();
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Logins the server accepted so far, over all connections.
    pub fn logins(&self) -> u64 {
        self.lock().logins
    }

    /// The name the server accepted last.
    pub fn name(&self) -> Option<String> {
        self.lock().name.clone()
    }

    /// The next event; `Ready(None)` once the connection is over for good.
    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut inner = self.lock();
        if let Some(event) = inner.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        inner.app_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next event, waiting up to `timeout` (forever if `None`);
    /// `Ok(None)` once the connection is over for good.
    pub fn recv_blocking(&self, timeout: Option<Duration>) -> Result<Option<Event>, TimedOut> {
        // A timeout too long to be an instant is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut inner = self.lock();
        loop {
            if let Some(event) = inner.events.pop_front() {
                return Ok(Some(event));
            }
            if inner.finished {
                return Ok(None);
            }
            inner = match deadline {
                None => self
                    .changed
                    .wait(inner)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(TimedOut);
                    }
                    self.changed
                        .wait_timeout(inner, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    // ---- the I/O's side ---------------------------------------------------

    /// Bytes arrived from the server.
    pub fn input(&self, now: Instant, bytes: &[u8]) {
        self.with_core(|c| c.handle_input(now, bytes));
    }

    /// Time passed; runs keepalive.
    pub fn timeout(&self, now: Instant) {
        self.with_core(|c| c.handle_timeout(now));
    }

    /// The socket is gone.
    pub fn disconnected(&self, now: Instant) {
        self.with_core(|c| c.disconnected(now));
    }

    /// When [`timeout`](Self::timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock().core.poll_timeout()
    }

    /// Takes the bytes to write, or registers `cx` to hear of new ones (and
    /// of the core closing).
    pub fn poll_transmit(&self, cx: &mut Context<'_>) -> Poll<Vec<Bytes>> {
        let mut inner = self.lock();
        if !inner.out.is_empty() {
            return Poll::Ready(std::mem::take(&mut inner.out));
        }
        inner.io_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Registers `cx` to be woken by new bytes to write, a close, or a stop.
    pub fn register_io_waker(&self, cx: &mut Context<'_>) {
        self.lock().io_waker = Some(cx.waker().clone());
    }

    /// Takes the bytes to write, if any (for a blocking I/O).
    pub fn take_transmit(&self) -> Vec<Bytes> {
        std::mem::take(&mut self.lock().out)
    }

    /// How the current core closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.lock().close_reason.clone()
    }

    /// Whether the last login was refused because the name is taken.
    pub fn name_refused(&self) -> bool {
        self.lock().name_refused
    }

    /// Starts over on a new connection with `core`, logging in again under
    /// the last accepted name.
    pub fn reconnected(&self, core: Client) -> Result<(), UsageError> {
        let mut inner = self.lock();
        inner.core = core;
        inner.out.clear();
        inner.close_reason = None;
        inner.name_refused = false;
        let result = match inner.name.clone() {
            Some(name) => inner.core.login(&name),
            None => Ok(()),
        };
        self.drain(inner);
        result
    }

    /// The I/O is over for good; the application gets `None` after the
    /// queued events.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.finished = true;
        let app = inner.app_waker.take();
        drop(inner);
        if let Some(w) = app {
            w.wake();
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::ClientConfig;
    use std::sync::Arc;

    #[test]
    fn commands_queue_bytes_and_input_queues_events() {
        let now = Instant::now();
        let shared = ClientShared::new(Client::new(ClientConfig::default(), now).unwrap());
        shared.login("zhangsan").unwrap();
        assert_eq!(shared.take_transmit().concat(), b"iam:zhangsan\n");
        assert_eq!(shared.say("x"), Err(UsageError::NotLoggedIn));
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
    fn a_timeout_past_the_end_of_time_waits_without_overflowing() {
        let now = Instant::now();
        let shared = ClientShared::new(Client::new(ClientConfig::default(), now).unwrap());
        shared.disconnected(now);
        assert!(matches!(
            shared.recv_blocking(Some(Duration::MAX)),
            Ok(Some(Event::Closed { .. }))
        ));
    }

    #[test]
    fn a_blocked_reader_wakes_on_events_and_on_finish() {
        let now = Instant::now();
        let shared = Arc::new(ClientShared::new(
            Client::new(ClientConfig::default(), now).unwrap(),
        ));
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let first = shared.recv_blocking(Some(Duration::from_secs(10)));
                let second = shared.recv_blocking(Some(Duration::from_secs(10)));
                (first, second)
            })
        };
        shared.disconnected(now);
        shared.finish();
        let (first, second) = reader.join().unwrap();
        assert_eq!(
            first,
            Ok(Some(Event::Closed {
                reason: CloseReason::Disconnected
            }))
        );
        assert_eq!(second, Ok(None));
        assert_eq!(shared.close_reason(), Some(CloseReason::Disconnected));
    }

    #[test]
    fn reconnecting_logs_in_again_under_the_accepted_name() {
        let now = Instant::now();
        let shared = ClientShared::new(Client::new(ClientConfig::default(), now).unwrap());
        shared.login("lisi").unwrap();
        shared.input(now, b"ok:lisi\n");
        shared.disconnected(now);
        shared.take_transmit();
        shared
            .reconnected(Client::new(ClientConfig::default(), now).unwrap())
            .unwrap();
        assert_eq!(shared.take_transmit().concat(), b"iam:lisi\n");
        assert_eq!(shared.close_reason(), None);
        shared.input(now, b"err:name-taken:lisi is taken\n");
        assert!(shared.name_refused());
    }
}
