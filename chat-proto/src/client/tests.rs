//! Unit tests of the client state machine, with simulated time.

use super::*;
use crate::error::PeerError;
use std::time::Duration;

const S: Duration = Duration::from_secs(1);

fn drain(c: &mut Client) -> (String, Vec<Event>) {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend_from_slice(&b);
    }
    let events = std::iter::from_fn(|| c.poll_event()).collect();
    (String::from_utf8(out).unwrap(), events)
}

fn logged_in(now: Instant) -> Client {
    let mut c = Client::new(ClientConfig::plain(), now).unwrap();
    c.login("zhangsan").unwrap();
    c.handle_input(now, b"ok:zhangsan\n");
    drain(&mut c);
    c
}

#[test]
fn commands_need_the_right_state() {
    let now = Instant::now();
    let mut c = Client::new(ClientConfig::plain(), now).unwrap();
    assert_eq!(c.say("hi"), Err(UsageError::NotLoggedIn));
    assert_eq!(c.who(), Err(UsageError::NotLoggedIn));
    assert!(matches!(c.login("a b"), Err(UsageError::InvalidName(_))));
    c.login("zhangsan").unwrap();
    assert_eq!(c.state(), ClientState::LoggingIn);
    assert_eq!(c.login("x"), Err(UsageError::AlreadyLoggedIn));
    assert_eq!(c.say("hi"), Err(UsageError::NotLoggedIn));
    c.handle_input(now, b"ok:zhangsan\n");
    assert_eq!(c.state(), ClientState::LoggedIn);
    assert!(matches!(c.say("a\nb"), Err(UsageError::InvalidText(_))));
    c.say("hi").unwrap();
    c.who().unwrap();
    let (out, _) = drain(&mut c);
    assert_eq!(out, "iam:zhangsan\nmsg:hi\nwho:\n");
    c.close("done").unwrap();
    assert_eq!(c.state(), ClientState::Closing);
    assert_eq!(c.say("x"), Err(UsageError::Closed));
    assert_eq!(c.close("x"), Err(UsageError::Closed));
    let (out, events) = drain(&mut c);
    assert_eq!(out, "bye:done\n");
    assert_eq!(events, []);
    // Answers to earlier frames still arrive, then the server's bye.
    c.handle_input(now, b"users:zhangsan\nusers:\nbye:done\nmsg:a:late\n");
    let (_, events) = drain(&mut c);
    assert_eq!(
        events,
        [
            Event::Users {
                room: String::new(),
                names: vec!["zhangsan".into()]
            },
            // This server never echoed `msg:hi`: the session says so,
            // before its last event.
            Event::Unconfirmed {
                room: String::new(),
                text: "hi".into()
            },
            Event::Closed {
                reason: CloseReason::Local
            }
        ]
    );
    // The driver is asked to close the socket, within the close linger.
    assert_eq!(c.poll_output(), Some(ClientOutput::Disconnect));
    assert_eq!(c.poll_timeout(), Some(now + S));
    assert!(c.is_closed() && !c.is_finished());
    c.disconnected(now);
    assert_eq!(c.poll_timeout(), None);
    assert!(c.is_finished());
}

#[test]
fn say_refuses_text_whose_relay_would_be_too_long() {
    let now = Instant::now();
    let mut c = logged_in(now);
    // msg:zhangsan:TEXT\n must fit 4096 bytes.
    let fits = "x".repeat(4096 - "msg:zhangsan:\n".len());
    c.say(&fits).unwrap();
    let over = format!("{fits}x");
    assert_eq!(
        c.say(&over),
        Err(UsageError::TooLong {
            len: 4097,
            limit: 4096
        })
    );
}

#[test]
fn refused_login_can_be_retried() {
    let now = Instant::now();
    let mut c = Client::new(ClientConfig::plain(), now).unwrap();
    c.login("lisi").unwrap();
    c.handle_input(now, b"err:name-taken:lisi is taken\n");
    let (_, events) = drain(&mut c);
    assert!(matches!(&events[..], [Event::Error { code, .. }] if *code == ErrorCode::NameTaken));
    assert_eq!(c.state(), ClientState::Connected);
    assert_eq!(c.name(), None);
    c.login("lisi2").unwrap();
}

#[test]
fn users_frames_are_gathered_into_one_event() {
    let now = Instant::now();
    let mut c = logged_in(now);
    c.handle_input(now, b"users:a,b\nusers:c\nusers:\nusers:\n");
    let (_, events) = drain(&mut c);
    assert_eq!(
        events,
        [
            Event::Users {
                room: String::new(),
                names: vec!["a".into(), "b".into(), "c".into()]
            },
            Event::Users {
                room: String::new(),
                names: vec![]
            }
        ]
    );
}

#[test]
fn answers_pings_and_reports_bad_frames() {
    let now = Instant::now();
    let mut c = logged_in(now);
    c.handle_input(now, b"ping:7f\nwhat:ever\nok:again\njoin:lisi\nleft:lisi\n");
    let (out, events) = drain(&mut c);
    assert_eq!(out, "pong:7f\n");
    assert_eq!(
        events,
        [
            Event::BadFrame {
                error: PeerError::UnknownTag { tag: "what".into() }
            },
            Event::BadFrame {
                error: PeerError::Unexpected { tag: "ok" }
            },
            Event::Joined {
                room: String::new(),
                name: "lisi".into()
            },
            Event::Left {
                room: String::new(),
                name: "lisi".into()
            },
        ]
    );
}

#[test]
fn keepalive_pings_a_silent_server_then_gives_up() {
    let t0 = Instant::now();
    let mut c = logged_in(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + 30 * S));
    c.handle_timeout(t0 + 10 * S);
    assert_eq!(drain(&mut c), (String::new(), vec![]));
    c.handle_timeout(t0 + 30 * S);
    assert_eq!(drain(&mut c).0, "ping:1\n");
    assert_eq!(c.poll_timeout(), Some(t0 + 45 * S));
    // An answer keeps it alive.
    c.handle_input(t0 + 31 * S, b"pong:1\n");
    assert_eq!(c.poll_timeout(), Some(t0 + 61 * S));
    c.handle_timeout(t0 + 61 * S);
    assert_eq!(drain(&mut c).0, "ping:2\n");
    c.handle_timeout(t0 + 76 * S);
    let (out, events) = drain(&mut c);
    assert_eq!(out, "");
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::Timeout
        }]
    );
    assert!(c.is_closed());
    // Nothing is emitted after close.
    c.handle_input(t0 + 77 * S, b"msg:a:b\n");
    c.handle_timeout(t0 + 200 * S);
    c.disconnected(t0 + 201 * S);
    assert_eq!(drain(&mut c), (String::new(), vec![]));
}

#[test]
fn a_close_the_server_never_answers_ends_after_the_keepalive_timeout() {
    let t0 = Instant::now();
    let mut c = logged_in(t0);
    c.handle_timeout(t0 + 5 * S);
    c.close("").unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + 20 * S));
    c.handle_timeout(t0 + 19 * S);
    assert!(!c.is_closed());
    c.handle_timeout(t0 + 20 * S);
    assert_eq!(
        drain(&mut c).1,
        [Event::Closed {
            reason: CloseReason::Local
        }]
    );
    // A disconnect while closing is the end of that close, too.
    let mut c = logged_in(t0);
    c.close("").unwrap();
    c.disconnected(t0);
    assert_eq!(
        drain(&mut c).1,
        [Event::Closed {
            reason: CloseReason::Local
        }]
    );
}

#[test]
fn fatal_errors_and_bye_close() {
    let now = Instant::now();
    let mut c = logged_in(now);
    c.handle_input(now, b"err:slow-consumer:read faster\nmsg:a:ignored\n");
    let (_, events) = drain(&mut c);
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        Event::Closed {
            reason: CloseReason::Fatal {
                code: ErrorCode::SlowConsumer
            }
        }
    );
    let mut c = logged_in(now);
    c.handle_input(now, b"bye:server shutting down\n");
    let (_, events) = drain(&mut c);
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::Bye {
                reason: "server shutting down".into()
            }
        }]
    );
    let mut c = logged_in(now);
    c.disconnected(now);
    assert_eq!(
        drain(&mut c).1,
        [Event::Closed {
            reason: CloseReason::Disconnected
        }]
    );
}
