//! Blocking a thread until shared state is ready, with a timeout: the one
//! loop behind every blocking read of this crate (a client's events, a
//! server's events, a measurement).
//!
//! The state lives in a `Mutex` beside a `Condvar`. It counts the threads
//! blocked on it, so that whoever changes it notifies the condvar only
//! when someone waits (async readers are woken through their wakers
//! instead).

use std::sync::{Condvar, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::client_shared::TimedOut;

/// State a thread may block on.
pub(crate) trait Blocking {
    /// How many threads are blocked on it now.
    fn blocked(&mut self) -> &mut usize;
}

/// Waits on `changed` until `ready` gives a value, or `timeout` passes
/// (`None`, or a timeout too long to be an instant, waits forever). Gives
/// the value with the state still locked.
pub(crate) fn wait_until<'a, S: Blocking, T>(
    changed: &Condvar,
    mut state: MutexGuard<'a, S>,
    timeout: Option<Duration>,
    mut ready: impl FnMut(&mut S) -> Option<T>,
) -> Result<(MutexGuard<'a, S>, T), TimedOut> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        if let Some(value) = ready(&mut state) {
            return Ok((state, value));
        }
        *state.blocked() += 1;
        state = match deadline {
            None => changed.wait(state).unwrap_or_else(PoisonError::into_inner),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    *state.blocked() -= 1;
                    return Err(TimedOut);
                }
                changed
                    .wait_timeout(state, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
        *state.blocked() -= 1;
    }
}
