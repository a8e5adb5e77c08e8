//! Reads the server's loop answers on request: a measurement of the
//! server ([`ServerSnapshot`]) and the rooms with their members
//! ([`RoomListing`]), each of one moment, taken by the loop after the
//! request.
//!
//! The counters ([`HubStats`]) are kept by the hub as it works and copied
//! to the [`ServerHandle`](crate::ServerHandle) as a snapshot, so reading
//! them is free. The levels are not kept anywhere: adding up what every
//! connection is owed would cost the fan-out path an addition per
//! delivery. Nor are the rooms' members copied out as they come and go:
//! that would cost every join and part a lock and a copy of a name. So
//! both are read on request instead:
//! [`ServerHandle::measure`](crate::ServerHandle::measure) and
//! [`ServerHandle::rooms`](crate::ServerHandle::rooms) take a ticket and
//! queue a command, the server's loop sees the command and, at the end of
//! its current batch, takes one value for every request of that kind
//! queued in the batch (one walk over the open connections and the rooms
//! for a measurement; over the rooms and their members for a listing) and
//! answers them all. A metrics scraper asks once per scrape; nothing is
//! paid between requests.
//!
//! Waiting works for async tasks (a `Waker` per waiting request) and for
//! blocking threads (a `Condvar`), as [`Events`](crate::Events) does.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chat_proto::{ConnId, Hub, HubStats};

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

/// One room and its members at one moment: what
/// [`ServerHandle::rooms`](crate::ServerHandle::rooms) returns a list of.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomListing {
    /// The room's name, as it was created
    /// ([`Hub::rooms`](chat_proto::Hub::rooms)).
    pub name: String,
    /// Its members, in room order (the order of a `who:` answer), each
    /// with the connection it is
    /// ([`Hub::room_members`](chat_proto::Hub::room_members)). Empty for a
    /// room kept without members (persistent rooms, rooms with history).
    pub members: Vec<(ConnId, String)>,
}

impl RoomListing {
    /// Every room of `hub` with its members, in the hub's order of rooms
    /// (not sorted). Costs a copy of every membership's name.
    pub(crate) fn of(hub: &Hub) -> Vec<RoomListing> {
        hub.rooms()
            .map(|(name, _)| RoomListing {
                name: name.to_owned(),
                members: hub
                    .room_members(name)
                    .into_iter()
                    .flatten()
                    .map(|(conn, member)| (conn, member.to_owned()))
                    .collect(),
            })
            .collect()
    }
}

#[derive(Debug)]
struct State<T> {
    /// Requests made so far; request `n` is answered once `answered >= n`.
    asked: u64,
    answered: u64,
    latest: T,
    /// Async requests waiting for an answer.
    wakers: Vec<Waker>,
    /// Threads blocked in `wait`.
    blocked: usize,
    /// The server stopped: no answer will come.
    finished: bool,
}

impl<T: Default> Default for State<T> {
    fn default() -> Self {
        State {
            asked: 0,
            answered: 0,
            latest: T::default(),
            wakers: Vec::new(),
            blocked: 0,
            finished: false,
        }
    }
}

/// The requests for one kind of read and their answers, shared by the
/// handles and the hub driver.
#[derive(Debug)]
pub(crate) struct Answers<T> {
    state: Mutex<State<T>>,
    answered: Condvar,
}

impl<T: Default> Default for Answers<T> {
    fn default() -> Self {
        Answers {
            state: Mutex::default(),
            answered: Condvar::new(),
        }
    }
}

impl<T: Clone> Answers<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
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

    /// Stores `value` as the answer to every request up to `ticket`, and
    /// wakes who waits for one.
    pub(crate) fn answer(&self, ticket: u64, value: T) {
        let mut state = self.lock();
        state.answered = state.answered.max(ticket);
        state.latest = value;
        self.wake_all(state);
    }

    /// The server stopped: every waiting request gets `None`.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        self.wake_all(state);
    }

    fn wake_all(&self, mut state: MutexGuard<'_, State<T>>) {
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
    pub(crate) fn poll(&self, ticket: u64, cx: &mut Context<'_>) -> Poll<Option<T>> {
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
    pub(crate) fn wait(&self, ticket: u64, timeout: Duration) -> Result<Option<T>, TimedOut> {
        let ready = |state: &mut State<T>| {
            if state.answered >= ticket {
                return Some(Some(state.latest.clone()));
            }
            state.finished.then_some(None)
        };
        wait_until(&self.answered, self.lock(), Some(timeout), ready).map(|(_, answer)| answer)
    }
}

impl<T> Blocking for State<T> {
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

    #[test]
    fn a_request_is_answered_by_a_value_taken_after_it() {
        let answers = Answers::<usize>::default();
        let flag = Arc::new(Flag(Mutex::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let first = answers.ask().unwrap();
        assert_eq!(answers.poll(first, &mut cx), Poll::Pending);
        answers.answer(first, 3);
        assert!(*flag.0.lock().unwrap());
        assert_eq!(answers.poll(first, &mut cx), Poll::Ready(Some(3)));
        // An older answer does not do for a newer request.
        let second = answers.ask().unwrap();
        assert_eq!(answers.poll(second, &mut cx), Poll::Pending);
        answers.answer(second, 4);
        assert_eq!(answers.poll(second, &mut cx), Poll::Ready(Some(4)));
    }

    #[test]
    fn one_answer_serves_every_request_up_to_its_ticket() {
        let answers = Answers::<Vec<u8>>::default();
        let mut cx = Context::from_waker(Waker::noop());
        let (first, second) = (answers.ask().unwrap(), answers.ask().unwrap());
        answers.answer(second, vec![7]);
        assert_eq!(answers.poll(first, &mut cx), Poll::Ready(Some(vec![7])));
        assert_eq!(answers.poll(second, &mut cx), Poll::Ready(Some(vec![7])));
    }

    #[test]
    fn a_blocked_request_wakes_on_an_answer_times_out_and_ends_with_the_server() {
        let answers = Arc::new(Answers::<usize>::default());
        let ticket = answers.ask().unwrap();
        assert_eq!(
            answers.wait(ticket, Duration::from_millis(5)),
            Err(TimedOut)
        );
        let waiter = {
            let answers = answers.clone();
            std::thread::spawn(move || answers.wait(ticket, Duration::from_secs(10)))
        };
        answers.answer(ticket, 1);
        assert_eq!(waiter.join().unwrap(), Ok(Some(1)));

        let ticket = answers.ask().unwrap();
        let waiter = {
            let answers = answers.clone();
            std::thread::spawn(move || answers.wait(ticket, Duration::MAX))
        };
        answers.finish();
        assert_eq!(waiter.join().unwrap(), Ok(None));
        assert_eq!(answers.ask(), None);
    }
}
