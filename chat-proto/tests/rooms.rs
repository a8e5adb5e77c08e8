//! Rooms and private messages, with simulated time: the protocol byte for
//! byte as a person typing into `nc` sees it, every error, every limit,
//! room order and isolation, the `rooms` capability, and the client
//! library's room commands and events.

use std::time::Instant;

use chat_proto::sim::{Network, PeerId};
use chat_proto::{ClientConfig, ErrorCode, Event, HubEvent, ServerConfig};

fn net(config: ServerConfig) -> Network {
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.record();
    net
}

/// A raw connection (an `nc` user) logged in as `name`, seed form.
fn nc(net: &mut Network, name: &str) -> PeerId {
    let peer = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(peer, format!("iam:{name}\n").as_bytes());
    peer
}

/// What `peer` received after `before` bytes.
fn since(net: &Network, peer: PeerId, before: usize) -> String {
    net.received(peer)[before..].to_string()
}

fn mark(net: &Network, peer: PeerId) -> usize {
    net.received(peer).len()
}

#[test]
fn join_say_who_part_byte_for_byte() {
    let mut net = net(ServerConfig::default());
    let a = nc(&mut net, "zhangsan");
    let b = nc(&mut net, "lisi");
    let (ma, mb) = (mark(&net, a), mark(&net, b));
    net.send_raw(a, b"join:rust\n");
    net.send_raw(b, b"join:rust\nsay:rust:anyone here?\n");
    net.send_raw(a, b"who:rust\npart:rust\n");
    let epoch_of = |text: &str| -> String {
        let line = text.lines().find(|l| l.starts_with("room:rust:")).unwrap();
        line.split(':').nth(2).unwrap().to_string()
    };
    let got_a = since(&net, a, ma);
    let epoch = epoch_of(&got_a);
    assert_eq!(
        got_a,
        format!(
            "joined:rust:zhangsan\nroom:rust:{epoch}:0\njoined:rust:lisi\n\
             said:rust:0:lisi:anyone here?\nmembers:rust:zhangsan,lisi\nmembers:rust:\n\
             parted:rust:zhangsan\n"
        )
    );
    assert_eq!(
        since(&net, b, mb),
        format!(
            "joined:rust:lisi\nroom:rust:{epoch}:0\nsaid:rust:0:lisi:anyone here?\n\
             parted:rust:zhangsan\n"
        )
    );
    // The seed's room is untouched by all this.
    assert!(!net.received(a).contains("msg:"));
}

#[test]
fn clients_in_different_rooms_never_see_each_others_messages() {
    let mut net = net(ServerConfig::default());
    let a = nc(&mut net, "a");
    let b = nc(&mut net, "b");
    let c = nc(&mut net, "c");
    net.send_raw(a, b"join:red\n");
    net.send_raw(b, b"join:blue\n");
    net.send_raw(c, b"join:red\njoin:blue\n");
    let (ma, mb) = (mark(&net, a), mark(&net, b));
    net.send_raw(a, b"say:red:only red\n");
    net.send_raw(b, b"say:blue:only blue\n");
    net.send_raw(a, b"say:blue:sneaky\n");
    let got_a = since(&net, a, ma);
    let got_b = since(&net, b, mb);
    assert!(got_a.contains("said:red:0:a:only red"));
    assert!(!got_a.contains("only blue"));
    assert!(got_a.contains("err:not-in-room:"));
    assert!(got_b.contains("said:blue:0:b:only blue"));
    assert!(!got_b.contains("only red"));
    assert!(!got_b.contains("sneaky"));
    let got_c = net.received(c);
    assert!(got_c.contains("only red") && got_c.contains("only blue"));
}

#[test]
fn everyone_in_a_room_sees_its_messages_in_one_order() {
    let mut net = net(ServerConfig::default());
    let peers: Vec<PeerId> = ["a", "b", "c"].iter().map(|n| nc(&mut net, n)).collect();
    for p in &peers {
        net.send_raw(*p, b"join:rust\n");
    }
    let marks: Vec<usize> = peers.iter().map(|p| mark(&net, *p)).collect();
    // Interleaved: each sends five before anyone's are delivered.
    for round in 0..5 {
        for (i, p) in peers.iter().enumerate() {
            net.send_raw(*p, format!("say:rust:{i}-{round}\n").as_bytes());
        }
    }
    let said: Vec<Vec<String>> = peers
        .iter()
        .zip(&marks)
        .map(|(p, m)| {
            since(&net, *p, *m)
                .lines()
                .filter(|l| l.starts_with("said:rust:"))
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(said[0].len(), 15);
    assert_eq!(said[0], said[1]);
    assert_eq!(said[1], said[2]);
    // Offsets count up from the first message.
    for (i, line) in said[0].iter().enumerate() {
        assert!(line.starts_with(&format!("said:rust:{i}:")), "{line}");
    }
}

#[test]
fn every_room_error_is_answered_and_the_connection_goes_on() {
    let mut config = ServerConfig::default();
    config.rooms_per_user = 3;
    config.max_rooms = 4;
    config.room_members = 2;
    let mut net = net(config);
    let a = nc(&mut net, "a");
    let b = nc(&mut net, "b");
    let c = nc(&mut net, "c");
    let m = mark(&net, a);
    net.send_raw(
        a,
        b"say:nowhere:x\nwho:nowhere\npart:nowhere\npm:ghost:x\njoin:one\njoin:one\njoin:two\njoin:three\n",
    );
    let got = since(&net, a, m);
    let codes: Vec<&str> = got
        .lines()
        .filter_map(|l| l.strip_prefix("err:"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "no-such-room",
            "no-such-room",
            "no-such-room",
            "no-such-user",
            "already-in-room",
            "too-many-rooms"
        ],
        "{got}"
    );
    // Rooms per server: lobby, one, two; b makes the fourth, c cannot
    // make a fifth.
    net.send_raw(b, b"join:four\n");
    let m = mark(&net, c);
    net.send_raw(c, b"join:five\njoin:one\n");
    let got = since(&net, c, m);
    assert!(got.starts_with("err:too-many-rooms:"), "{got}");
    assert!(got.contains("joined:one:c"));
    // Members per room: one holds a and c.
    let m = mark(&net, b);
    net.send_raw(b, b"join:one\n");
    let got = since(&net, b, m);
    assert!(
        got.starts_with("err:room-full:one holds 2 members"),
        "{got}"
    );
    // Not in a room: say fails with not-in-room, the default room too.
    let m = mark(&net, c);
    net.send_raw(c, b"say:two:x\npart:lobby\nmsg:x\njoin:lobby\nmsg:back\n");
    let got = since(&net, c, m);
    assert!(got.starts_with("err:not-in-room:"), "{got}");
    assert!(got.contains("parted:lobby:c\nerr:not-in-room:"), "{got}");
    assert!(got.ends_with("msg:c:back\n"), "{got}");
    assert!(net.is_connected(a) && net.is_connected(c));
}

#[test]
fn rooms_come_and_go_unless_persistent() {
    let mut net = net(ServerConfig::default());
    let a = nc(&mut net, "a");
    net.send_raw(a, b"join:tmp\n");
    assert_eq!(net.hub().rooms().count(), 2);
    let before = net.received(a);
    let epoch1 = before
        .lines()
        .find(|l| l.starts_with("room:tmp:"))
        .unwrap()
        .to_string();
    net.send_raw(a, b"part:tmp\n");
    assert_eq!(net.hub().rooms().count(), 1, "an emptied room goes");
    net.send_raw(a, b"join:tmp\n");
    let epoch2 = net
        .received(a)
        .lines()
        .rfind(|l| l.starts_with("room:tmp:"))
        .unwrap()
        .to_string();
    assert_ne!(epoch1, epoch2, "a new room, a new log");
    // The default room stays even when empty; with persistent rooms every
    // room does, and keeps counting its offsets.
    let mut config = ServerConfig::default();
    config.persistent_rooms = true;
    let mut net = self::net(config);
    let a = nc(&mut net, "a");
    net.send_raw(
        a,
        b"join:keep\nsay:keep:1\nsay:keep:2\npart:keep\njoin:keep\n",
    );
    assert_eq!(net.hub().rooms().count(), 2);
    assert!(net.received(a).ends_with(":2\n"), "{}", net.received(a));
    net.send_raw(a, b"part:lobby\n");
    assert_eq!(net.hub().room_members("lobby").unwrap().count(), 0);
}

#[test]
fn private_messages_reach_one_user_and_echo_to_the_sender() {
    let mut net = net(ServerConfig::default());
    let a = nc(&mut net, "a");
    let b = nc(&mut net, "Bob");
    let c = nc(&mut net, "c");
    let (mb, mc) = (mark(&net, b), mark(&net, c));
    let ma = mark(&net, a);
    // Names are matched as look-alikes: `bob` reaches `Bob`.
    net.send_raw(a, b"pm:bob:just between us: ok?\n");
    assert_eq!(since(&net, a, ma), "pm:a:Bob:just between us: ok?\n");
    assert_eq!(since(&net, b, mb), "pm:a:Bob:just between us: ok?\n");
    assert_eq!(since(&net, c, mc), "");
    // To oneself: once.
    let ma = mark(&net, a);
    net.send_raw(a, b"pm:a:note to self\n");
    assert_eq!(since(&net, a, ma), "pm:a:a:note to self\n");
    assert_eq!(net.hub().stats().private_messages, 2);
}

#[test]
fn the_rooms_capability_puts_the_default_room_in_the_room_form() {
    let mut net = net(ServerConfig::default());
    let plain = nc(&mut net, "plain");
    let modern = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(modern, b"cap:rooms,unheard-of\niam:modern\n");
    let got = net.received(modern);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "cap:rooms");
    assert_eq!(lines[1], "ok:modern");
    assert_eq!(lines[2], "joined:lobby:modern");
    assert!(lines[3].starts_with("room:lobby:") && lines[3].ends_with(":0"));
    // Each reads the same message in its own form.
    let (mp, mm) = (mark(&net, plain), mark(&net, modern));
    net.send_raw(plain, b"msg:hello\nwho:\n");
    net.send_raw(modern, b"who:\n");
    assert_eq!(
        since(&net, plain, mp),
        "msg:plain:hello\nusers:plain,modern\nusers:\n"
    );
    assert_eq!(
        since(&net, modern, mm),
        "said:lobby:0:plain:hello\nmembers:lobby:plain,modern\nmembers:lobby:\n"
    );
    // Capabilities come before the login.
    net.send_raw(plain, b"cap:rooms\n");
    assert!(
        net.received(plain)
            .ends_with("err:bad-frame:cap: must come before iam:\n")
    );
}

#[test]
fn presence_in_a_room_stops_above_the_limit() {
    let mut config = ServerConfig::default();
    config.presence_limit = 2;
    let mut net = net(config);
    let a = nc(&mut net, "a");
    let b = nc(&mut net, "b");
    let c = nc(&mut net, "c");
    net.send_raw(a, b"join:r\n");
    net.send_raw(b, b"join:r\n");
    let m = mark(&net, a);
    net.send_raw(c, b"join:r\n");
    // The room would hold 3: a hears nothing of c.
    assert_eq!(since(&net, a, m), "");
    net.send_raw(c, b"part:r\n");
    assert_eq!(since(&net, a, m), "", "3 before c left");
    net.send_raw(b, b"part:r\n");
    assert_eq!(since(&net, a, m), "parted:r:b\n");
}

#[test]
fn a_room_name_too_long_for_small_frames_is_refused() {
    let mut config = ServerConfig::default();
    config.max_frame_len = 256;
    config.outbound_limit = 4096;
    let mut net = net(config);
    let a = nc(&mut net, "a");
    // 30 characters of 4 bytes: 120 bytes; of 3 bytes: 90.
    let long = "\u{20000}".repeat(30);
    net.send_raw(
        a,
        format!("join:{long}\njoin:{}\n", "房".repeat(30)).as_bytes(),
    );
    let got = net.received(a);
    assert!(
        got.contains("err:bad-name:a room name may have at most 118 bytes"),
        "{got}"
    );
    assert!(got.contains(&format!("joined:{}:a", "房".repeat(30))));
}

#[test]
fn room_activity_is_visible_to_the_application() {
    let mut config = ServerConfig::default();
    config.activity_events = true;
    let mut net = net(config);
    let a = nc(&mut net, "a");
    net.send_raw(a, b"join:rust\nsay:rust:hi\npart:rust\n");
    let events = net.take_hub_events();
    let room_events: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            HubEvent::Joined { name, room, .. } => Some(format!("+{name}@{room}")),
            HubEvent::Parted { name, room, .. } => Some(format!("-{name}@{room}")),
            HubEvent::Message {
                room, offset, text, ..
            } => Some(format!("{room}#{offset}:{text}")),
            _ => None,
        })
        .collect();
    assert_eq!(room_events, ["+a@lobby", "+a@rust", "rust#0:hi", "-a@rust"]);
}

#[test]
fn the_application_acts_on_rooms() {
    let mut net = net(ServerConfig::default());
    let plain = nc(&mut net, "plain");
    let a = nc(&mut net, "a");
    net.send_raw(a, b"join:rust\n");
    let (mp, ma) = (mark(&net, plain), mark(&net, a));
    let now = net.now();
    assert!(
        net.hub_mut()
            .notice_room("lobby", now, "lobby closes at 9")
            .unwrap()
    );
    assert!(net.hub_mut().notice_room("rust", now, "be nice").unwrap());
    assert!(!net.hub_mut().notice_room("nowhere", now, "x").unwrap());
    let aid = net.conn(a);
    assert!(net.hub_mut().remove_from_room(aid, "rust", now));
    assert!(!net.hub_mut().remove_from_room(aid, "rust", now));
    net.run();
    assert_eq!(since(&net, plain, mp), "notice:lobby closes at 9\n");
    assert_eq!(
        since(&net, a, ma),
        "notice:lobby closes at 9\nroom-notice:rust:be nice\nparted:rust:a\n"
    );
    assert_eq!(net.hub().rooms_of(aid).collect::<Vec<_>>(), ["lobby"]);
}

/// The client library: room commands, events that carry the room, and
/// rooms joined again after a reconnect.
#[test]
fn the_client_library_speaks_rooms() {
    let mut net = net(ServerConfig::default());
    let mut config = ClientConfig::default();
    config.reconnect = Some(chat_proto::ReconnectPolicy {
        initial: std::time::Duration::from_millis(100),
        max: std::time::Duration::from_secs(1),
        max_attempts: None,
    });
    let a = net.connect(config.clone()).unwrap();
    net.client(a).login("zhangsan").unwrap();
    let b = net.connect(ClientConfig::default()).unwrap();
    net.client(b).login("lisi").unwrap();
    net.run();
    assert_eq!(net.client(a).default_room(), Some("lobby"));
    net.client(a).join("rust").unwrap();
    net.client(b).join("rust").unwrap();
    net.run();
    net.take_events(a);
    net.client(b).say_in("rust", "hi rust").unwrap();
    net.client(b).say("hi lobby").unwrap();
    net.client(b).pm("zhangsan", "psst").unwrap();
    net.client(a).rooms().unwrap();
    net.client(a).who_in("rust").unwrap();
    net.run();
    let events = net.take_events(a);
    let expected = [
        Event::Message {
            room: "rust".into(),
            from: "lisi".into(),
            text: "hi rust".into(),
            offset: Some(0),
            history: false,
        },
        Event::Message {
            room: "lobby".into(),
            from: "lisi".into(),
            text: "hi lobby".into(),
            offset: Some(0),
            history: false,
        },
        Event::Private {
            from: "lisi".into(),
            to: "zhangsan".into(),
            text: "psst".into(),
        },
    ];
    for e in &expected {
        assert!(events.contains(e), "{e:?} not in {events:?}");
    }
    assert!(events.contains(&Event::Rooms {
        rooms: vec![("lobby".into(), 2), ("rust".into(), 2)]
    }));
    assert!(events.contains(&Event::Users {
        room: "rust".into(),
        names: vec!["zhangsan".into(), "lisi".into()]
    }));
    assert_eq!(net.client(a).joined_rooms(), ["rust"]);
    // Dropped: the session comes back, and into its room.
    net.disconnect(a);
    net.advance(std::time::Duration::from_secs(2));
    assert!(net.is_connected(a));
    let events = net.take_events(a);
    assert!(events.contains(&Event::Joined {
        room: "rust".into(),
        name: "zhangsan".into()
    }));
    net.client(b).say_in("rust", "welcome back").unwrap();
    net.run();
    assert!(net.take_events(a).iter().any(|e| matches!(e,
        Event::Message { room, text, .. } if room == "rust" && text == "welcome back")));
    // Errors the client refuses before sending.
    assert!(net.client(a).join("no room").is_err());
    assert!(matches!(
        net.client(a).say_in("rust", &"x".repeat(5000)),
        Err(chat_proto::UsageError::TooLong { .. })
    ));
    let code = ErrorCode::NotInRoom;
    net.client(a).say_in("elsewhere", "x").unwrap();
    net.run();
    assert!(net.take_events(a).iter().any(|e| matches!(e,
        Event::Error { code: c, .. } if *c == ErrorCode::NoSuchRoom)));
    let _ = code;
}
