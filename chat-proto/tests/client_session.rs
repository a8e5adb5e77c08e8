//! The client as a session across connections, with simulated time: when it
//! reconnects and when it does not, logging in again, waiting while the
//! server still holds its name, giving up, closing between connections,
//! and bounded listings.

use std::time::{Duration, Instant};

use chat_proto::sim::Network;
use chat_proto::{
    Client, ClientConfig, ClientOutput, ClientState, CloseReason, ErrorCode, Event, PeerError,
    ReconnectPolicy, ServerConfig,
};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn policy(max_attempts: Option<u32>) -> ReconnectPolicy {
    ReconnectPolicy {
        initial: 100 * MS,
        max: S,
        max_attempts,
    }
}

fn reconnecting(max_attempts: Option<u32>) -> ClientConfig {
    let mut config = ClientConfig::plain();
    config.reconnect = Some(policy(max_attempts));
    config.jitter_seed = 7;
    config
}

/// Everything a client asks for until it is quiet.
fn drain(c: &mut Client) -> (String, Vec<Event>, Vec<ClientOutput>) {
    let (mut bytes, mut events, mut commands) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(output) = c.poll_output() {
        match output {
            ClientOutput::Transmit(b) => bytes.extend_from_slice(&b),
            ClientOutput::Event(e) => events.push(e),
            other => commands.push(other),
        }
    }
    (String::from_utf8(bytes).unwrap(), events, commands)
}

fn logged_in(config: ClientConfig, now: Instant) -> Client {
    let mut c = Client::new(config, now).unwrap();
    c.login("phoenix").unwrap();
    c.handle_input(now, b"ok:phoenix\n");
    drain(&mut c);
    c
}

#[test]
fn a_lost_connection_is_reopened_after_the_backoff_and_the_client_logs_in_again() {
    let t0 = Instant::now();
    let mut c = logged_in(reconnecting(None), t0);
    c.disconnected(t0);
    let (_, events, commands) = drain(&mut c);
    assert_eq!(
        events[0],
        Event::Closed {
            reason: CloseReason::Disconnected
        }
    );
    let Event::Reconnecting { attempt, delay } = events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(attempt, 1);
    assert!(delay >= 50 * MS && delay <= 100 * MS, "{delay:?}");
    assert!(commands.is_empty(), "the socket is already gone");
    assert_eq!(c.state(), ClientState::Disconnected);
    assert_eq!(c.say("x"), Err(chat_proto::UsageError::NotConnected));
    // Nothing before the delay; then the driver is asked to connect.
    assert_eq!(c.poll_timeout(), Some(t0 + delay));
    c.handle_timeout(t0 + delay - MS);
    assert!(drain(&mut c).2.is_empty());
    let t1 = t0 + delay;
    c.handle_timeout(t1);
    assert_eq!(drain(&mut c).2, [ClientOutput::Connect]);
    assert_eq!(c.poll_timeout(), None, "waiting for the driver");
    c.connected(t1);
    assert_eq!(drain(&mut c).0, "iam:phoenix\n");
    c.handle_input(t1, b"ok:phoenix\n");
    assert_eq!(
        drain(&mut c).1,
        [Event::LoggedIn {
            name: "phoenix".into()
        }]
    );
    // The backoff starts over after a successful login.
    c.disconnected(t1);
    let (_, events, _) = drain(&mut c);
    assert!(matches!(events[1], Event::Reconnecting { attempt: 1, .. }));
}

#[test]
fn no_reconnect_before_the_first_login_after_a_local_close_or_a_kick() {
    let t0 = Instant::now();
    // Never logged in: nothing to come back to.
    let mut c = Client::new(reconnecting(None), t0).unwrap();
    c.disconnected(t0);
    assert_eq!(
        drain(&mut c).1,
        [Event::Closed {
            reason: CloseReason::Disconnected
        }]
    );
    assert!(c.is_finished());
    // A local close.
    let mut c = logged_in(reconnecting(None), t0);
    c.close("bye").unwrap();
    c.handle_input(t0, b"bye:bye\n");
    let (_, events, commands) = drain(&mut c);
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::Local
        }]
    );
    assert_eq!(commands, [ClientOutput::Disconnect]);
    c.disconnected(t0);
    assert!(c.is_finished());
    // A kick.
    let mut c = logged_in(reconnecting(None), t0);
    c.handle_input(t0, b"err:kicked:flooding\n");
    let (_, events, _) = drain(&mut c);
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            reason: CloseReason::Fatal {
                code: ErrorCode::Kicked
            }
        })
    );
    c.disconnected(t0);
    assert!(drain(&mut c).1.is_empty());
    assert!(c.is_finished());
}

#[test]
fn a_server_shutdown_or_a_dead_server_is_followed_by_a_reconnect() {
    let t0 = Instant::now();
    let mut c = logged_in(reconnecting(None), t0);
    c.handle_input(t0, b"bye:server shutting down\n");
    let (_, events, commands) = drain(&mut c);
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::Bye {
                reason: "server shutting down".into()
            }
        }]
    );
    assert_eq!(commands, [ClientOutput::Disconnect]);
    // The reconnect is scheduled once the socket is closed.
    c.disconnected(t0);
    assert!(matches!(drain(&mut c).1[..], [Event::Reconnecting { .. }]));

    let mut c = logged_in(reconnecting(None), t0);
    c.handle_timeout(t0 + 30 * S);
    c.handle_timeout(t0 + 45 * S);
    let (bytes, events, commands) = drain(&mut c);
    assert_eq!(bytes, "ping:1\n");
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::Timeout
        }]
    );
    assert_eq!(commands, [ClientOutput::Disconnect]);
    // The socket does not close in time: dropped.
    assert_eq!(c.poll_timeout(), Some(t0 + 46 * S));
    c.handle_timeout(t0 + 46 * S);
    assert_eq!(drain(&mut c).2, [ClientOutput::Abort]);
    c.disconnected(t0 + 46 * S);
    assert!(matches!(drain(&mut c).1[..], [Event::Reconnecting { .. }]));
}

#[test]
fn a_name_still_held_by_the_lost_connection_is_tried_again_later() {
    let t0 = Instant::now();
    let mut c = logged_in(reconnecting(None), t0);
    c.disconnected(t0);
    drain(&mut c);
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    drain(&mut c);
    c.connected(at);
    assert_eq!(drain(&mut c).0, "iam:phoenix\n");
    c.handle_input(at, b"err:name-taken:phoenix is taken\n");
    let (_, events, commands) = drain(&mut c);
    // No error for the application: the session deals with it.
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::NameStillHeld
        }]
    );
    assert_eq!(commands, [ClientOutput::Disconnect]);
    c.disconnected(at);
    let (_, events, _) = drain(&mut c);
    assert!(matches!(
        events[..],
        [Event::Reconnecting { attempt: 2, .. }]
    ));
}

#[test]
fn failed_attempts_back_off_and_the_session_gives_up_after_the_last() {
    let t0 = Instant::now();
    let mut c = logged_in(reconnecting(Some(3)), t0);
    c.disconnected(t0);
    drain(&mut c);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..3 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        assert_eq!(drain(&mut c).2, [ClientOutput::Connect]);
        c.connect_failed(now);
        for event in drain(&mut c).1 {
            match event {
                Event::Reconnecting { delay, .. } => delays.push(delay),
                Event::Closed { reason } => {
                    assert_eq!(reason, CloseReason::ReconnectFailed);
                    assert!(c.is_finished());
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(delays.len(), 2);
    assert!(delays[1] >= 100 * MS, "doubling: {delays:?}");
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
    let _ = now;
}

#[test]
fn closing_between_connections_stops_at_once() {
    let t0 = Instant::now();
    let mut c = logged_in(reconnecting(None), t0);
    c.disconnected(t0);
    drain(&mut c);
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    drain(&mut c);
    // The driver is connecting when the application closes.
    c.close("done").unwrap();
    assert_eq!(
        drain(&mut c).1,
        [Event::Closed {
            reason: CloseReason::Local
        }]
    );
    assert!(!c.is_finished(), "a connect is under way");
    c.connected(at);
    assert_eq!(drain(&mut c).2, [ClientOutput::Disconnect]);
    c.disconnected(at);
    assert!(c.is_finished());
}

#[test]
fn a_listing_longer_than_the_bound_is_dropped_and_reported() {
    let t0 = Instant::now();
    let mut config = ClientConfig::plain();
    config.max_listing = 3;
    let mut c = logged_in(config, t0);
    c.handle_input(
        t0,
        b"users:a,b\nusers:c,d\nusers:e\nusers:\nusers:x\nusers:\n",
    );
    assert_eq!(
        drain(&mut c).1,
        [
            Event::BadFrame {
                error: PeerError::TooManyNames { limit: 3 }
            },
            Event::Users {
                room: String::new(),
                names: vec!["x".into()]
            }
        ]
    );
}

/// End to end in the simulated network: a client whose connection drops
/// comes back by itself and chats again.
#[test]
fn a_reconnecting_client_comes_back_in_the_simulated_network() {
    let mut net = Network::new(ServerConfig::default(), Instant::now()).unwrap();
    let a = net.connect(reconnecting(None)).unwrap();
    net.client(a).login("phoenix").unwrap();
    net.run();
    let mut rooms = reconnecting(None);
    rooms.reconnect = None;
    rooms.rooms = true;
    let b = net.connect(rooms).unwrap();
    net.client(b).login("watcher").unwrap();
    net.run();
    let first = net.conn(a);
    net.disconnect(a);
    assert!(!net.is_connected(a));
    net.advance(2 * S);
    assert!(net.is_connected(a));
    assert_ne!(net.conn(a), first);
    assert_eq!(net.hub().name(net.conn(a)), Some("phoenix"));
    net.client(a).say("back").unwrap();
    net.run();
    let events = net.take_events(b);
    assert!(events.iter().any(|e| matches!(e,
        Event::Message { room, from, text, .. }
            if room == "lobby" && from == "phoenix" && text == "back")));
    let events = net.take_events(a);
    let logins = events
        .iter()
        .filter(|e| matches!(e, Event::LoggedIn { .. }))
        .count();
    assert_eq!(logins, 2, "{events:?}");
}

#[test]
fn a_session_logged_in_with_a_secret_sends_it_again_after_a_reconnect() {
    let t0 = Instant::now();
    let mut c = Client::new(reconnecting(None), t0).unwrap();
    assert!(c.login_with_secret("phoenix", "").is_err());
    assert!(c.login_with_secret("phoenix", "two\nlines").is_err());
    c.login_with_secret("phoenix", "s3cret:with colon").unwrap();
    assert_eq!(drain(&mut c).0, "iam:phoenix:s3cret:with colon\n");
    c.handle_input(t0, b"ok:phoenix\n");
    drain(&mut c);
    c.disconnected(t0);
    let (_, events, _) = drain(&mut c);
    let Event::Reconnecting { delay, .. } = events[1] else {
        panic!("{events:?}")
    };
    c.handle_timeout(t0 + delay);
    assert_eq!(drain(&mut c).2, [ClientOutput::Connect]);
    c.connected(t0 + delay);
    assert_eq!(drain(&mut c).0, "iam:phoenix:s3cret:with colon\n");
}

/// The connection is lost at `at`; after the backoff a new one opens.
/// Returns what the client sends on it (its login).
fn reconnect(c: &mut Client, at: Instant) -> String {
    c.disconnected(at);
    let (_, events, _) = drain(c);
    let Some(Event::Reconnecting { delay, .. }) = events.iter().find_map(|e| match e {
        Event::Reconnecting { .. } => Some(e.clone()),
        _ => None,
    }) else {
        panic!("{events:?}")
    };
    c.handle_timeout(at + delay);
    assert_eq!(drain(c).2, [ClientOutput::Connect]);
    c.connected(at + delay);
    drain(c).0
}

/// A session with history, logged in as `ann` in the lobby (epoch `5e`,
/// nothing said yet).
fn in_the_lobby_with_history(t0: Instant) -> Client {
    let mut config = reconnecting(None);
    config.rooms = true;
    let mut c = Client::new(config, t0).unwrap();
    c.login("ann").unwrap();
    drain(&mut c);
    c.handle_input(
        t0,
        b"cap:rooms,history\nok:ann\njoined:lobby:ann\nroom:lobby:5e:0\n",
    );
    drain(&mut c);
    c
}

/// A resume answered (`room:` read) but cut before any of the replay came:
/// the next resume asks from the same place again, not from the new live
/// boundary.
#[test]
fn a_resume_cut_before_its_replay_asks_from_the_same_place_again() {
    let t0 = Instant::now();
    let mut c = in_the_lobby_with_history(t0);
    assert_eq!(
        reconnect(&mut c, t0),
        "cap:rooms,history\nresume:lobby:5e:0\niam:ann\n"
    );
    // The server answers: four messages missed, live from 4; cut before
    // any of them arrives.
    c.handle_input(
        t0,
        b"cap:rooms,history\nok:ann\njoined:lobby:ann\nroom:lobby:5e:4\n",
    );
    drain(&mut c);
    assert_eq!(
        reconnect(&mut c, t0 + S),
        "cap:rooms,history\nresume:lobby:5e:0\niam:ann\n"
    );
}

/// Attempts whose connection is lost before the server answers `cap:` (a
/// network still down, a server still starting) do not make the session
/// forget that it resumes: each later login still asks for each room from
/// the session's place. Otherwise it would log in afresh, and what was
/// said meanwhile beyond history on join would be missed without a gap.
#[test]
fn an_attempt_lost_before_the_server_answered_still_resumes_next_time() {
    let t0 = Instant::now();
    let mut c = in_the_lobby_with_history(t0);
    c.handle_input(t0, b"said:lobby:0:lisi:hi\n");
    drain(&mut c);
    let resume = "cap:rooms,history\nresume:lobby:5e:1\niam:ann\n";
    assert_eq!(reconnect(&mut c, t0), resume);
    // Lost before any answer, twice.
    assert_eq!(reconnect(&mut c, t0 + S), resume);
    assert_eq!(reconnect(&mut c, t0 + 2 * S), resume);
    // A server that answers `cap:` without history is not asked to resume.
    c.handle_input(t0 + 2 * S, b"cap:rooms\nok:ann\njoined:lobby:ann\n");
    drain(&mut c);
    assert_eq!(
        reconnect(&mut c, t0 + 3 * S),
        "cap:rooms,history\niam:ann\n"
    );
}
