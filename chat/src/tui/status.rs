//! The connection state the full-screen client shows in its status bar:
//! connecting, connected as NAME in ROOM, reconnecting in N s (counting
//! down), leaving, closed.
//!
//! Pure state. The session's events move it ([`Event::LoggedIn`],
//! [`Event::Closed`], [`Event::Reconnecting`]); before the first login, the
//! I/O loop tells it about its own attempts to connect. Time is given, not
//! read, so the countdown is tested without waiting, and
//! [`Status::next_change`] says when the text will change, so the loop
//! wakes once a second while counting down and not at all otherwise.

use std::time::{Duration, Instant};

use chat_proto::Event;

use crate::commands::describe;

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    /// Opening the first connection and logging in; `attempt` counts from 1.
    Connecting { attempt: u32 },
    /// The first connection failed; the next attempt is at `until`.
    Waiting { attempt: u32, until: Instant },
    /// Logged in.
    Connected { name: String },
    /// The connection was lost; the session opens another at `until`.
    Reconnecting { attempt: u32, until: Instant },
    /// Saying bye.
    Leaving,
    /// Over, for the reason given.
    Closed { why: String },
}

/// The connection state, and the address it is about.
#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) addr: String,
    pub(crate) link: Link,
}

/// Whole seconds left until `until`, rounded up: what a countdown shows.
fn seconds_left(now: Instant, until: Instant) -> u64 {
    let left = until.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

impl Status {
    /// A status for a client about to connect to `addr`.
    pub(crate) fn new(addr: &str) -> Status {
        Status {
            addr: addr.to_owned(),
            link: Link::Connecting { attempt: 1 },
        }
    }

    /// Whether the session is logged in.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.link, Link::Connected { .. })
    }

    /// Moves with the session's events; `now` dates a reconnect.
    pub(crate) fn update(&mut self, event: &Event, now: Instant) {
        match event {
            Event::LoggedIn { name } if self.link != Link::Leaving => {
                self.link = Link::Connected { name: name.clone() };
            }
            Event::Closed { reason } if self.link != Link::Leaving => {
                self.link = Link::Closed {
                    why: describe(reason),
                };
            }
            Event::Reconnecting { attempt, delay } if self.link != Link::Leaving => {
                self.link = Link::Reconnecting {
                    attempt: *attempt,
                    until: chat_proto::after(now, *delay),
                };
            }
            _ => {}
        }
    }

    /// When the status text changes by itself next (a countdown's next
    /// second), if it does.
    pub(crate) fn next_change(&self, now: Instant) -> Option<Instant> {
        let until = match &self.link {
            Link::Waiting { until, .. } | Link::Reconnecting { until, .. } => *until,
            _ => return None,
        };
        let left = seconds_left(now, until);
        (left > 0).then(|| until - Duration::from_secs(left - 1))
    }

    /// The status for a person; `room` is where typed lines go.
    pub(crate) fn describe(&self, now: Instant, room: &str) -> String {
        let addr = &self.addr;
        match &self.link {
            Link::Connecting { attempt: 1 } => format!("connecting to {addr}…"),
            Link::Connecting { attempt } => {
                format!("connecting to {addr}… (attempt {attempt})")
            }
            Link::Waiting { attempt, until } => match seconds_left(now, *until) {
                0 => format!("could not connect to {addr}; trying again (attempt {attempt})"),
                s => format!(
                    "could not connect to {addr}; trying again in {s} s (attempt {attempt})"
                ),
            },
            Link::Connected { name } => format!("connected as {name} in {room}"),
            Link::Reconnecting { attempt, until } => match seconds_left(now, *until) {
                0 => format!("reconnecting… (attempt {attempt})"),
                s => format!("reconnecting in {s} s (attempt {attempt})"),
            },
            Link::Leaving => "leaving…".into(),
            Link::Closed { why } => format!("closed: {why}; /quit leaves"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::CloseReason;

    #[test]
    fn follows_logins_losses_and_reconnects() {
        let now = Instant::now();
        let mut s = Status::new("127.0.0.1:7878");
        assert_eq!(s.describe(now, "lobby"), "connecting to 127.0.0.1:7878…");
        s.update(
            &Event::LoggedIn {
                name: "张三".into(),
            },
            now,
        );
        assert!(s.is_connected());
        assert_eq!(s.describe(now, "lobby"), "connected as 张三 in lobby");
        s.update(
            &Event::Closed {
                reason: CloseReason::Disconnected,
            },
            now,
        );
        assert!(!s.is_connected());
        assert_eq!(
            s.describe(now, "lobby"),
            "closed: the connection was lost; /quit leaves"
        );
        s.update(
            &Event::Reconnecting {
                attempt: 2,
                delay: Duration::from_millis(2500),
            },
            now,
        );
        assert_eq!(s.describe(now, "lobby"), "reconnecting in 3 s (attempt 2)");
        s.update(
            &Event::LoggedIn {
                name: "张三".into(),
            },
            now,
        );
        assert!(s.is_connected());
    }

    #[test]
    fn counts_down_and_says_when_to_look_again() {
        let now = Instant::now();
        let mut s = Status::new("a");
        assert_eq!(s.next_change(now), None);
        s.update(
            &Event::Reconnecting {
                attempt: 1,
                delay: Duration::from_millis(2500),
            },
            now,
        );
        let until = now + Duration::from_millis(2500);
        // 3 s shown until 2 s are left, and so on down to the attempt.
        let next = s.next_change(now).unwrap();
        assert_eq!(next, now + Duration::from_millis(500));
        assert_eq!(s.describe(next, ""), "reconnecting in 2 s (attempt 1)");
        assert_eq!(
            s.describe(next - Duration::from_millis(1), ""),
            "reconnecting in 3 s (attempt 1)"
        );
        let next = s.next_change(next).unwrap();
        assert_eq!(next, until - Duration::from_secs(1));
        let next = s.next_change(next).unwrap();
        assert_eq!(next, until);
        assert_eq!(s.describe(until, ""), "reconnecting… (attempt 1)");
        assert_eq!(s.next_change(until), None);
    }

    #[test]
    fn leaving_is_not_undone_by_late_events() {
        let now = Instant::now();
        let mut s = Status::new("a");
        s.link = Link::Leaving;
        s.update(&Event::LoggedIn { name: "x".into() }, now);
        s.update(
            &Event::Closed {
                reason: CloseReason::Local,
            },
            now,
        );
        assert_eq!(s.describe(now, ""), "leaving…");
    }

    #[test]
    fn the_first_connection_retries_on_its_own_clock() {
        let now = Instant::now();
        let mut s = Status::new("h:1");
        s.link = Link::Waiting {
            attempt: 1,
            until: now + Duration::from_secs(1),
        };
        assert_eq!(
            s.describe(now, ""),
            "could not connect to h:1; trying again in 1 s (attempt 1)"
        );
        assert_eq!(s.next_change(now), Some(now + Duration::from_secs(1)));
        s.link = Link::Connecting { attempt: 2 };
        assert_eq!(s.describe(now, ""), "connecting to h:1… (attempt 2)");
    }
}
