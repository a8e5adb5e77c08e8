//! Scenario tests of the hub, driven through the in-memory network with
//! simulated time: login, the room, presence, `who:`, errors, and every limit.

use std::time::{Duration, Instant};

use chat_proto::sim::{Direction, Network, PeerId};
use chat_proto::{
    ClientConfig, ClientFrame, CloseReason, ConnId, Decoder, ErrorCode, Event, Hub, HubCloseReason,
    HubEvent, Keepalive, Output, RateLimit, ServerConfig, ServerFrame,
};

const S: Duration = Duration::from_secs(1);

fn net(config: ServerConfig) -> Network {
    Network::new(config, Instant::now()).unwrap()
}

fn join(net: &mut Network, name: &str) -> PeerId {
    let peer = net.connect(ClientConfig::plain()).unwrap();
    net.client(peer).login(name).unwrap();
    net.run();
    peer
}

/// What one drain of a hub's outputs held.
#[derive(Debug, Default)]
struct Drained {
    sent: Vec<(ConnId, Vec<u8>)>,
    closes: Vec<ConnId>,
    aborts: Vec<ConnId>,
    events: Vec<HubEvent>,
}

/// Drains every output of `hub`; bytes for the connections in `reading`
/// are reported written.
fn drain(hub: &mut Hub, now: Instant, reading: &[ConnId]) -> Drained {
    let mut out = Drained::default();
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Transmit(t) => {
                if reading.contains(&t.conn) {
                    hub.written(t.conn, now, t.len());
                }
                out.sent.push((t.conn, t.data.concat()));
            }
            Output::Close(id) => out.closes.push(id),
            Output::Abort(id) => out.aborts.push(id),
            Output::Event(e) => out.events.push(e),
            _ => {}
        }
    }
    out
}

fn errors(events: &[Event]) -> Vec<ErrorCode> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { code, .. } => code.known(),
            _ => None,
        })
        .collect()
}

#[test]
fn login_answers_ok_and_refuses_taken_and_invalid_names() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "zhangsan");
    let b = join(&mut net, "张三");
    assert_eq!(net.hub().members(), 2);
    assert_eq!(net.hub().name(net.conn(b)), Some("张三"));

    let c = net.connect(ClientConfig::plain()).unwrap();
    net.client(c).login("zhangsan").unwrap();
    net.run();
    net.send_raw(c, b"iam:bad name\niam:\n");
    net.run();
    assert_eq!(
        net.received(c),
        "err:name-taken:zhangsan is taken\n\
         err:bad-name:name may hold only letters, digits, '_', '-' and '.'\n\
         err:bad-name:name is empty\n"
    );
    // Still connected; a free name works.
    net.client(c).login("lisi").unwrap();
    net.run();
    assert_eq!(net.client(c).name(), Some("lisi"));
    net.send_raw(c, b"iam:other\n");
    net.run();
    assert!(
        net.received(c)
            .ends_with("err:already-logged-in:already logged in as lisi\n")
    );
    assert_eq!(net.hub().members(), 3);
    assert!(
        net.received(a)
            .starts_with("ok:zhangsan\njoin:张三\njoin:lisi\n")
    );
}

#[test]
fn two_clients_racing_for_one_name_exactly_one_wins() {
    let mut net = net(ServerConfig::default());
    let peers = [
        net.connect(ClientConfig::plain()).unwrap(),
        net.connect(ClientConfig::plain()).unwrap(),
    ];
    // Both logins are in flight before the hub reads either.
    for &peer in &peers {
        net.client(peer).login("zhangsan").unwrap();
    }
    net.run();
    let winners: Vec<PeerId> = peers
        .iter()
        .copied()
        .filter(|&p| net.client(p).name() == Some("zhangsan"))
        .collect();
    assert_eq!(winners.len(), 1);
    let loser = *peers.iter().find(|&&p| p != winners[0]).unwrap();
    assert_eq!(errors(&net.take_events(loser)), [ErrorCode::NameTaken]);
    assert_eq!(net.client(loser).name(), None);
    assert!(net.is_connected(loser));
    assert_eq!(net.hub().members(), 1);
    assert_eq!(net.hub().name(net.conn(winners[0])), Some("zhangsan"));
}

#[test]
fn messages_reach_everyone_in_one_order() {
    let mut net = net(ServerConfig::default());
    let peers: Vec<PeerId> = ["a", "b", "c"].iter().map(|n| join(&mut net, n)).collect();
    for p in &peers {
        net.take_events(*p);
    }
    // Interleave sends from all three before any delivery.
    for round in 0..5 {
        for (i, p) in peers.iter().enumerate() {
            net.client(*p).say(&format!("{i}-{round}")).unwrap();
        }
    }
    net.run();
    let seen: Vec<Vec<Event>> = peers.iter().map(|p| net.take_events(*p)).collect();
    assert_eq!(seen[0].len(), 15);
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    // The sender's own messages are echoed, in the order sent.
    let own: Vec<&str> = seen[1]
        .iter()
        .filter_map(|e| match e {
            Event::Message { from, text, .. } if from == "b" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(own, ["1-0", "1-1", "1-2", "1-3", "1-4"]);
}

#[test]
fn frames_before_login_are_refused() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(a, b"msg:hello\nwho:\nping:1\nnick:x\n");
    net.run();
    assert_eq!(
        net.received(a),
        "err:not-logged-in:log in with iam:NAME first\n\
         err:not-logged-in:log in with iam:NAME first\n\
         pong:1\n\
         err:unknown-tag:unknown tag \"nick\"\n"
    );
}

#[test]
fn malformed_frames_get_an_error_and_the_connection_goes_on() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    let long = format!("msg:{}\n", "x".repeat(5000));
    net.send_raw(a, long.as_bytes());
    net.send_raw(
        a,
        b"msg:\xff\nmsg:a\x1b[2Jb\nno colon\nwho:x y\nping:a b\nmsg:still here\n",
    );
    net.run();
    assert_eq!(
        net.received(a),
        "ok:a\n\
         err:too-long:frame longer than 4096 bytes\n\
         err:bad-utf8:frame is not valid UTF-8\n\
         err:bad-frame:control character in frame\n\
         err:bad-frame:frame does not start with tag:\n\
         err:bad-frame:malformed who frame: a room name is 1 to 32 letters, digits, '_', '-' or '.'\n\
         err:bad-frame:malformed ping frame: token must be 0 to 64 visible ASCII characters\n\
         msg:a:still here\n"
    );
    assert!(net.is_connected(a));
}

#[test]
fn relayed_message_must_fit_the_frame_limit() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "zhangsan");
    // msg:TEXT fits 4096 bytes, but msg:zhangsan:TEXT would not.
    let text = "x".repeat(4096 - "msg:\n".len());
    net.send_raw(a, format!("msg:{text}\n").as_bytes());
    net.run();
    assert!(net.received(a).ends_with(
        "err:too-long:relayed as msg:NAME:TEXT the frame would be 4105 bytes, more than 4096\n"
    ));
}

#[test]
fn who_lists_everyone_in_frames_within_the_limit() {
    let mut config = ServerConfig::default();
    config.max_frame_len = 256;
    let mut net = net(config);
    let names: Vec<String> = (0..60).map(|i| format!("user-{i:02}")).collect();
    let peers: Vec<PeerId> = names.iter().map(|n| join(&mut net, n)).collect();
    net.record();
    net.client(peers[7]).who().unwrap();
    net.run();
    let text = net.received(peers[7]);
    let frames: Vec<&str> = text.lines().collect();
    // 60 names of 7 bytes fill two frames of at most 256 bytes.
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(
        frames
            .iter()
            .all(|f| f.len() < 256 && f.starts_with("users:"))
    );
    assert_eq!(frames.last(), Some(&"users:"));
    let events = net.take_events(peers[7]);
    let Some(Event::Users { names: listed, .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(listed, &names);
}

#[test]
fn bye_is_answered_then_the_connection_closes_and_others_see_left() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    net.send_raw(b, b"bye:gotta go\n");
    net.run();
    assert!(!net.is_connected(b));
    assert_eq!(
        net.take_events(b).last(),
        Some(&Event::Closed {
            reason: CloseReason::Bye {
                reason: "gotta go".into()
            }
        })
    );
    assert_eq!(net.hub().members(), 1);
    assert!(net.received(b).ends_with("bye:gotta go\n"));
    assert!(net.received(a).ends_with("join:b\nleft:b\n"));
    let closed: Vec<_> = net
        .take_hub_events()
        .into_iter()
        .filter(|e| matches!(e, HubEvent::Closed { .. }))
        .collect();
    assert_eq!(
        closed,
        [HubEvent::Closed {
            conn: net.conn(b),
            reason: HubCloseReason::Bye
        }]
    );
    // The name is free again.
    let c = join(&mut net, "b");
    assert_eq!(net.client(c).name(), Some("b"));
}

#[test]
fn a_dropped_connection_leaves_the_room() {
    let mut net = net(ServerConfig::default());
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    net.take_events(a);
    net.disconnect(b);
    assert_eq!(
        net.take_events(a),
        [Event::Left {
            room: String::new(),
            name: "b".into()
        }]
    );
    assert_eq!(
        net.take_events(b).last(),
        Some(&Event::Closed {
            reason: CloseReason::Disconnected
        })
    );
    assert_eq!(net.hub().connections(), 1);
}

#[test]
fn presence_stops_above_the_limit() {
    let mut config = ServerConfig::default();
    config.presence_limit = 3;
    let mut net = net(config);
    let first = join(&mut net, "p0");
    let rest: Vec<PeerId> = (1..6).map(|i| join(&mut net, &format!("p{i}"))).collect();
    let joins: Vec<String> = net
        .take_events(first)
        .into_iter()
        .filter_map(|e| match e {
            Event::Joined { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    // Joins are told while the room holds at most 3, counting the newcomer.
    assert_eq!(joins, ["p1", "p2"]);
    // Leaving a room of 6 is not told; leaving a room of 3 is.
    net.client(rest[4]).close("").unwrap();
    net.client(rest[3]).close("").unwrap();
    net.client(rest[2]).close("").unwrap();
    net.run();
    assert!(net.take_events(first).is_empty());
    net.client(rest[1]).close("").unwrap();
    net.run();
    assert_eq!(
        net.take_events(first),
        [Event::Left {
            room: String::new(),
            name: "p2".into()
        }]
    );
}

#[test]
fn many_logins_above_the_presence_limit_cost_linear_frames() {
    let mut config = ServerConfig::default();
    config.presence_limit = 10;
    config.max_connections = 2000;
    let mut net = net(config);
    net.record();
    for i in 0..2000 {
        join(&mut net, &format!("u{i}"));
    }
    let frames: usize = net
        .transcript()
        .iter()
        .filter(|w| w.direction == Direction::ToClient)
        .map(|w| w.bytes.iter().filter(|&&b| b == b'\n').count())
        .sum();
    // 2000 ok: frames plus the joins among the first ten: 45.
    assert_eq!(frames, 2000 + 45);
}

#[test]
fn login_timeout_drops_a_silent_anonymous_connection() {
    let mut net = net(ServerConfig::default());
    net.record();
    let lurker = net.connect(ClientConfig::plain()).unwrap();
    let member = join(&mut net, "member");
    net.advance(9 * S);
    assert!(net.is_connected(lurker));
    net.advance(S);
    assert!(!net.is_connected(lurker));
    assert!(
        net.received(lurker)
            .ends_with("err:timeout:no login in time\n")
    );
    assert!(net.is_connected(member));
    assert!(net.take_hub_events().iter().any(|e| *e
        == HubEvent::Closed {
            conn: net.conn(lurker),
            reason: HubCloseReason::LoginTimeout
        }));
}

#[test]
fn keepalive_pings_idle_clients_and_keeps_them() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    net.advance(2 * 3600 * S);
    assert!(net.is_connected(a));
    let text = net.received(a);
    // The client pings the server too; both answer.
    assert!(text.contains("ping:1\n"), "{text}");
    assert!(text.contains("pong:1\n"), "{text}");
    // A connection costs at most a couple of timer entries.
    assert!(net.hub().timer_entries() <= 2);
}

#[test]
fn pings_come_idle_after_the_last_answer_even_when_idle_is_short() {
    // idle 5 s, timeout 15 s: an answered ping must be followed by the next
    // one 5 s after the answer, not 15 s after the ping.
    let mut config = ServerConfig::default();
    config.keepalive = Keepalive::new(5 * S, 15 * S);
    let mut net = net(config);
    net.record();
    let a = join(&mut net, "a");
    net.advance(60 * S);
    let pings = net
        .transcript()
        .iter()
        .filter(|w| w.peer == a && w.direction == Direction::ToClient)
        .filter(|w| w.bytes.starts_with(b"ping:"))
        .count();
    assert_eq!(pings, 12);
    // Each answer arms an earlier entry; the one it replaces goes stale and
    // is dropped when it surfaces, at most `timeout` later: a bounded few.
    assert!(net.hub().timer_entries() <= 1 + 15 / 5 + 1);
}

#[test]
fn keepalive_drops_a_client_that_stops_answering() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    // b's machine freezes: it reads nothing and sends nothing.
    net.freeze(b);
    net.advance(44 * S);
    assert!(net.is_connected(b));
    net.advance(2 * S);
    assert!(!net.is_connected(b));
    assert!(net.is_connected(a));
    assert!(net.take_hub_events().iter().any(|e| *e
        == HubEvent::Closed {
            conn: net.conn(b),
            reason: HubCloseReason::KeepaliveTimeout
        }));
    assert!(net.received(a).contains("left:b\n"));
}

#[test]
fn client_detects_a_server_that_stops_answering() {
    let mut net = net(ServerConfig::default());
    let mut config = ClientConfig::plain();
    config.keepalive.idle = 5 * S;
    config.keepalive.timeout = 2 * S;
    let a = net.connect(config).unwrap();
    net.client(a).login("a").unwrap();
    net.run();
    // The server stops answering: raw-drop everything by not reading at the
    // hub is not possible, so instead the client stops hearing the server.
    net.set_reading(a, false);
    net.advance(6 * S);
    assert!(net.is_connected(a));
    net.advance(S);
    assert!(!net.is_connected(a));
    assert_eq!(
        net.take_events(a).last(),
        Some(&Event::Closed {
            reason: CloseReason::Timeout
        })
    );
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let mut config = ServerConfig::default();
    config.send_window = 8 * 1024;
    let mut net = net(config);
    net.set_socket_buffer(4096);
    let talker = join(&mut net, "talker");
    let listener = join(&mut net, "listener");
    let sloth = join(&mut net, "sloth");
    net.set_reading(sloth, false);
    let text = "y".repeat(100);
    for _ in 0..200 {
        net.client(talker).say(&text).unwrap();
        net.advance(S / 100);
    }
    // Its socket and window are full: nothing moves for it any more.
    assert!(net.is_connected(sloth));
    net.advance(10 * S);
    assert!(!net.is_connected(sloth));
    assert!(net.is_connected(talker) && net.is_connected(listener));
    let heard = net
        .take_events(listener)
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count();
    assert_eq!(heard, 200);
    assert!(net.take_hub_events().iter().any(|e| *e
        == HubEvent::Closed {
            conn: net.conn(sloth),
            reason: HubCloseReason::SlowConsumer
        }));
    assert!(net.take_events(listener).is_empty());
}

#[test]
fn the_outbound_bound_is_never_passed_while_open() {
    let mut config = ServerConfig::default();
    config.outbound_limit = 8 * 1024;
    config.rate_limit = None;
    let limit = config.outbound_limit;
    let mut hub = Hub::new(config).unwrap();
    let now = Instant::now();
    let sloth = hub.accept(now, None);
    let talker = hub.accept(now, None);
    hub.handle_input(sloth, now, b"iam:sloth\n");
    hub.handle_input(talker, now, b"iam:talker\n");
    for _ in 0..1000 {
        hub.handle_input(
            talker,
            now,
            b"msg:0123456789012345678901234567890123456789\n",
        );
        // The talker reads; the sloth never does.
        let drained = drain(&mut hub, now, &[talker]);
        assert!(hub.unflushed(sloth).unwrap() <= limit);
        assert!(drained.closes.is_empty());
    }
    // The rest waits in the room, counted once; the sloth goes when its
    // output has made no progress for the write timeout.
    assert!(hub.room_backlog("lobby").unwrap() > 30_000);
    let later = now + Duration::from_secs(10);
    hub.handle_timeout(later);
    assert_eq!(drain(&mut hub, later, &[talker]).closes, [sloth]);
}

#[test]
fn server_full_refuses_connections_past_the_limit() {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    let mut net = net(config);
    net.record();
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    let c = net.connect(ClientConfig::plain()).unwrap();
    net.run();
    assert!(!net.is_connected(c));
    assert_eq!(net.received(c), "err:server-full:at most 2 connections\n");
    assert_eq!(
        net.take_events(c),
        [
            Event::Error {
                code: ErrorCode::ServerFull.into(),
                text: "at most 2 connections".into()
            },
            Event::Closed {
                reason: CloseReason::Fatal {
                    code: ErrorCode::ServerFull
                }
            }
        ]
    );
    // Once someone leaves there is room again.
    net.client(b).close("").unwrap();
    net.run();
    let d = join(&mut net, "d");
    assert!(net.is_connected(d) && net.is_connected(a));
}

#[test]
fn the_rate_limit_slows_a_sender_down_and_refuses_nothing() {
    let mut config = ServerConfig::default();
    config.rate_limit = Some(RateLimit {
        per_second: 2,
        burst: 3,
    });
    let mut net = net(config);
    let a = join(&mut net, "a");
    net.take_events(a);
    for i in 0..5 {
        net.client(a).say(&i.to_string()).unwrap();
    }
    net.run();
    let said = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    // The burst goes through; the rest waits, its input paused.
    let events = net.take_events(a);
    assert_eq!(said(&events), ["0", "1", "2"]);
    assert!(errors(&events).is_empty(), "{events:?}");
    assert!(net.is_paused(a));
    // Each half second brings one more token, and the next waiting message.
    net.advance(S / 2);
    assert_eq!(said(&net.take_events(a)), ["3"]);
    net.advance(S / 2);
    assert_eq!(said(&net.take_events(a)), ["4"]);
    assert!(!net.is_paused(a));
    assert!(net.is_connected(a));
    assert!(net.hub().stats().input_pauses >= 2);
}

#[test]
fn shutdown_says_bye_to_everyone_and_refuses_newcomers() {
    let mut net = net(ServerConfig::default());
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    let now = net.now();
    let mut hub = Hub::new(ServerConfig::default()).unwrap();
    let x = hub.accept(now, None);
    let y = hub.accept(now, None);
    hub.handle_input(x, now, b"iam:x\n");
    drain(&mut hub, now, &[x, y]);
    hub.shutdown(now);
    let drained = drain(&mut hub, now, &[]);
    assert_eq!(
        drained.sent,
        [
            (x, b"bye:server shutting down\n".to_vec()),
            (y, b"bye:server shutting down\n".to_vec())
        ]
    );
    assert_eq!(drained.closes, [x, y]);
    assert_eq!(hub.members(), 0);
    let z = hub.accept(now, None);
    let drained = drain(&mut hub, now, &[]);
    assert_eq!(drained.sent, [(z, b"bye:server shutting down\n".to_vec())]);
    assert_eq!(drained.closes, [z]);
    assert!(!hub.is_finished());
    // The sockets of x and z are closed once flushed; y never flushes its
    // bye, so it is aborted when the grace period is over.
    hub.disconnected(x, now);
    hub.disconnected(z, now);
    assert_eq!(hub.sockets(), 1);
    // y closes too late: its linger (2 s) ends before the grace (5 s).
    let later = now + 2 * S;
    assert_eq!(hub.poll_timeout(), Some(later));
    hub.handle_timeout(later);
    assert_eq!(drain(&mut hub, later, &[]).aborts, [y]);
    hub.disconnected(y, later);
    assert!(hub.is_finished());
    // What is left in the timer queue is stale: it does nothing.
    if let Some(at) = hub.poll_timeout() {
        hub.handle_timeout(at);
    }
    assert!(hub.poll_output().is_none());
    // The sim's clients are untouched by the other hub.
    assert!(net.is_connected(a) && net.is_connected(b));
}

#[test]
fn idle_connections_hold_no_decoder_buffer() {
    let now = Instant::now();
    let mut hub = Hub::new(ServerConfig::default()).unwrap();
    let a = hub.accept(now, None);
    hub.handle_input(a, now, b"iam:a\nmsg:half a fr");
    assert_eq!(hub.buffered(a), Some("msg:half a fr".len()));
    hub.handle_input(a, now, b"ame\n");
    assert_eq!(hub.buffered(a), Some(0));
}

#[test]
fn stale_ids_are_ignored() {
    let now = Instant::now();
    let mut hub = Hub::new(ServerConfig::default()).unwrap();
    let a = hub.accept(now, None);
    hub.disconnected(a, now);
    let b = hub.accept(now, None);
    assert_eq!(a.index(), b.index());
    hub.handle_input(a, now, b"iam:ghost\n");
    hub.written(a, now, 100);
    hub.disconnected(a, now);
    hub.approve_login(a, now);
    hub.kick(a, now, "x").unwrap();
    hub.notice(a, now, "x").unwrap();
    let drained = drain(&mut hub, now, &[]);
    assert!(drained.sent.is_empty() && drained.closes.is_empty());
    assert_eq!(hub.connections(), 1);
    hub.handle_input(b, now, b"iam:b\n");
    assert_eq!(hub.name(b), Some("b"));
}

#[test]
fn every_frame_the_hub_emits_decodes() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    let b = join(&mut net, "张三");
    net.send_raw(a, b"msg:hi\tthere: you\nwho:\nbogus\nping:x\n");
    net.client(b).close("bye now").unwrap();
    net.run();
    let mut count = 0;
    for peer in [a, b] {
        let mut from_server = Decoder::new(4096);
        let mut from_client = Decoder::new(4096);
        for w in net.transcript().iter().filter(|w| w.peer == peer) {
            match w.direction {
                Direction::ToClient => from_server.decode(&w.bytes, |frame| {
                    ServerFrame::parse(frame.unwrap()).unwrap();
                    count += 1;
                }),
                // a sent raw junk on purpose; b's client must be clean.
                Direction::ToServer if peer == a => {}
                Direction::ToServer => from_client.decode(&w.bytes, |frame| {
                    ClientFrame::parse(frame.unwrap()).unwrap();
                    count += 1;
                }),
            }
        }
    }
    assert!(count > 10);
}
