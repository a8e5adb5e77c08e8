//! History and resume with simulated time: history on join, resume after a
//! reconnect (every message once, in order, wherever the connection is cut),
//! gaps reported with what is missing, limits, durable history across a
//! restart.

use std::time::{Duration, Instant};

use chat_proto::sim::{Direction, Network, PeerId};
use chat_proto::{ClientConfig, Event, ReconnectPolicy, ServerConfig};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// A client with rooms and history that reconnects by itself.
fn resuming() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.reconnect = Some(ReconnectPolicy {
        initial: 100 * MS,
        max: S,
        max_attempts: None,
    });
    config.jitter_seed = 3;
    config
}

fn unlimited() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config
}

fn net(config: ServerConfig) -> Network {
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.record();
    net
}

fn login(net: &mut Network, config: ClientConfig, name: &str) -> PeerId {
    let peer = net.connect(config).unwrap();
    net.client(peer).login(name).unwrap();
    net.run();
    peer
}

/// A plain (seed) client that speaks in the default room.
fn speaker(net: &mut Network) -> PeerId {
    login(net, ClientConfig::plain(), "speaker")
}

fn say(net: &mut Network, from: PeerId, texts: std::ops::Range<u32>) {
    for i in texts {
        net.client(from).say(&format!("m{i}")).unwrap();
        net.run();
    }
}

/// The messages among `events` in `room`: (offset, text).
fn messages(events: &[Event], in_room: &str) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                room, offset, text, ..
            } if room == in_room => Some((offset.expect("room form"), text.clone())),
            _ => None,
        })
        .collect()
}

fn expected(range: std::ops::Range<u32>) -> Vec<(u64, String)> {
    range.map(|i| (u64::from(i), format!("m{i}"))).collect()
}

#[test]
fn history_on_join_comes_before_the_live_boundary_and_plain_clients_see_none() {
    let mut net = net(unlimited());
    let s = speaker(&mut net);
    say(&mut net, s, 0..30);
    let a = login(&mut net, ClientConfig::default(), "ann");
    let text = net.received(a);
    let epoch = format!("{:x}", {
        let line = text.lines().find(|l| l.starts_with("room:lobby:")).unwrap();
        u64::from_str_radix(line.split(':').nth(2).unwrap(), 16).unwrap()
    });
    let mut want = format!("cap:rooms,history\nok:ann\njoined:lobby:ann\nroom:lobby:{epoch}:30\n");
    for i in 10..30 {
        want.push_str(&format!("said:lobby:{i}:speaker:m{i}\n"));
    }
    assert_eq!(text, want);
    assert_eq!(messages(&net.take_events(a), "lobby"), expected(10..30));
    // A client of the seed's protocol sees the seed's frames only.
    let p = login(&mut net, ClientConfig::plain(), "plain");
    assert_eq!(net.received(p), "ok:plain\n");
    // Rooms without history: no replay.
    let mut rooms_only = ClientConfig::default();
    rooms_only.rooms = true;
    let r = net.connect(rooms_only).unwrap();
    net.send_raw(r, b"cap:rooms\niam:rooms_only\n");
    assert_eq!(
        net.received(r),
        format!("cap:rooms\nok:rooms_only\njoined:lobby:rooms_only\nroom:lobby:{epoch}:30\n")
    );
}

#[test]
fn a_client_that_reconnects_gets_every_message_once_in_order_in_every_room() {
    let mut net = net(unlimited());
    let s = speaker(&mut net);
    let b = login(&mut net, ClientConfig::default(), "bob");
    net.client(b).join("rust").unwrap();
    let a = login(&mut net, resuming(), "ann");
    net.client(a).join("rust").unwrap();
    net.run();
    for i in 0..10 {
        net.client(s).say(&format!("m{i}")).unwrap();
        net.client(b).say_in("rust", &format!("m{i}")).unwrap();
        net.run();
    }
    net.disconnect(a);
    for i in 10..25 {
        net.client(s).say(&format!("m{i}")).unwrap();
        net.client(b).say_in("rust", &format!("m{i}")).unwrap();
        net.run();
    }
    net.advance(2 * S);
    assert!(net.is_connected(a));
    for i in 25..30 {
        net.client(s).say(&format!("m{i}")).unwrap();
        net.client(b).say_in("rust", &format!("m{i}")).unwrap();
        net.run();
    }
    let events = net.take_events(a);
    assert_eq!(messages(&events, "lobby"), expected(0..30));
    assert_eq!(messages(&events, "rust"), expected(0..30));
    assert!(!events.iter().any(|e| matches!(e, Event::Gap { .. })));
    assert_eq!(net.hub().stats().resumes, 2);
    // The resumes went before the login, in one round trip.
    let sent: Vec<u8> = net
        .transcript()
        .iter()
        .filter(|w| w.peer == a && w.direction == Direction::ToServer)
        .flat_map(|w| w.bytes.to_vec())
        .collect();
    let sent = String::from_utf8(sent).unwrap();
    let relogin = &sent[sent.rfind("cap:").unwrap()..];
    assert!(
        relogin.starts_with("cap:rooms,history\nresume:lobby:"),
        "{relogin}"
    );
    assert!(relogin.contains("\nresume:rust:"), "{relogin}");
    assert!(!relogin.contains("join:"), "{relogin}");
}

/// A speaker and "ann" (resuming) on sockets of `buffer` bytes: `before`
/// messages said and seen, then ann cut off while `away` more are said,
/// and set to read at 20 bytes a second. Returns the network, the speaker,
/// ann and what ann saw.
fn cut_off_while_said(
    buffer: usize,
    before: u32,
    away: u32,
) -> (Network, PeerId, PeerId, Vec<Event>) {
    let mut net = net(unlimited());
    net.set_socket_buffer(buffer);
    let s = speaker(&mut net);
    let a = login(&mut net, resuming(), "ann");
    say(&mut net, s, 0..before);
    let seen = net.take_events(a);
    net.disconnect(a);
    say(&mut net, s, before..before + away);
    net.set_read_rate(a, Some(20));
    (net, s, a, seen)
}

/// Cut the connection after the client has taken `cut` messages of the
/// replay, for every `cut`; the replay trickles in through a slow socket.
#[test]
fn a_connection_cut_anywhere_in_the_resume_still_ends_with_every_message_once() {
    const BEFORE: u32 = 5;
    const AWAY: u32 = 12;
    const AFTER: u32 = 3;
    for cut in 0..=AWAY {
        let (mut net, s, a, mut seen) = cut_off_while_said(32, BEFORE, AWAY);
        let mut replayed = 0;
        let mut steps = 0;
        while replayed < cut as usize || !net.is_connected(a) {
            steps += 1;
            assert!(steps < 10_000, "cut {cut}: no progress");
            net.advance(10 * MS);
            let events = net.take_events(a);
            replayed += messages(&events, "lobby").len();
            seen.extend(events);
        }
        net.disconnect(a);
        net.set_read_rate(a, None);
        net.advance(3 * S);
        assert!(net.is_connected(a), "cut {cut}");
        say(&mut net, s, BEFORE + AWAY..BEFORE + AWAY + AFTER);
        seen.extend(net.take_events(a));
        assert_eq!(
            messages(&seen, "lobby"),
            expected(0..BEFORE + AWAY + AFTER),
            "cut after {cut} replayed messages"
        );
    }
}

#[test]
fn a_gap_says_how_much_is_missing_and_what_is_kept_follows() {
    let mut config = unlimited();
    config.history.messages = 10;
    let mut net = net(config);
    let s = speaker(&mut net);
    let a = login(&mut net, resuming(), "ann");
    say(&mut net, s, 0..3);
    net.take_events(a);
    net.disconnect(a);
    say(&mut net, s, 3..53);
    net.advance(2 * S);
    let events = net.take_events(a);
    let gap = events
        .iter()
        .position(|e| matches!(e, Event::Gap { .. }))
        .expect("a gap");
    assert_eq!(
        events[gap],
        Event::Gap {
            room: "lobby".into(),
            missing: Some(40)
        }
    );
    assert_eq!(messages(&events[gap..], "lobby"), expected(43..53));
    assert!(
        net.received(a)
            .contains("err:history-gap:lobby:40:messages 3 to 42 are no longer kept\n")
    );
    assert_eq!(net.hub().stats().history_gaps, 1);
}

#[test]
fn a_resume_replays_at_most_max_replay() {
    let mut config = unlimited();
    config.history.max_replay = 5;
    let mut net = net(config);
    let s = speaker(&mut net);
    let a = login(&mut net, resuming(), "ann");
    net.disconnect(a);
    say(&mut net, s, 0..20);
    net.advance(2 * S);
    let events = net.take_events(a);
    assert!(events.contains(&Event::Gap {
        room: "lobby".into(),
        missing: Some(15)
    }));
    assert_eq!(messages(&events, "lobby"), expected(15..20));
}

#[test]
fn a_new_log_after_a_restart_without_a_store_is_reported_as_an_unknown_gap() {
    let mut net = net(unlimited());
    let s = speaker(&mut net);
    let a = login(&mut net, resuming(), "ann");
    say(&mut net, s, 0..5);
    net.take_events(a);
    let mut config = unlimited();
    config.seed = 99;
    net.restart_hub(config).unwrap();
    net.advance(2 * S);
    assert!(net.is_connected(a));
    let events = net.take_events(a);
    assert!(
        events.contains(&Event::Gap {
            room: "lobby".into(),
            missing: None
        }),
        "{events:?}"
    );
}

#[test]
fn durable_history_hands_out_only_what_is_stored_and_survives_a_restart() {
    let mut config = unlimited();
    config.history.durable = true;
    let mut net = net(config.clone());
    let s = login(&mut net, resuming(), "speaker");
    let a = login(&mut net, resuming(), "ann");
    for i in 0..10 {
        net.client(s).say(&format!("m{i}")).unwrap();
        net.run();
    }
    assert_eq!(messages(&net.take_events(a), "lobby"), expected(0..10));
    assert_eq!(messages(&net.take_events(s), "lobby"), expected(0..10));
    // Not stored yet: nobody is handed it, the sender neither.
    net.set_auto_store(false);
    net.client(s).say("m10").unwrap();
    net.run();
    assert!(messages(&net.take_events(a), "lobby").is_empty());
    assert!(messages(&net.take_events(s), "lobby").is_empty());
    net.commit_store();
    assert_eq!(messages(&net.take_events(a), "lobby"), expected(10..11));
    assert_eq!(messages(&net.take_events(s), "lobby"), expected(10..11));
    // A crash loses what was not stored, which nobody saw; the sender's
    // session, which never saw it echoed, sends it again once it has
    // resumed.
    net.client(s).say("again").unwrap();
    net.run();
    net.set_auto_store(true);
    config.seed = 99;
    net.restart_hub(config).unwrap();
    net.advance(2 * S);
    assert!(net.is_connected(a) && net.is_connected(s));
    net.client(s).say("m12").unwrap();
    net.run();
    let events = net.take_events(a);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Gap { .. })),
        "{events:?}"
    );
    assert_eq!(
        messages(&events, "lobby"),
        [(11, "again".to_string()), (12, "m12".to_string())]
    );
    let said: Vec<Event> = net.take_events(s);
    assert!(!said.iter().any(|e| matches!(e, Event::Unconfirmed { .. })));
    assert_eq!(messages(&said, "lobby").len(), 2, "{said:?}");
    let lobby = net.hub().rooms().find(|(r, _)| *r == "lobby").unwrap();
    assert_eq!(lobby.1, 2);
}

#[test]
fn resume_needs_the_history_capability_and_a_room_not_joined_yet() {
    let mut net = net(unlimited());
    let s = speaker(&mut net);
    say(&mut net, s, 0..3);
    let raw = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(raw, b"resume:lobby:0:0\ncap:rooms\nresume:lobby:0:0\n");
    assert_eq!(
        net.received(raw),
        "err:bad-frame:resume: needs the history capability (send cap:rooms,history first)\n\
         cap:rooms\n\
         err:bad-frame:resume: needs the history capability (send cap:rooms,history first)\n"
    );
    let a = login(&mut net, ClientConfig::default(), "ann");
    let epoch = net.hub().rooms().count();
    assert_eq!(epoch, 1);
    net.send_raw(a, b"resume:lobby:0:0\n");
    assert!(
        net.received(a)
            .ends_with("err:already-in-room:already in lobby\n")
    );
    // After login, a resume joins the room from that point.
    net.client(s).say("x").unwrap();
    net.run();
    let b = login(&mut net, ClientConfig::default(), "bob");
    net.send_raw(b, b"join:rust\nsay:rust:r0\nsay:rust:r1\npart:rust\n");
    let text = net.received(b);
    let epoch = text
        .lines()
        .find(|l| l.starts_with("room:rust:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .to_owned();
    net.send_raw(a, format!("resume:rust:{epoch}:1\n").as_bytes());
    assert!(
        net.received(a).ends_with(&format!(
            "joined:rust:ann\nroom:rust:{epoch}:2\nsaid:rust:1:bob:r1\n"
        )),
        "{}",
        net.received(a)
    );
}

#[test]
fn an_idle_room_with_history_stays_until_its_place_is_needed() {
    let mut config = unlimited();
    config.max_rooms = 3;
    let mut net = net(config);
    let a = login(&mut net, ClientConfig::default(), "ann");
    for room in ["one", "two"] {
        net.send_raw(
            a,
            format!("join:{room}\nsay:{room}:hi\npart:{room}\n").as_bytes(),
        );
        net.advance(S);
    }
    assert_eq!(
        net.hub().rooms().count(),
        3,
        "empty rooms with history stay"
    );
    net.send_raw(a, b"join:three\n");
    let rooms: Vec<&str> = net.hub().rooms().map(|(r, _)| r).collect();
    assert!(
        rooms.contains(&"three") && rooms.contains(&"two"),
        "{rooms:?}"
    );
    assert!(!rooms.contains(&"one"), "the room idle longest went");
    // Without history, an emptied room goes at once.
    let mut config = unlimited();
    config.history = chat_proto::History::none();
    let mut net = self::net(config);
    let a = login(&mut net, ClientConfig::default(), "ann");
    net.send_raw(a, b"join:one\nsay:one:hi\npart:one\n");
    assert_eq!(net.hub().rooms().count(), 1);
}

#[test]
fn a_replay_goes_through_the_window_and_never_pauses_the_room() {
    let mut config = unlimited();
    config.send_window = 4096;
    let mut net = net(config);
    net.set_socket_buffer(1024);
    let s = speaker(&mut net);
    let a = login(&mut net, resuming(), "ann");
    net.disconnect(a);
    let long = "x".repeat(200);
    for i in 0..1000 {
        net.client(s).say(&format!("{i}:{long}")).unwrap();
        net.run();
    }
    net.set_read_rate(a, Some(50_000));
    let mut got = 0;
    for _ in 0..1000 {
        net.advance(10 * MS);
        got += messages(&net.take_events(a), "lobby").len();
        assert!(
            !net.hub().is_input_paused(net.conn(s)),
            "the sender was paused"
        );
        assert!(net.hub().in_flight(net.conn(a)).unwrap_or(0) <= 4096);
        if got == 1000 {
            break;
        }
    }
    assert_eq!(got, 1000);
    assert!(net.is_connected(a));
}

/// How many times `text` was said in the lobby, as `events` show.
fn count(events: &[Event], text: &str) -> usize {
    messages(events, "lobby")
        .iter()
        .filter(|(_, t)| t == text)
        .count()
}

#[test]
fn a_message_the_server_never_took_is_sent_again_after_the_resume_once() {
    let mut net = net(unlimited());
    let b = login(&mut net, ClientConfig::default(), "bob");
    let a = login(&mut net, resuming(), "ann");
    // Queued, and the connection is cut before it leaves.
    net.client(a).say("in the tunnel").unwrap();
    net.disconnect(a);
    net.advance(2 * S);
    assert!(net.is_connected(a));
    let (ea, eb) = (net.take_events(a), net.take_events(b));
    assert_eq!(count(&eb, "in the tunnel"), 1, "{eb:?}");
    assert_eq!(count(&ea, "in the tunnel"), 1, "{ea:?}");
    assert!(!ea.iter().any(|e| matches!(e, Event::Unconfirmed { .. })));
}

#[test]
fn a_message_whose_echo_was_lost_is_not_sent_twice() {
    let mut net = net(unlimited());
    let b = login(&mut net, ClientConfig::default(), "bob");
    let a = login(&mut net, resuming(), "ann");
    // The server takes it and relays it; the echo to ann is lost with the
    // connection.
    net.set_reading(a, false);
    net.client(a).say("did it go?").unwrap();
    net.run();
    assert_eq!(count(&net.take_events(b), "did it go?"), 1);
    net.disconnect(a);
    net.set_reading(a, true);
    net.advance(2 * S);
    let (ea, eb) = (net.take_events(a), net.take_events(b));
    assert_eq!(count(&eb, "did it go?"), 0, "not again: {eb:?}");
    // Ann sees it once, replayed.
    assert_eq!(count(&ea, "did it go?"), 1, "{ea:?}");
    assert!(!ea.iter().any(|e| matches!(e, Event::Unconfirmed { .. })));
}

#[test]
fn without_history_an_unechoed_message_is_reported_not_guessed() {
    let mut net = net(unlimited());
    let mut plain = ClientConfig::plain();
    plain.reconnect = resuming().reconnect;
    let a = login(&mut net, plain, "ann");
    net.client(a).say("lost?").unwrap();
    net.disconnect(a);
    net.advance(2 * S);
    assert!(net.is_connected(a));
    let events = net.take_events(a);
    assert!(
        events.contains(&Event::Unconfirmed {
            room: String::new(),
            text: "lost?".into()
        }),
        "{events:?}"
    );
}

#[test]
fn a_client_that_joins_while_messages_wait_for_the_store_gets_what_follows() {
    let mut config = unlimited();
    config.history.durable = true;
    let mut net = net(config);
    let s = login(&mut net, resuming(), "speaker");
    net.set_auto_store(false);
    net.client(s).say("m0").unwrap();
    net.run();
    // Its cursor starts at the room's head, past what is stored.
    let late = login(&mut net, ClientConfig::plain(), "late");
    let history = login(&mut net, resuming(), "ann");
    net.client(s).say("m1").unwrap();
    net.run();
    assert!(!net.received(late).contains("msg:speaker:"));
    net.commit_store();
    net.client(s).say("m2").unwrap();
    net.run();
    net.commit_store();
    assert_eq!(
        net.received(late),
        "ok:late\njoin:ann\nmsg:speaker:m1\nmsg:speaker:m2\n"
    );
    assert_eq!(messages(&net.take_events(history), "lobby"), expected(0..3));
    assert_eq!(messages(&net.take_events(s), "lobby"), expected(0..3));
}

#[test]
fn a_joiner_is_told_the_stored_head_so_a_crash_before_the_store_leaves_no_gap() {
    let mut config = unlimited();
    config.history.durable = true;
    let mut net = net(config.clone());
    let s = login(&mut net, resuming(), "speaker");
    say(&mut net, s, 0..3);
    net.set_auto_store(false);
    net.client(s).say("lost").unwrap();
    net.run();
    // Joins while "lost" waits for the store: live from 3, what is stored.
    let a = login(&mut net, resuming(), "ann");
    let said = net.received(a);
    assert!(said.contains("room:lobby:"), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("room:lobby:") && l.ends_with(":3")),
        "{said}"
    );
    // The server dies before storing it and comes back from the store.
    net.set_auto_store(true);
    config.seed = 7;
    net.restart_hub(config).unwrap();
    net.advance(2 * S);
    assert!(net.is_connected(a));
    net.client(s).say("m4").unwrap();
    net.run();
    let events = net.take_events(a);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Gap { .. })),
        "{events:?}"
    );
    // History on join, then the sender's session sends "lost" again once
    // it has resumed: it gets the offset the lost one had, read once.
    let mut want = expected(0..3);
    want.extend([(3, "lost".to_string()), (4, "m4".to_string())]);
    assert_eq!(messages(&events, "lobby"), want);
}

/// Cut the connection again while the client logs in after a reconnect
/// (it sends `cap:`, `resume:` and `iam:` in one write), once it has read
/// `k` bytes of the server's answers, for every `k` in steps of 3: inside
/// the `cap:` answer, before `ok:`, before or inside the `room:` frame,
/// inside the replay. The next attempt still resumes: every message once,
/// in order, and no gap.
#[test]
fn a_connection_cut_anywhere_in_the_login_after_a_reconnect_still_resumes() {
    const BEFORE: u32 = 3;
    const AWAY: u32 = 8;
    for k in (0..=90).step_by(3) {
        let (mut net, s, a, mut seen) = cut_off_while_said(16, BEFORE, AWAY);
        let mut steps = 0;
        while !net.is_connected(a) {
            steps += 1;
            assert!(steps < 1_000, "k {k}: no reconnect");
            net.advance(10 * MS);
        }
        let base = net.received(a).len();
        while net.received(a).len() < base + k && net.is_connected(a) {
            steps += 1;
            assert!(steps < 10_000, "k {k}: no progress");
            net.advance(10 * MS);
        }
        seen.extend(net.take_events(a));
        net.disconnect(a);
        net.set_read_rate(a, None);
        net.advance(3 * S);
        assert!(net.is_connected(a), "k {k}");
        say(&mut net, s, BEFORE + AWAY..BEFORE + AWAY + 2);
        seen.extend(net.take_events(a));
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Gap { .. })),
            "k {k}: {seen:?}"
        );
        assert_eq!(
            messages(&seen, "lobby"),
            expected(0..BEFORE + AWAY + 2),
            "cut after {k} bytes of the login's answers"
        );
    }
}
