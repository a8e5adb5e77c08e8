//! The client's decisions around a lost connection, shared by the async I/O
//! task and the blocking I/O thread.
//!
//! The core's [`Backoff`] says how long to wait; [`Reconnector`] says
//! whether to reconnect at all (not after a local close, not before the
//! first login, not once the application gave up), resets the backoff once a
//! new login succeeds, and notices when the server still holds our name from
//! the lost session (then the connection is dropped and retried later).
//! [`login_outcome`] reads the events of a first login.

use std::net::SocketAddr;
use std::time::Duration;

use chat_proto::{Backoff, CloseReason, Event, ReconnectPolicy};

use crate::client_shared::ClientShared;
use crate::options::ConnectError;

/// Reconnection state of one client.
#[derive(Debug)]
pub struct Reconnector {
    backoff: Option<Backoff>,
    logins_seen: u64,
}

impl Reconnector {
    /// Reconnects per `policy` (never if `None`), with jitter from `seed`.
    pub fn new(policy: Option<ReconnectPolicy>, seed: u64) -> Self {
        Reconnector {
            backoff: policy.map(|p| Backoff::new(p, seed)),
            logins_seen: 0,
        }
    }

    /// A seed for the jitter that differs between clients and runs.
    pub fn seed(addr: SocketAddr) -> u64 {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one((addr, std::time::Instant::now()))
    }

    /// The connection ended: how long to wait before reconnecting, or `None`
    /// to stop for good.
    pub fn after_close(&mut self, shared: &ClientShared) -> Option<Duration> {
        let local = matches!(shared.close_reason(), Some(CloseReason::Local));
        if local || shared.is_stopped() || shared.name().is_none() {
            return None;
        }
        self.backoff.as_mut()?.next_delay()
    }

    /// Input was handled: a new login resets the backoff.
    pub fn after_input(&mut self, shared: &ClientShared) {
        let logins = shared.logins();
        if logins > self.logins_seen {
            self.logins_seen = logins;
            if let Some(backoff) = &mut self.backoff {
                backoff.reset();
            }
        }
    }

    /// Whether a login after reconnecting was refused because the server
    /// still holds the name: drop this connection and try again later.
    pub fn name_still_held(&self, shared: &ClientShared) -> bool {
        self.logins_seen > 0 && shared.name_refused()
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
