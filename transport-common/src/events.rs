//! A subscription to a server's [`HubEvent`]s, for async tasks and
//! blocking threads alike.
//!
//! [`ServerHandle::events`](crate::ServerHandle::events) returns an
//! [`Events`]; from then on the hub driver copies every event the hub
//! reports into it (login requests, logins, messages when the server's
//! configuration asks for them, closes), in the hub's order. The same type
//! is read with `next().await` in async code and with `recv` or
//! `recv_timeout` on a thread: a mutex-guarded queue, a `Waker` for the
//! async reader and a `Condvar` for the blocking one, as in
//! [`ClientShared`](crate::ClientShared).
//!
//! Nothing is queued for nobody: while no subscription is alive the driver
//! does not copy events at all. A subscription that is not read keeps
//! growing, though, so read it, or drop it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chat_proto::HubEvent;

use crate::blocking::{Blocking, wait_until};
use crate::client_shared::TimedOut;

#[derive(Debug, Default)]
struct State {
    events: VecDeque<HubEvent>,
    waker: Option<Waker>,
    /// Threads blocked in `recv`; only they need the condvar notified.
    blocked: usize,
    /// The server is gone: no event will follow those queued.
    finished: bool,
    /// The subscription was dropped: the driver forgets it.
    dropped: bool,
}

/// One subscription's queue, shared by the driver and the reader.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
    changed: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, mut state: MutexGuard<'_, State>) {
        let waker = state.waker.take();
        let blocked = state.blocked > 0;
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        if blocked {
            self.changed.notify_all();
        }
    }

    /// Queues `event`; returns false if the subscription was dropped.
    pub(crate) fn push(&self, event: HubEvent) -> bool {
        let mut state = self.lock();
        if state.dropped {
            return false;
        }
        state.events.push_back(event);
        self.notify(state);
        true
    }

    /// No event will follow: readers get `None` after those queued.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        self.notify(state);
    }

    #[cfg(test)]
    pub(crate) fn is_dropped(&self) -> bool {
        self.lock().dropped
    }
}

/// A subscription to a server's events, from
/// [`ServerHandle::events`](crate::ServerHandle::events).
///
/// Events come in the hub's order; `None` (or `Ok(None)`) once the server
/// has stopped and every queued event was read. Read it from async code
/// with [`next`](Events::next), or from a thread with
/// [`recv`](Events::recv) and [`recv_timeout`](Events::recv_timeout).
/// Dropping it ends the subscription.
#[derive(Debug)]
pub struct Events {
    queue: Arc<Queue>,
}

impl Events {
    pub(crate) fn new(queue: Arc<Queue>) -> Self {
        Events { queue }
    }

    /// The next event, waiting for it; `None` once the server has stopped.
    pub async fn next(&self) -> Option<HubEvent> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next event if one is queued, else registers `cx` to be woken;
    /// `Ready(None)` once the server has stopped.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<HubEvent>> {
        let mut state = self.queue.lock();
        if let Some(event) = state.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if state.finished {
            return Poll::Ready(None);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The next event if one is queued, without waiting.
    pub fn try_next(&self) -> Option<HubEvent> {
        self.queue.lock().events.pop_front()
    }

    /// The next event, blocking the thread until it comes; `None` once the
    /// server has stopped.
    pub fn recv(&self) -> Option<HubEvent> {
        self.wait(None).unwrap_or(None)
    }

    /// The next event, blocking up to `timeout`; `Ok(None)` once the server
    /// has stopped.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<HubEvent>, TimedOut> {
        self.wait(Some(timeout))
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<Option<HubEvent>, TimedOut> {
        let ready = |state: &mut State| match state.events.pop_front() {
            Some(event) => Some(Some(event)),
            None => state.finished.then_some(None),
        };
        let waited = wait_until(&self.queue.changed, self.queue.lock(), timeout, ready);
        waited.map(|(_, event)| event)
    }
}

impl Blocking for State {
    fn blocked(&mut self) -> &mut usize {
        &mut self.blocked
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.dropped = true;
        state.events = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::{ConnId, Hub, HubCloseReason, ServerConfig};
    use std::time::Instant;

    fn some_conn() -> ConnId {
        let mut hub = Hub::new(ServerConfig::default()).unwrap();
        hub.accept(Instant::now(), None)
    }

    #[test]
    fn a_blocked_reader_wakes_on_events_and_on_finish() {
        let queue = Arc::new(Queue::default());
        let events = Events::new(queue.clone());
        let reader = std::thread::spawn(move || {
            let first = events.recv_timeout(Duration::from_secs(10));
            let second = events.recv_timeout(Duration::MAX);
            (first, second)
        });
        let conn = some_conn();
        let closed = HubEvent::Closed {
            conn,
            reason: HubCloseReason::Bye,
        };
        assert!(queue.push(closed.clone()));
        queue.finish();
        let (first, second) = reader.join().unwrap();
        assert_eq!(first, Ok(Some(closed)));
        assert_eq!(second, Ok(None));
    }

    #[test]
    fn times_out_and_forgets_a_dropped_subscription() {
        let queue = Arc::new(Queue::default());
        let events = Events::new(queue.clone());
        assert_eq!(events.recv_timeout(Duration::from_millis(5)), Err(TimedOut));
        assert_eq!(events.try_next(), None);
        drop(events);
        assert!(queue.is_dropped());
        let conn = some_conn();
        assert!(!queue.push(HubEvent::LoggedIn {
            conn,
            name: "a".into()
        }));
    }
}
