//! A bound on TLS handshakes in progress, for every server loop.
//!
//! A TLS connection is handed to the hub as soon as it is accepted, so the
//! hub's login timeout covers its handshake too: a peer that never finishes
//! one is closed like a peer that never logs in. What that does not bound
//! is how many such peers are mid-handshake at once, each holding a socket
//! and a TLS session's buffers. A [`HandshakeGate`] does: a server takes a
//! [`HandshakeSlot`] before it accepts a TLS connection, and the slot is
//! given back when the handshake ends (done, failed, or the connection
//! dropped). With every slot taken the server stops accepting on its TLS
//! listeners, as it does when it runs out of file descriptors: new
//! connections wait in the kernel's backlog, plain listeners and
//! established connections are served as usual.
//!
//! The gate works for both kinds of loop: an async one polls
//! ([`HandshakeGate::poll_enter`], woken when a slot is given back), a
//! blocking acceptor thread waits ([`HandshakeGate::enter_blocking`]).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// How many TLS handshakes may be in progress at once.
#[derive(Clone)]
pub struct HandshakeGate {
    inner: Arc<Gate>,
}

struct Gate {
    limit: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    in_progress: usize,
    /// The async loop waiting for a slot.
    waker: Option<Waker>,
    /// No more slots are handed out: blocked waiters return.
    closed: bool,
}

impl fmt::Debug for HandshakeGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeGate")
            .field("limit", &self.inner.limit)
            .field("in_progress", &self.in_progress())
            .finish()
    }
}

impl HandshakeGate {
    /// A gate letting `limit` handshakes through at once (at least one).
    pub fn new(limit: usize) -> HandshakeGate {
        HandshakeGate {
            inner: Arc::new(Gate {
                limit: limit.max(1),
                state: Mutex::new(State::default()),
                freed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Handshakes in progress: slots taken and not yet given back.
    pub fn in_progress(&self) -> usize {
        self.lock().in_progress
    }

    /// A slot if one is free.
    pub fn try_enter(&self) -> Option<HandshakeSlot> {
        let mut state = self.lock();
        self.take(&mut state)
    }

    fn take(&self, state: &mut State) -> Option<HandshakeSlot> {
        if state.closed || state.in_progress >= self.inner.limit {
            return None;
        }
        state.in_progress += 1;
        Some(HandshakeSlot {
            gate: self.inner.clone(),
        })
    }

    /// A slot, or `Pending` until one is given back (the task is woken
    /// then). One task at a time may wait: the server loop.
    pub fn poll_enter(&self, cx: &mut Context<'_>) -> Poll<HandshakeSlot> {
        let mut state = self.lock();
        match self.take(&mut state) {
            Some(slot) => Poll::Ready(slot),
            None => {
                if state
                    .waker
                    .as_ref()
                    .is_none_or(|w| !w.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// A slot, waiting as long as it takes; `None` once the gate is closed.
    pub fn enter_blocking(&self) -> Option<HandshakeSlot> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(slot) = self.take(&mut state) {
                return Some(slot);
            }
            state = self
                .inner
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Hands out no more slots and releases whoever waits for one (the
    /// server is stopping).
    pub fn close(&self) {
        let waker = {
            let mut state = self.lock();
            state.closed = true;
            state.waker.take()
        };
        self.inner.freed.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// One handshake's place at the gate, given back when dropped.
pub struct HandshakeSlot {
    gate: Arc<Gate>,
}

impl fmt::Debug for HandshakeSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeSlot").finish_non_exhaustive()
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let waker = {
            let mut state = self
                .gate
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.in_progress -= 1;
            state.waker.take()
        };
        self.gate.freed.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slots_are_bounded_and_given_back_on_drop() {
        let gate = HandshakeGate::new(2);
        let a = gate.try_enter().expect("first");
        let b = gate.try_enter().expect("second");
        assert!(gate.try_enter().is_none());
        assert_eq!(gate.in_progress(), 2);
        drop(a);
        assert_eq!(gate.in_progress(), 1);
        let c = gate.try_enter().expect("a slot came back");
        drop((b, c));
        assert_eq!(gate.in_progress(), 0);
        assert_eq!(HandshakeGate::new(0).limit(), 1);
    }

    #[test]
    fn a_waiting_task_is_woken_when_a_slot_comes_back() {
        let gate = HandshakeGate::new(1);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(slot) = gate.poll_enter(&mut cx) else {
            panic!("a free slot")
        };
        assert!(gate.poll_enter(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        drop(slot);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(gate.poll_enter(&mut cx).is_ready());
    }

    #[test]
    fn a_blocked_thread_gets_the_slot_given_back_or_leaves_on_close() {
        let gate = HandshakeGate::new(1);
        let held = gate.try_enter().unwrap();
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.enter_blocking().is_some())
        };
        drop(held);
        assert!(waiter.join().unwrap());
        // The waiter's slot went back when it was dropped.
        assert_eq!(gate.in_progress(), 0);
        let gate2 = HandshakeGate::new(1);
        let _held = gate2.try_enter().unwrap();
        let waiter = {
            let gate2 = gate2.clone();
            std::thread::spawn(move || gate2.enter_blocking().is_some())
        };
        gate2.close();
        assert!(!waiter.join().unwrap());
    }
}
