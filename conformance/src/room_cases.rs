//! What every server must do with rooms and private messages, one function
//! per behaviour, in raw bytes as a person typing into `nc` would send them:
//! the `rooms` capability, `join:`/`part:` with `joined:`/`parted:` and
//! `room:ROOM:EPOCH:NEXT`, `say:` relayed as `said:`, `who:ROOM` and
//! `rooms:` listings, `pm:`, the default room in both forms (the seed's
//! session unchanged byte for byte), every room error, isolation between
//! rooms and one order per room.
//!
//! Where a case must show that something did *not* arrive, it uses a
//! barrier ([`RawConn::sync`]) instead of a timed silence: the sender first
//! reads its own echo (so the server has relayed the message), then the
//! watcher sends `ping:TOKEN` and reads up to its `pong:TOKEN`; anything
//! relayed to the watcher before would have come before the pong.

use std::collections::{BTreeMap, BTreeSet};

use chat_proto::ServerConfig;

use crate::Start;
use crate::wire::RawConn;

/// The default room of the default configuration.
const LOBBY: &str = "lobby";

/// The default configuration without the rate limit, for cases about
/// volume rather than rate.
fn unlimited() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config
}

/// Connects and logs in as `name` with the rooms capability: `cap:rooms`,
/// `ok:NAME`, then the default room in the room form (`joined:` and
/// `room:`).
pub(crate) fn rooms_login(conn_to: crate::wire::Target, name: &str) -> RawConn {
    let mut c = RawConn::connect(conn_to);
    c.send(format!("cap:rooms\niam:{name}\n").as_bytes());
    c.expect("cap:rooms");
    c.expect(&format!("ok:{name}"));
    c.expect(&format!("joined:{LOBBY}:{name}"));
    let (_, next) = room_frame(&c.expect_prefix(&format!("room:{LOBBY}:")), LOBBY);
    assert_eq!(next, 0, "no message was said in the lobby yet");
    c
}

/// The epoch (as sent, lowercase hexadecimal) and next offset of a
/// `room:ROOM:EPOCH:NEXT` frame.
fn room_frame(line: &str, room: &str) -> (String, u64) {
    let rest = line
        .strip_prefix(&format!("room:{room}:"))
        .unwrap_or_else(|| panic!("expected room:{room}:..., got {line:?}"));
    let (epoch, next) = rest.split_once(':').expect("room:ROOM:EPOCH:NEXT");
    let hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    let valid = (1..=16).contains(&epoch.len()) && epoch.bytes().all(hex);
    assert!(valid, "epoch {epoch:?} is not lowercase hexadecimal");
    (epoch.to_owned(), next.parse().expect("a decimal offset"))
}

/// Sends `join:ROOM` for `me`, expects `joined:ROOM:ME` and the `room:`
/// frame; returns its epoch and next offset.
pub(crate) fn join(c: &mut RawConn, room: &str, me: &str) -> (String, u64) {
    c.send(format!("join:{room}\n").as_bytes());
    c.expect(&format!("joined:{room}:{me}"));
    room_frame(&c.expect_prefix(&format!("room:{room}:")), room)
}

/// `rooms:` as a map from room to member count.
fn rooms_of(c: &mut RawConn, max_frame_len: usize) -> BTreeMap<String, usize> {
    c.send(b"rooms:\n");
    c.listing("rooms:", max_frame_len)
        .into_iter()
        .map(|entry| {
            let (room, n) = entry.split_once('=').expect("ROOM=COUNT");
            (room.to_owned(), n.parse().expect("a count"))
        })
        .collect()
}

/// `cap:LIST` is answered with the capabilities the server enabled, before
/// login only; with `rooms` the default room comes in the room form, and
/// others hear of a rooms client as `joined:`.
pub fn room_capability_is_answered(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let addr = server.target();
    let mut a = rooms_login(addr, "a");
    let mut b = RawConn::connect(addr);
    b.send(b"cap:unheard-of,rooms,x-1\n");
    b.expect("cap:rooms");
    let mut c = RawConn::connect(addr);
    c.send(b"cap:unheard-of\ncap:\ncap:Rooms\n");
    c.expect("cap:");
    c.expect("cap:");
    c.expect_prefix("err:bad-frame:");
    // Without the capability the login is the seed's: `ok:` and nothing
    // more.
    c.send(b"iam:c\n");
    c.expect("ok:c");
    assert_eq!(c.sync("c"), Vec::<String>::new());
    a.expect("joined:lobby:c");
    b.send(b"iam:b\n");
    b.expect("ok:b");
    b.expect("joined:lobby:b");
    b.expect_prefix("room:lobby:");
    a.expect("joined:lobby:b");
    c.expect("join:b");
    // Capabilities come before the login.
    a.send(b"cap:rooms\n");
    a.expect("err:bad-frame:cap: must come before iam:");
}

/// `join:ROOM` is answered `joined:ROOM:NAME` and `room:ROOM:EPOCH:NEXT`,
/// and the members hear `joined:`; `part:ROOM` is answered and heard as
/// `parted:ROOM:NAME`. A client without the capability (an `nc` user) gets
/// the same frames for rooms other than the default one.
pub fn room_join_and_part(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut a = rooms_login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("joined:lobby:b");
    let (epoch, next) = join(&mut a, "rust", "a");
    assert_eq!(next, 0);
    let (epoch_b, _) = join(&mut b, "rust", "b");
    assert_eq!(epoch_b, epoch, "one room, one log");
    a.expect("joined:rust:b");
    a.send(b"say:rust:one\nsay:rust:two\n");
    a.expect("said:rust:0:a:one");
    a.expect("said:rust:1:a:two");
    b.expect("said:rust:0:a:one");
    b.expect("said:rust:1:a:two");
    // A later member starts after what was said.
    let mut c = RawConn::login(server.target(), "c");
    let (epoch_c, next) = join(&mut c, "rust", "c");
    assert_eq!((epoch_c.as_str(), next), (epoch.as_str(), 2));
    a.skip_to("joined:rust:c");
    b.skip_to("joined:rust:c");
    b.send(b"part:rust\n");
    b.expect("parted:rust:b");
    a.expect("parted:rust:b");
    c.expect("parted:rust:b");
    // A room that empties goes (it had messages, but this server keeps no
    // history): joined again, it is a new room with a new log.
    let mut config = ServerConfig::default();
    config.history = chat_proto::History::none();
    let server = start(config);
    let mut a = RawConn::login(server.target(), "a");
    let (first, _) = join(&mut a, "tmp", "a");
    a.send(b"say:tmp:x\npart:tmp\n");
    a.expect("said:tmp:0:a:x");
    a.expect("parted:tmp:a");
    assert_eq!(rooms_of(&mut a, 4096), BTreeMap::from([(LOBBY.into(), 1)]));
    let (second, next) = join(&mut a, "tmp", "a");
    assert_ne!(first, second, "a new room, a new epoch");
    assert_eq!(next, 0);
}

/// With persistent rooms an emptied room stays, with its log: whoever joins
/// again goes on from its offsets.
pub fn room_persistent_rooms_keep_their_log(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.persistent_rooms = true;
    config.history = chat_proto::History::none();
    let server = start(config);
    let mut a = RawConn::login(server.target(), "a");
    let (epoch, _) = join(&mut a, "keep", "a");
    a.send(b"say:keep:1\nsay:keep:2\npart:keep\n");
    a.expect("said:keep:0:a:1");
    a.expect("said:keep:1:a:2");
    a.expect("parted:keep:a");
    assert_eq!(rooms_of(&mut a, 4096).get("keep"), Some(&0));
    assert_eq!(join(&mut a, "keep", "a"), (epoch, 2));
    a.send(b"say:keep:3\n");
    a.expect("said:keep:2:a:3");
}

/// `say:ROOM:TEXT` reaches every member, the sender included, as
/// `said:ROOM:OFFSET:FROM:TEXT`, offsets counting up from 0; the text may
/// hold colons and any script.
pub fn room_say_reaches_every_member(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut a = rooms_login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "张三");
    a.expect("joined:lobby:张三");
    join(&mut a, "rust", "a");
    join(&mut b, "rust", "张三");
    a.expect("joined:rust:张三");
    a.send(b"say:rust:hi: there\n");
    b.send("say:rust:你好\n".as_bytes());
    for c in [&mut a, &mut b] {
        let got = [c.line(), c.line()];
        // Both orders are possible; both members see the same one.
        let expected_a = ["said:rust:0:a:hi: there", "said:rust:1:张三:你好"];
        let expected_b = ["said:rust:0:张三:你好", "said:rust:1:a:hi: there"];
        assert!(got == expected_a || got == expected_b, "{got:?}");
    }
    // The default room heard nothing of it.
    let mut lobby_only = RawConn::login(server.target(), "lobby_only");
    a.send(b"say:rust:more\n");
    a.skip_to("said:rust:2:a:more");
    assert_eq!(lobby_only.sync("l"), Vec::<String>::new());
}

/// `who:ROOM` lists the room's members in room order, in frames that fit
/// the maximum frame length, ended by an empty `members:ROOM:`; anyone may
/// ask, and a look-alike of the name is the same room.
pub fn room_who_lists_members(start: Start<'_>) {
    const MAX: usize = 256;
    let mut config = ServerConfig::default();
    config.max_frame_len = MAX;
    let server = start(config);
    let mut members = Vec::new();
    let mut conns = Vec::new();
    for i in 0..12 {
        // 24 characters each: twelve of them need two frames of 256 bytes.
        let name = format!("member{i:02}-{}", "x".repeat(15));
        let mut c = RawConn::login(server.target(), &name);
        join(&mut c, "big", &name);
        members.push(name);
        conns.push(c);
    }
    let mut outsider = RawConn::login(server.target(), "outsider");
    for ask in ["who:big\n", "who:BIG\n"] {
        outsider.send(ask.as_bytes());
        let listed = outsider.listing("members:big:", MAX);
        assert_eq!(listed, members, "room order is join order here");
    }
    // Split over frames: the answer took more than one non-empty frame.
    outsider.send(b"who:big\n");
    let mut frames = 0;
    while outsider.expect_prefix("members:big:") != "members:big:" {
        frames += 1;
    }
    assert!(frames >= 2, "{frames} frames for ~300 bytes of names");
    // A member leaves: the listing follows.
    conns[0].send(b"part:big\n");
    conns[0].skip_to(&format!("parted:big:{}", members[0]));
    outsider.send(b"who:big\n");
    let mut now: Vec<String> = outsider.listing("members:big:", MAX);
    now.sort();
    let mut expected = members[1..].to_vec();
    expected.sort();
    assert_eq!(now, expected);
}

/// `rooms:` lists every room with its member count, in frames that fit the
/// maximum frame length, ended by an empty `rooms:`.
pub fn room_list_names_every_room(start: Start<'_>) {
    const MAX: usize = 256;
    let mut config = ServerConfig::default();
    config.max_frame_len = MAX;
    let server = start(config);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    let mut expected = BTreeMap::from([(LOBBY.to_owned(), 2)]);
    // 30 rooms of 24-character names: several frames of 256 bytes.
    for i in 0..30 {
        let room = format!("a-room-with-a-long-nam{i:02}");
        let (who, name) = if i < 15 { (&mut a, "a") } else { (&mut b, "b") };
        join(who, &room, name);
        expected.insert(room, 1);
    }
    join(&mut b, "a-room-with-a-long-nam00", "b");
    expected.insert("a-room-with-a-long-nam00".into(), 2);
    a.expect("joined:a-room-with-a-long-nam00:b");
    assert_eq!(rooms_of(&mut a, MAX), expected);
}

/// `pm:NAME:TEXT` reaches that user only, as `pm:FROM:TO:TEXT`, echoed to
/// the sender (once, when it is the recipient); a look-alike of the name
/// reaches its holder; nobody else hears it.
pub fn room_private_messages(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut a = RawConn::login(server.target(), "a");
    let mut bob = rooms_login(server.target(), "Bob");
    let mut c = RawConn::login(server.target(), "c");
    a.skip_to("join:c");
    bob.expect("joined:lobby:c");
    a.send(b"pm:bob:just between us: ok?\n");
    a.expect("pm:a:Bob:just between us: ok?");
    bob.expect("pm:a:Bob:just between us: ok?");
    bob.send(b"pm:A:\xe5\xa5\xbd\n");
    bob.expect("pm:Bob:a:好");
    a.expect("pm:Bob:a:好");
    a.send(b"pm:a:note to self\n");
    a.expect("pm:a:a:note to self");
    assert_eq!(a.sync("a"), Vec::<String>::new(), "to oneself: once");
    assert_eq!(c.sync("c"), Vec::<String>::new());
    // Someone who left is no one.
    c.send(b"bye:\n");
    c.expect("bye:");
    c.expect_eof();
    a.skip_to("left:c");
    a.send(b"pm:c:still there?\npm:ghost:x\n");
    a.expect("err:no-such-user:nobody is logged in as c");
    a.expect("err:no-such-user:nobody is logged in as ghost");
}

/// The default room in both forms: a client that asked for nothing new
/// reads it in the seed's frames (`msg:`, `join:`, `left:`, `users:`), a
/// client with the rooms capability in the room form (`said:`, `joined:`,
/// `parted:`, `members:`), and each reaches the other.
pub fn room_default_room_in_both_forms(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut plain = RawConn::login(server.target(), "plain");
    let mut modern = rooms_login(server.target(), "modern");
    plain.expect("join:modern");
    plain.send(b"msg:hello\n");
    plain.expect("msg:plain:hello");
    modern.expect("said:lobby:0:plain:hello");
    modern.send(b"msg:from modern\n");
    modern.expect("said:lobby:1:modern:from modern");
    plain.expect("msg:modern:from modern");
    modern.send(b"say:lobby:said form\n");
    modern.expect("said:lobby:2:modern:said form");
    plain.expect("msg:modern:said form");
    plain.send(b"say:LOBBY:said by plain\n");
    plain.expect("msg:plain:said by plain");
    modern.expect("said:lobby:3:plain:said by plain");
    plain.send(b"who:\n");
    assert_eq!(plain.listing("users:", 4096), ["plain", "modern"]);
    modern.send(b"who:\n");
    assert_eq!(modern.listing("members:lobby:", 4096), ["plain", "modern"]);
    plain.send(b"who:lobby\n");
    assert_eq!(plain.listing("members:lobby:", 4096), ["plain", "modern"]);
    let mut third = RawConn::login(server.target(), "third");
    plain.expect("join:third");
    modern.expect("joined:lobby:third");
    third.send(b"bye:\n");
    third.expect("bye:");
    plain.expect("left:third");
    modern.expect("parted:lobby:third");
}

/// The seed's session (PROTOCOL.md section 8, without keepalive) is
/// unchanged byte for byte while a rooms client is busy in other rooms
/// of the same server.
pub fn room_seed_session_is_unchanged(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut elsewhere = rooms_login(server.target(), "elsewhere");
    join(&mut elsewhere, "rust", "elsewhere");
    elsewhere.send(b"part:lobby\nsay:rust:before\n");
    elsewhere.expect("parted:lobby:elsewhere");
    elsewhere.expect("said:rust:0:elsewhere:before");

    let mut zhangsan = RawConn::connect(server.target());
    zhangsan.send(b"iam:zhangsan\n");
    zhangsan.expect("ok:zhangsan");
    let mut lisi = RawConn::connect(server.target());
    lisi.send(b"iam:lisi\n");
    zhangsan.expect("join:lisi");
    lisi.expect("ok:lisi");
    zhangsan.send(b"msg:did you have dinner\n");
    zhangsan.expect("msg:zhangsan:did you have dinner");
    lisi.expect("msg:zhangsan:did you have dinner");
    elsewhere.send(b"say:rust:meanwhile\n");
    elsewhere.expect("said:rust:1:elsewhere:meanwhile");
    lisi.send("msg:yes, 饺子. you?\nwho:\n".as_bytes());
    zhangsan.expect("msg:lisi:yes, 饺子. you?");
    lisi.send(b"bye:gotta go\n");
    assert_eq!(
        lisi.expect_eof(),
        [
            "msg:lisi:yes, 饺子. you?",
            "users:zhangsan,lisi",
            "users:",
            "bye:gotta go"
        ]
    );
    zhangsan.expect("left:lisi");
    assert_eq!(zhangsan.sync("end"), Vec::<String>::new());
}

/// Every room error is answered with its code, and none is fatal.
pub fn room_errors_are_answered(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.rooms_per_user = 3;
    config.max_rooms = 4;
    config.room_members = 2;
    let server = start(config);
    let mut a = RawConn::login(server.target(), "abcdefghij");
    let name = "abcdefghij";
    a.send(b"say:nowhere:x\nwho:nowhere\npart:nowhere\npm:ghost:x\n");
    a.expect("err:no-such-room:there is no room nowhere");
    a.expect("err:no-such-room:there is no room nowhere");
    a.expect("err:no-such-room:there is no room nowhere");
    a.expect("err:no-such-user:nobody is logged in as ghost");
    join(&mut a, "one", name);
    // Relayed forms too long for the frame limit, though what was sent
    // fits: `said:one:0:abcdefghij:` is longer than `say:one:`, and
    // `pm:abcdefghij:abcdefghij:` than `pm:abcdefghij:`.
    let text = "t".repeat(4080);
    a.send(format!("say:one:{text}\npm:{name}:{text}\n").as_bytes());
    a.expect_prefix("err:too-long:relayed as said:ROOM:OFFSET:NAME:TEXT");
    a.expect_prefix("err:too-long:relayed as pm:FROM:TO:TEXT");
    a.send(b"join:one\njoin:ONE\njoin:lobby\n");
    a.expect("err:already-in-room:already in one");
    a.expect("err:already-in-room:already in ONE");
    a.expect("err:already-in-room:already in lobby");
    join(&mut a, "two", name);
    // Per user: the lobby, one and two.
    a.send(b"join:three\n");
    a.expect("err:too-many-rooms:in 3 rooms already, the most allowed");
    // Per server: the lobby, one, two and three.
    let mut b = RawConn::login(server.target(), "b");
    join(&mut b, "three", "b");
    let mut c = RawConn::login(server.target(), "c");
    c.send(b"join:four\n");
    c.expect("err:too-many-rooms:the server holds 4 rooms, the most allowed");
    // Per room: one holds two members at most (the lobby has no such
    // limit).
    join(&mut c, "one", "c");
    b.expect("join:c");
    b.send(b"join:one\n");
    b.expect("err:room-full:one holds 2 members, the most allowed");
    // Not in a room that exists.
    c.send(b"say:two:x\npart:two\n");
    c.expect("err:not-in-room:not in two: join:two first");
    c.expect("err:not-in-room:not in two: join:two first");
    // Out of the default room, `msg:` is not in a room either; back in, it
    // is.
    c.send(b"part:lobby\nmsg:x\n");
    c.expect("parted:lobby:c");
    c.expect("err:not-in-room:not in lobby: join:lobby first");
    c.send(b"join:lobby\nmsg:back\n");
    c.skip_to("msg:c:back");
    // Everyone is still served.
    for (conn, token) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
        conn.sync(token);
    }
}

/// Room frames before login get `not-logged-in`; a known tag whose payload
/// breaks its rule is `bad-frame`; the connection goes on.
pub fn room_frames_need_a_login_and_a_grammar(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut a = RawConn::connect(server.target());
    a.send(b"join:rust\npart:rust\nsay:rust:x\nwho:rust\nrooms:\npm:x:y\n");
    for _ in 0..6 {
        a.expect("err:not-logged-in:log in with iam:NAME first");
    }
    a.send(b"say:rust\npm:lisi\nrooms:x\nresume:rust:1\n");
    for _ in 0..4 {
        a.expect_prefix("err:bad-frame:");
    }
    a.send(b"iam:a\n");
    a.expect("ok:a");
}

/// Room names follow the rules of user names (1 to 32 letters, digits,
/// `_`, `-`, `.`), must fit the frame limit in the longest frame that
/// carries them, and look-alike names are the same room, called by the
/// spelling of whoever made it.
pub fn room_names_and_look_alikes(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.max_frame_len = 256;
    let server = start(config);
    let mut a = RawConn::login(server.target(), "a");
    let long = "x".repeat(33);
    for bad in ["a b", "", "a,b", "a:b", long.as_str(), "tab\there"] {
        a.send(format!("join:{bad}\n").as_bytes());
        a.expect_prefix("err:bad-frame:");
    }
    a.send(b"say:a b:x\nwho:a,b\npart:\n");
    for _ in 0..3 {
        a.expect_prefix("err:bad-frame:");
    }
    // 30 characters of 4 bytes do not fit 256-byte frames with the longest
    // user name; 30 of 3 bytes do.
    a.send(format!("join:{}\n", "\u{20000}".repeat(30)).as_bytes());
    a.expect("err:bad-name:a room name may have at most 118 bytes here");
    join(&mut a, &"房".repeat(30), "a");
    let (epoch, _) = join(&mut a, "Rust", "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    b.send(b"join:RUST\n");
    b.expect("joined:Rust:b");
    assert_eq!(room_frame(&b.expect_prefix("room:Rust:"), "Rust").0, epoch);
    a.expect("joined:Rust:b");
    // Fullwidth letters are the same name again.
    b.send("join:ｒｕｓｔ\nsay:rUsT:hi\n".as_bytes());
    b.expect("err:already-in-room:already in ｒｕｓｔ");
    b.expect("said:Rust:0:b:hi");
    a.expect("said:Rust:0:b:hi");
    let rooms = rooms_of(&mut b, 256);
    assert_eq!(rooms.get("Rust"), Some(&2));
    assert!(!rooms.contains_key("RUST") && !rooms.contains_key("rust"));
}

/// Two clients in different rooms never see each other's messages; a
/// member of both sees both, each in its order; the default room sees
/// neither.
pub fn room_isolation(start: Start<'_>) {
    let server = start(unlimited());
    let addr = server.target();
    let mut red = rooms_login(addr, "red");
    let mut blue = rooms_login(addr, "blue");
    let mut both = rooms_login(addr, "both");
    let mut lobby = RawConn::login(addr, "lobby_only");
    // Presence frames out of the way, before and after the joins.
    for (c, token) in [(&mut red, "r0"), (&mut blue, "b0"), (&mut both, "o0")] {
        c.sync(token);
    }
    join(&mut red, "red", "red");
    join(&mut blue, "blue", "blue");
    join(&mut both, "red", "both");
    join(&mut both, "blue", "both");
    for (c, token) in [(&mut red, "r1"), (&mut blue, "b1"), (&mut both, "o1")] {
        c.sync(token);
    }
    let red_frames: String = (0..10).map(|i| format!("say:red:r{i}\n")).collect();
    let blue_frames: String = (0..10).map(|i| format!("say:blue:b{i}\n")).collect();
    red.send(red_frames.as_bytes());
    blue.send(blue_frames.as_bytes());
    red.send(b"say:blue:sneaky\n");
    let red_got: Vec<String> = (0..11).map(|_| red.line()).collect();
    let blue_got: Vec<String> = (0..10).map(|_| blue.line()).collect();
    let red_expected: Vec<String> = (0..10)
        .map(|i| format!("said:red:{i}:red:r{i}"))
        .chain(["err:not-in-room:not in blue: join:blue first".to_owned()])
        .collect();
    let blue_expected: Vec<String> = (0..10)
        .map(|i| format!("said:blue:{i}:blue:b{i}"))
        .collect();
    assert_eq!(red_got, red_expected);
    assert_eq!(blue_got, blue_expected);
    // Both rooms relayed everything: nothing more for anyone.
    assert_eq!(red.sync("r2"), Vec::<String>::new());
    assert_eq!(blue.sync("b2"), Vec::<String>::new());
    assert_eq!(lobby.sync("l"), Vec::<String>::new());
    let got = both.sync("o2");
    let of = |room: &str| -> Vec<&String> {
        got.iter()
            .filter(|l| l.starts_with(&format!("said:{room}:")))
            .collect()
    };
    assert_eq!(of("red"), red_expected[..10].iter().collect::<Vec<_>>());
    assert_eq!(of("blue"), blue_expected.iter().collect::<Vec<_>>());
    assert_eq!(got.len(), 20, "{got:?}");
}

/// Everyone in a room sees its messages in one order, with offsets counting
/// up without gaps, and each sender's in the order sent: four senders
/// writing at once, one of them without the capability.
pub fn room_order_is_one_order(start: Start<'_>) {
    const ROUNDS: usize = 5;
    const PER_WRITE: usize = 5;
    let server = start(unlimited());
    let mut conns: Vec<RawConn> = Vec::new();
    let names = ["s0", "s1", "s2", "s3"];
    for (i, name) in names.iter().enumerate() {
        let mut c = if i == 3 {
            RawConn::login(server.target(), name)
        } else {
            rooms_login(server.target(), name)
        };
        join(&mut c, "order", name);
        conns.push(c);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        // Presence of those who came later, out of the way.
        c.sync(&format!("s{i}"));
    }
    for round in 0..ROUNDS {
        for (i, c) in conns.iter_mut().enumerate() {
            let frames: String = (0..PER_WRITE)
                .map(|k| format!("say:order:{i}-{}\n", round * PER_WRITE + k))
                .collect();
            c.send(frames.as_bytes());
        }
    }
    let total = names.len() * ROUNDS * PER_WRITE;
    let seen: Vec<Vec<String>> = conns
        .iter_mut()
        .map(|c| (0..total).map(|_| c.line()).collect())
        .collect();
    for other in &seen[1..] {
        assert_eq!(other, &seen[0], "members saw different orders");
    }
    let mut next = [0usize; 4];
    for (offset, line) in seen[0].iter().enumerate() {
        let rest = line
            .strip_prefix(&format!("said:order:{offset}:"))
            .unwrap_or_else(|| panic!("offset {offset}: {line:?}"));
        let (from, text) = rest.split_once(':').expect("FROM:TEXT");
        let i: usize = from[1..].parse().expect("s<i>");
        assert_eq!(
            text,
            format!("{i}-{}", next[i]),
            "sender {from} out of order"
        );
        next[i] += 1;
    }
    assert!(next.iter().all(|&n| n == ROUNDS * PER_WRITE));
}

/// Above `presence_limit` members, `joined:` and `parted:` are not sent in
/// a room, as in the default room.
pub fn room_presence_limit(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.presence_limit = 2;
    let server = start(config);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    let mut c = RawConn::login(server.target(), "c");
    join(&mut a, "r", "a");
    join(&mut b, "r", "b");
    a.expect("joined:r:b");
    // The room would hold 3: nobody hears c come or go.
    join(&mut c, "r", "c");
    c.send(b"part:r\n");
    c.expect("parted:r:c");
    // It holds 2 before b leaves: a hears it.
    b.send(b"part:r\n");
    b.expect("parted:r:b");
    assert_eq!(a.sync("a"), ["parted:r:b"]);
}

/// Leaving the server leaves every room: the others hear it in each room
/// in its form, and the listings follow.
pub fn room_leaving_the_server_leaves_every_room(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut a = rooms_login(server.target(), "a");
    let mut b = rooms_login(server.target(), "b");
    let mut plain = RawConn::login(server.target(), "plain");
    a.sync("a0");
    b.sync("b0");
    for (c, name) in [(&mut a, "a"), (&mut b, "b")] {
        join(c, "rust", name);
        join(c, "go", name);
    }
    a.sync("a1");
    b.close();
    let heard: BTreeSet<String> = (0..3).map(|_| a.line()).collect();
    let expected = ["parted:go:b", "parted:lobby:b", "parted:rust:b"];
    assert_eq!(heard, expected.map(String::from).into());
    plain.skip_to("left:b");
    a.send(b"who:rust\n");
    assert_eq!(a.listing("members:rust:", 4096), ["a"]);
    assert_eq!(
        rooms_of(&mut a, 4096),
        BTreeMap::from([("go".into(), 1), (LOBBY.into(), 2), ("rust".into(), 1)])
    );
}
