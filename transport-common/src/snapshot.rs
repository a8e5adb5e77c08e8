//! A measurement of a running server, taken by its own loop when asked:
//! the hub's counters and the levels that cost a walk over the
//! connections to add up (bytes owed to clients, room backlogs).
//!
//! The counters ([`HubStats`]) are kept by the hub as it works and copied
//! to the [`ServerHandle`](crate::ServerHandle) as a snapshot, so reading
//! them is free. The levels are not kept anywhere: adding up what every
//! connection is owed would cost the fan-out path an addition per
//! delivery. So they are measured on request instead:
//! [`ServerHandle::measure`](crate::ServerHandle::measure) queues a
//! command, the server's loop answers it at the end of its current batch
//! (one walk over the open connections and the rooms, for every request
//! queued in that batch), and the caller gets a [`ServerSnapshot`] in
//! which the counters and the levels are of the same moment. A metrics
//! scraper asks once per scrape; nothing is paid between scrapes.
//!
//! Waiting works for async tasks (a `Waker` per waiting request) and for
//! blocking threads (a `Condvar`), as [`Events`](crate::Events) does.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chat_proto::HubStats;

use crate::blocking::{Blocking, wait_until};
use crate::client_shared::TimedOut;

/// A server's state at one moment, measured by its loop: what
/// [`ServerHandle::measure`](crate::ServerHandle::measure) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSnapshot {
    /// The hub's counters, from its creation on.
    pub stats: HubStats,
    /// Connections accepted and not yet ended by the hub
    /// ([`Hub::connections`](chat_proto::Hub::connections)).
    pub connections: usize,
    /// Sockets held, closing ones still flushing included
    /// ([`Hub::sockets`](chat_proto::Hub::sockets)).
    pub sockets: usize,
    /// Logged-in connections ([`Hub::members`](chat_proto::Hub::members)).
    pub members: usize,
    /// Rooms that exist.
    pub rooms: usize,
    /// Bytes owed to connections privately or handed to their writers and
    /// not yet written, over all open connections (the sum of
    /// [`Hub::unflushed`](chat_proto::Hub::unflushed)).
    pub unflushed_bytes: u64,
    /// Bytes the rooms hold for their slowest members, over all rooms (the
    /// sum of [`Hub::room_backlog`](chat_proto::Hub::room_backlog)). A
    /// room's message is held once for all its members.
    pub room_backlog_bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Requests made so far; request `n` is answered once `answered >= n`.
    asked: u64,
    answered: u64,
    latest: ServerSnapshot,
    /// Async requests waiting for an answer.
    wakers: Vec<Waker>,
    /// Threads blocked in `wait`.
    blocked: usize,
    /// The server stopped: no answer will come.
    finished: bool,
}

/// The requests for a measurement and their answers, shared by the handles
/// and the hub driver.
#[derive(Debug, Default)]
pub(crate) struct Measurements {
    state: Mutex<State>,
    answered: Condvar,
}

impl Measurements {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new request's ticket, or `None` if the server has stopped.
    pub(crate) fn ask(&self) -> Option<u64> {
        let mut state = self.lock();
        if state.finished {
            return None;
        }
        state.asked += 1;
        Some(state.asked)
    }

    /// Stores a measurement answering every request up to `ticket`, and
    /// wakes who waits for one.
    pub(crate) fn answer(&self, ticket: u64, snapshot: ServerSnapshot) {
        let mut state = self.lock();
        state.answered = state.answered.max(ticket);
        state.latest = snapshot;
        self.wake_all(state);
    }

    /// The server stopped: every waiting request gets `None`.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        self.wake_all(state);
    }

    fn wake_all(&self, mut state: MutexGuard<'_, State>) {
        let wakers = std::mem::take(&mut state.wakers);
        let blocked = state.blocked > 0;
        drop(state);
        for waker in wakers {
            waker.wake();
        }
        if blocked {
            self.answered.notify_all();
        }
    }

    /// The answer to `ticket` if it has come, `Ready(None)` if it never
    /// will; else registers `cx` to be woken.
    pub(crate) fn poll(&self, ticket: u64, cx: &mut Context<'_>) -> Poll<Option<ServerSnapshot>> {
        let mut state = self.lock();
        if state.answered >= ticket {
            return Poll::Ready(Some(state.latest.clone()));
        }
        if state.finished {
            return Poll::Ready(None);
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The answer to `ticket`, blocking up to `timeout`; `Ok(None)` if the
    /// server stopped first.
    pub(crate) fn wait(
        &self,
        ticket: u64,
        timeout: Duration,
    ) -> Result<Option<ServerSnapshot>, TimedOut> {
        let ready = |state: &mut State| {
            if state.answered >= ticket {
                return Some(Some(state.latest.clone()));
            }
            state.finished.then_some(None)
        };
        wait_until(&self.answered, self.lock(), Some(timeout), ready).map(|(_, answer)| answer)
    }
}

impl Blocking for State {
    fn blocked(&mut self) -> &mut usize {
        &mut self.blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(Mutex<bool>);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            *self.0.lock().unwrap() = true;
        }
    }

    fn snapshot(connections: usize) -> ServerSnapshot {
        ServerSnapshot {
            connections,
            ..ServerSnapshot::default()
        }
    }

    #[test]
    fn a_request_is_answered_by_a_measurement_taken_after_it() {
        let m = Measurements::default();
        let flag = Arc::new(Flag(Mutex::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let first = m.ask().unwrap();
        assert_eq!(m.poll(first, &mut cx), Poll::Pending);
        m.answer(first, snapshot(3));
        assert!(*flag.0.lock().unwrap());
        assert_eq!(m.poll(first, &mut cx), Poll::Ready(Some(snapshot(3))));
        // An older answer does not do for a newer request.
        let second = m.ask().unwrap();
        assert_eq!(m.poll(second, &mut cx), Poll::Pending);
        m.answer(second, snapshot(4));
        assert_eq!(m.poll(second, &mut cx), Poll::Ready(Some(snapshot(4))));
    }

    #[test]
    fn a_blocked_request_wakes_on_an_answer_times_out_and_ends_with_the_server() {
        let m = Arc::new(Measurements::default());
        let ticket = m.ask().unwrap();
        assert_eq!(m.wait(ticket, Duration::from_millis(5)), Err(TimedOut));
        let waiter = {
            let m = m.clone();
            std::thread::spawn(move || m.wait(ticket, Duration::from_secs(10)))
        };
        m.answer(ticket, snapshot(1));
        assert_eq!(waiter.join().unwrap(), Ok(Some(snapshot(1))));

        let ticket = m.ask().unwrap();
        let waiter = {
            let m = m.clone();
            std::thread::spawn(move || m.wait(ticket, Duration::MAX))
        };
        m.finish();
        assert_eq!(waiter.join().unwrap(), Ok(None));
        assert_eq!(m.ask(), None);
    }
}
