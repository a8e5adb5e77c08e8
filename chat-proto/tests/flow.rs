//! Flow control, with simulated time: a burst slows senders down and never
//! costs a reading client its place; a member that does not keep up is
//! closed in bounded time and never holds its room longer than the write
//! timeout; a pipelining client is slowed, never dropped; the rate limit
//! slows a flooder without an error flood.

use std::time::{Duration, Instant};

use chat_proto::sim::{Direction, Network, PeerId};
use chat_proto::{
    ClientConfig, CloseReason, ErrorCode, Event, HubCloseReason, HubEvent, ServerConfig,
};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn nc(net: &mut Network, name: &str) -> PeerId {
    let peer = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(peer, format!("iam:{name}\n").as_bytes());
    peer
}

/// The messages `peer`'s client received, as `(from, text)`.
fn messages(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { from, text, .. } => Some((from.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

fn closed_slow(net: &mut Network) -> Vec<chat_proto::ConnId> {
    net.take_hub_events()
        .into_iter()
        .filter_map(|e| match e {
            HubEvent::Closed {
                conn,
                reason: HubCloseReason::SlowConsumer,
            } => Some(conn),
            _ => None,
        })
        .collect()
}

fn unlimited() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config
}

/// K senders each pipeline M messages in one write; every member reads,
/// one of them slowly. Nobody is dropped, nothing is lost, each sender's
/// messages arrive in order, and the room's memory stays bounded.
#[test]
fn a_burst_slows_the_senders_and_loses_no_reader() {
    const K: usize = 5;
    const M: usize = 400;
    let mut config = unlimited();
    config.room_backlog = 64 << 10;
    config.history.bytes = config.room_backlog / 4;
    config.send_window = 8 << 10;
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.set_socket_buffer(4096);
    let senders: Vec<PeerId> = (0..K).map(|i| nc(&mut net, &format!("s{i}"))).collect();
    let slow = nc(&mut net, "slow");
    net.set_read_rate(slow, Some(200_000));
    for p in senders.iter().chain([&slow]) {
        net.take_events(*p);
    }
    for (i, p) in senders.iter().enumerate() {
        let burst: String = (0..M)
            .map(|m| format!("msg:{i}-{m:04}-{}\n", "x".repeat(40)))
            .collect();
        net.send_raw(*p, burst.as_bytes());
    }
    let mut max_backlog = 0;
    let mut paused_seen = false;
    for _ in 0..200 {
        net.advance(50 * MS);
        max_backlog = max_backlog.max(net.hub().room_backlog("lobby").unwrap());
        paused_seen |= senders.iter().any(|p| net.is_paused(*p));
    }
    assert!(paused_seen, "the senders were never slowed");
    assert!(closed_slow(&mut net).is_empty(), "a reader was dropped");
    // Bounded: the backlog passes its bound only by what paused senders
    // had already sent.
    assert!(
        max_backlog < 4 * (64 << 10),
        "backlog reached {max_backlog}"
    );
    for p in senders.iter().chain([&slow]) {
        let got = messages(&net.take_events(*p));
        assert_eq!(got.len(), K * M, "{p:?} got {}", got.len());
        for i in 0..K {
            let own: Vec<&String> = got
                .iter()
                .filter(|(from, _)| *from == format!("s{i}"))
                .map(|(_, t)| t)
                .collect();
            let sorted = {
                let mut s = own.clone();
                s.sort();
                s
            };
            assert_eq!(own, sorted, "s{i}'s messages out of order");
        }
    }
}

/// A member that never reads is closed within the write timeout (plus the
/// time to fill its window), while the others are served all along.
#[test]
fn a_member_that_never_reads_is_closed_within_the_write_timeout() {
    let mut config = unlimited();
    config.send_window = 4 << 10;
    config.room_backlog = 32 << 10;
    config.history.bytes = config.room_backlog / 4;
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.set_socket_buffer(4096);
    let talker = nc(&mut net, "talker");
    let listener = nc(&mut net, "listener");
    let sloth = nc(&mut net, "sloth");
    net.set_reading(sloth, false);
    let started = net.now();
    let mut closed_at = None;
    let mut sent = 0;
    for tick in 0..300 {
        net.send_raw(
            talker,
            format!("msg:{tick:04}{}\n", "z".repeat(200)).as_bytes(),
        );
        sent += 1;
        net.advance(50 * MS);
        if closed_at.is_none() && !net.is_connected(sloth) {
            closed_at = Some(net.now());
        }
    }
    let closed_at = closed_at.expect("the sloth was never closed");
    let took = closed_at - started;
    assert!(took >= Duration::from_secs(10), "closed after {took:?}");
    assert!(took <= Duration::from_secs(12), "closed after {took:?}");
    // The listener got everything, in order, and is still there.
    let got = messages(&net.take_events(listener));
    assert_eq!(got.len(), sent);
    assert!(net.is_connected(listener));
    let sloth_events = net.take_events(sloth);
    assert!(
        sloth_events
            .iter()
            .all(|e| !matches!(e, Event::Closed { .. })
                || matches!(
                    e,
                    Event::Closed {
                        reason: CloseReason::Fatal {
                            code: ErrorCode::SlowConsumer
                        }
                    } | Event::Closed {
                        reason: CloseReason::Disconnected
                    }
                ))
    );
}

/// A reader at 10 KB/s in a room producing 1 MB/s: closed in bounded time,
/// and the room never held its sender back longer than the write timeout.
#[test]
fn a_reader_far_slower_than_its_room_is_closed_and_the_room_moves_on() {
    let mut config = unlimited();
    config.room_backlog = 256 << 10;
    config.history.bytes = config.room_backlog / 4;
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.set_socket_buffer(4096);
    let sender = nc(&mut net, "sender");
    let reader = nc(&mut net, "reader");
    let slow = nc(&mut net, "slow");
    net.set_read_rate(slow, Some(10_000));
    let line = format!("msg:{}\n", "y".repeat(1000));
    let mut longest_pause = Duration::ZERO;
    let mut paused_since: Option<Instant> = None;
    // 1 MB/s: ten messages of 1 KB every 10 ms, for 30 s.
    for _ in 0..3000 {
        if !net.is_paused(sender) {
            net.send_raw(sender, line.repeat(10).as_bytes());
        }
        net.advance(10 * MS);
        match (net.is_paused(sender), paused_since) {
            (true, None) => paused_since = Some(net.now()),
            (false, Some(since)) => {
                longest_pause = longest_pause.max(net.now() - since);
                paused_since = None;
            }
            _ => {}
        }
    }
    assert!(!net.is_connected(slow), "the slow reader is still there");
    assert!(net.is_connected(reader) && net.is_connected(sender));
    assert!(
        longest_pause <= Duration::from_secs(10) + 100 * MS,
        "the room stalled for {longest_pause:?}"
    );
    assert_eq!(closed_slow(&mut net), [net.conn(slow)]);
}

/// With the default settings a flooder is slowed to the rate limit, gets
/// no error for it, and a member reading at 100 KB/s keeps up.
#[test]
fn a_flooder_is_slowed_without_an_error_flood_and_a_modest_reader_keeps_up() {
    let mut net = Network::new(ServerConfig::default(), Instant::now()).unwrap();
    net.record();
    let flooder = nc(&mut net, "flooder");
    let reader = nc(&mut net, "reader");
    net.set_read_rate(reader, Some(100_000));
    let flood: String = (0..5000)
        .map(|i| format!("msg:{i:05}{}\n", "f".repeat(190)))
        .collect();
    net.send_raw(flooder, flood.as_bytes());
    net.advance(Duration::from_secs(20));
    assert!(net.is_connected(reader), "the reader was dropped");
    assert!(net.is_connected(flooder));
    let to_flooder: Vec<u8> = net
        .transcript()
        .iter()
        .filter(|w| w.peer == flooder && w.direction == Direction::ToClient)
        .flat_map(|w| w.bytes.to_vec())
        .collect();
    let errors = String::from_utf8_lossy(&to_flooder).matches("err:").count();
    assert_eq!(errors, 0, "the flooder was answered with errors");
    // 200 at once, then 20 a second for 20 s: about 600 relayed.
    let relayed = net.hub().stats().messages;
    assert!((550..=650).contains(&relayed), "{relayed} relayed");
    assert!(net.is_paused(flooder));
}

/// A client pipelining 100 `who:` in a room of 2,000 while reading is
/// slowed (its input paused while it is owed much), never dropped, and
/// gets every answer.
#[test]
fn a_pipelining_client_is_slowed_never_dropped() {
    let mut config = unlimited();
    config.max_connections = 3000;
    config.presence_limit = 0;
    config.pause_backlog = 64 << 10;
    config.send_window = 16 << 10;
    let mut net = Network::new(config, Instant::now()).unwrap();
    for i in 0..2000 {
        let p = net.connect(ClientConfig::plain()).unwrap();
        net.send_raw(p, format!("iam:member{i:04}\n").as_bytes());
        net.set_reading(p, true);
    }
    let asker = nc(&mut net, "asker");
    net.set_read_rate(asker, Some(2_000_000));
    net.take_events(asker);
    net.send_raw(asker, "who:\n".repeat(100).as_bytes());
    let mut paused = false;
    for _ in 0..200 {
        net.advance(10 * MS);
        paused |= net.is_paused(asker);
    }
    assert!(paused, "the asker was never slowed");
    assert!(net.is_connected(asker));
    let listings = net
        .take_events(asker)
        .into_iter()
        .filter(|e| matches!(e, Event::Users { names, .. } if names.len() == 2001))
        .count();
    assert_eq!(listings, 100);
    // 100,000 pings: every pong, no drop.
    let pinger = nc(&mut net, "pinger");
    net.record();
    net.send_raw(pinger, "ping:x\n".repeat(100_000).as_bytes());
    net.advance(S);
    assert!(net.is_connected(pinger));
    let pongs = net.received(pinger).matches("pong:x\n").count();
    assert_eq!(pongs, 100_000);
    assert_eq!(net.hub().stats().closes(HubCloseReason::SlowConsumer), 0);
}

/// A room message queued ahead of private frames that fill the outbound
/// bound: with nothing in flight, no write will ever come to make room, so
/// the message goes anyway (the bound is passed by at most one frame)
/// rather than the connection waiting for its write timeout.
#[test]
fn a_room_message_ahead_of_a_full_private_queue_still_goes_when_nothing_is_in_flight() {
    use chat_proto::{Hub, Output};
    let mut config = ServerConfig::default();
    config.max_frame_len = 256;
    config.outbound_limit = 512;
    config.rate_limit = None;
    config.history = chat_proto::History::none();
    let now = Instant::now();
    let mut hub = Hub::new(config).unwrap();
    let a = hub.accept(now, None);
    let b = hub.accept(now, None);
    hub.handle_input(a, now, b"iam:a\n");
    hub.handle_input(b, now, b"iam:b\n");
    let drain = |hub: &mut Hub, written: bool| -> Vec<u8> {
        let mut to_b = Vec::new();
        while let Some(output) = hub.poll_output() {
            if let Output::Transmit(t) = output {
                let n = t.len();
                if t.conn == b {
                    to_b.extend(t.data.concat());
                }
                if written || t.conn != b {
                    hub.written(t.conn, now, n);
                }
            }
        }
        to_b
    };
    drain(&mut hub, true);
    // In one batch: a message for b's room, then 15 pongs owed to b (225
    // bytes, behind the message in b's queue).
    let text = "x".repeat(60);
    hub.handle_input(a, now, format!("msg:{text}\n").as_bytes());
    hub.handle_input(b, now, "ping:123456789\n".repeat(15).as_bytes());
    let to_b = String::from_utf8(drain(&mut hub, false)).unwrap();
    assert!(to_b.starts_with(&format!("msg:a:{text}\n")), "{to_b:?}");
    assert_eq!(to_b.matches("pong:123456789\n").count(), 15, "{to_b:?}");
    assert_eq!(hub.unflushed(b), Some(hub.in_flight(b).unwrap()));
}

/// While a connection's input is paused the server cannot hear it, so its
/// keepalive waits (PROTOCOL.md, section 7): a sender held back by its
/// room's backlog for many times the keepalive's idle time plus timeout is
/// neither pinged out nor closed, and its messages all go out in the end.
#[test]
fn keepalive_waits_while_input_is_paused() {
    let mut config = unlimited();
    config.presence_limit = 0;
    config.keepalive = chat_proto::Keepalive::new(S, 3 * S);
    config.room_backlog = 64 << 10;
    config.history.bytes = 16 << 10;
    config.send_window = 4 << 10;
    config.write_timeout = 120 * S;
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.set_socket_buffer(4 << 10);
    let slow = nc(&mut net, "slow");
    let sender = nc(&mut net, "sender");
    net.set_reading(slow, true);
    net.set_reading(sender, true);
    net.advance(10 * MS);
    // A reader at 2 KB/s: once the room holds 64 KB for it, the sender
    // waits until it is down to half, about 16 s.
    net.set_read_rate(slow, Some(2_000));
    let text = "x".repeat(90);
    let burst: String = (0..1000).map(|i| format!("msg:{i:04} {text}\n")).collect();
    net.send_raw(sender, burst.as_bytes());
    let (mut paused_for, mut longest) = (Duration::ZERO, Duration::ZERO);
    for i in 0..2000 {
        // The slow reader speaks now and then, so the server hears it
        // (its own keepalive is not what this test is about).
        if i % 50 == 0 {
            net.send_raw(slow, b"ping:s\n");
        }
        net.advance(10 * MS);
        if net.is_paused(sender) {
            paused_for += 10 * MS;
            longest = longest.max(paused_for);
        } else {
            paused_for = Duration::ZERO;
        }
    }
    // One pause of many times the keepalive's idle time plus timeout.
    assert!(longest > 10 * S, "the longest pause was {longest:?}");
    assert!(net.is_connected(sender), "{:?}", net.hub().stats());
    assert!(net.is_connected(slow));
    assert_eq!(
        net.hub().stats().closes(HubCloseReason::KeepaliveTimeout),
        0
    );
    // The reader, sped up, gets every message.
    net.set_read_rate(slow, None);
    for _ in 0..200 {
        net.advance(10 * MS);
    }
    assert_eq!(messages(&net.take_events(slow)).len(), 1000);
}
