//! What an embedding application sees of rooms and does with them through
//! the server's [`ServerHandle`](transport_common::ServerHandle): room
//! activity as events, a notice to one room's members, a member taken out
//! of a room, and the listing of every room with its members. Raw
//! connections read what the handle's actions send, byte for byte.
//!
//! The handle's actions are applied by the server's loop at the end of a
//! batch, so a ping barrier ([`RawConn::sync`]) cannot show that an action
//! sent a connection nothing: the ping may be read before the action is
//! applied. Those cases end with a notice to everyone
//! ([`notice_all`](transport_common::ServerHandle::notice_all)) instead:
//! actions are applied in the order they were made, so whatever an
//! earlier action sent a connection comes before that notice.

use std::collections::BTreeMap;

use chat_proto::{ConnId, HubEvent, ServerConfig};

use crate::room_cases::{join, rooms_login};
use crate::server_cases::conn_of;
use crate::wire::{PATIENCE, RawConn};
use crate::{Start, TestServer};

/// Sends `notice:TOKEN` to everyone through the handle and checks that
/// each of `conns` receives nothing before it.
fn nothing_before_a_notice(server: &TestServer, conns: &mut [&mut RawConn], token: &str) {
    server.handle().notice_all(token).unwrap();
    for c in conns {
        assert_eq!(c.skip_to(&format!("notice:{token}")), Vec::<String>::new());
    }
}

/// The application sees room activity through the handle's events: joins
/// (the default room at login too), messages with their room and offset,
/// private messages, parts.
pub fn room_handle_sees_room_activity(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.activity_events = true;
    let server = start(config);
    let events = server.handle().events();
    let mut a = RawConn::login(server.target(), "a");
    join(&mut a, "rust", "a");
    a.send(b"say:rust:hi\npm:a:me\npart:rust\n");
    a.expect("said:rust:0:a:hi");
    a.expect("pm:a:a:me");
    a.expect("parted:rust:a");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while seen.len() < 5 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = events
            .recv_timeout(left)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("only {seen:?} within {PATIENCE:?}"));
        match event {
            HubEvent::Joined { name, room, .. } => seen.push(format!("+{name}@{room}")),
            HubEvent::Parted { name, room, .. } => seen.push(format!("-{name}@{room}")),
            HubEvent::Message {
                from,
                room,
                offset,
                text,
                ..
            } => seen.push(format!("{from}@{room}#{offset}:{text}")),
            HubEvent::PrivateMessage { from, to, text, .. } => {
                seen.push(format!("{from}->{to}:{text}"));
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        ["+a@lobby", "+a@rust", "a@rust#0:hi", "a->a:me", "-a@rust"]
    );
}

/// A server with three logged-in connections: `a` with the rooms
/// capability, `b` and `c` in the seed's form; `a` and `b` have joined
/// `rust`, `c` has not. What they were sent so far is read.
fn three_and_rust(start: Start<'_>) -> (TestServer, [RawConn; 3]) {
    let server = start(ServerConfig::default());
    let mut a = rooms_login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("joined:lobby:b");
    let c = RawConn::login(server.target(), "c");
    a.expect("joined:lobby:c");
    b.expect("join:c");
    join(&mut a, "rust", "a");
    join(&mut b, "rust", "b");
    a.expect("joined:rust:b");
    (server, [a, b, c])
}

/// `notice_room` reaches the room's members and no one else:
/// `room-notice:ROOM:TEXT`, or `notice:TEXT` for a member that reads the
/// default room in the seed's form (PROTOCOL.md, section 5, "Notices").
/// The room is found by its key and named as it was created; a room that
/// does not exist hears nothing; invalid input is refused by the call.
pub fn room_handle_notice_reaches_the_rooms_members_only(start: Start<'_>) {
    let (server, [mut a, mut b, mut c]) = three_and_rust(start);
    let handle = server.handle();

    // A seed-form client reads rooms other than the default one in the
    // room form; c is not in the room.
    handle.notice_room("rust", "meetup at 7").unwrap();
    a.expect("room-notice:rust:meetup at 7");
    b.expect("room-notice:rust:meetup at 7");
    nothing_before_a_notice(&server, &mut [&mut a, &mut b, &mut c], "mark 1");

    handle
        .notice_room("lobby", "the lobby closes soon")
        .unwrap();
    a.expect("room-notice:lobby:the lobby closes soon");
    b.expect("notice:the lobby closes soon");
    c.expect("notice:the lobby closes soon");

    handle.notice_room("RUST", "by its key").unwrap();
    a.expect("room-notice:rust:by its key");
    b.expect("room-notice:rust:by its key");
    nothing_before_a_notice(&server, &mut [&mut a, &mut b, &mut c], "mark 2");

    handle.notice_room("go", "anyone?").unwrap();
    nothing_before_a_notice(&server, &mut [&mut a, &mut b, &mut c], "mark 3");

    assert!(handle.notice_room("no room", "x").is_err());
    assert!(handle.notice_room("rust", "bell\u{7}").is_err());
    assert!(handle.notice_room("rust", &"x".repeat(5000)).is_err());
}

/// `remove_from_room` takes a member out as if it had sent `part:ROOM`:
/// it is told `parted:ROOM:NAME`, the other members see it leave in their
/// form, and it stays connected, out of the room, free to join again. The
/// default room too. A connection that is not in the room hears nothing.
pub fn room_handle_removes_a_member_from_a_room(start: Start<'_>) {
    let (server, [mut a, mut b, mut c]) = three_and_rust(start);
    let handle = server.handle();

    handle
        .remove_from_room(conn_of(&server, "b"), "rust")
        .unwrap();
    b.expect("parted:rust:b");
    a.expect("parted:rust:b");
    nothing_before_a_notice(&server, &mut [&mut a, &mut b, &mut c], "mark 1");
    b.send(b"say:rust:still here?\n");
    b.expect_prefix("err:not-in-room:");
    join(&mut b, "rust", "b");
    a.expect("joined:rust:b");

    // Out of the default room: the seed's form hears `left:`, and `msg:`
    // has nowhere to go until c joins it again.
    handle
        .remove_from_room(conn_of(&server, "c"), "lobby")
        .unwrap();
    c.expect("parted:lobby:c");
    a.expect("parted:lobby:c");
    b.expect("left:c");
    c.send(b"msg:hello?\n");
    c.expect_prefix("err:not-in-room:");

    // Not a member: nothing happens, to anyone.
    handle
        .remove_from_room(conn_of(&server, "c"), "rust")
        .unwrap();
    nothing_before_a_notice(&server, &mut [&mut a, &mut b, &mut c], "mark 2");
    assert!(
        handle
            .remove_from_room(conn_of(&server, "a"), "no room")
            .is_err()
    );
}

/// The handle's room listing, by room: each member's connection and name,
/// in room order.
fn listing(server: &TestServer) -> BTreeMap<String, Vec<(ConnId, String)>> {
    let rooms = server
        .handle()
        .rooms_timeout(PATIENCE)
        .expect("a listing within the patience")
        .expect("the server is running");
    let mut by_name = BTreeMap::new();
    for room in rooms {
        assert!(
            by_name.insert(room.name.clone(), room.members).is_none(),
            "{} listed twice",
            room.name
        );
    }
    by_name
}

/// `rooms` lists every room with its members, in room order (as `who:`
/// lists them), each with its connection; it follows joins, parts and
/// leaves, and says `None` once the server has stopped.
pub fn room_handle_lists_rooms_and_members(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    join(&mut b, "rust", "b");
    join(&mut a, "rust", "a");
    b.expect("joined:rust:a");
    let (id_a, id_b) = (conn_of(&server, "a"), conn_of(&server, "b"));
    let named = |names: Vec<String>| -> Vec<(ConnId, String)> {
        names
            .into_iter()
            .map(|n| (if n == "a" { id_a } else { id_b }, n))
            .collect()
    };
    a.send(b"who:lobby\n");
    let lobby = named(a.listing("members:lobby:", 4096));
    a.send(b"who:rust\n");
    let rust = named(a.listing("members:rust:", 4096));
    assert_eq!(lobby.len(), 2);
    assert_eq!(rust.len(), 2);
    assert_eq!(
        listing(&server),
        BTreeMap::from([
            ("lobby".to_owned(), lobby.clone()),
            ("rust".to_owned(), rust)
        ])
    );

    a.send(b"part:rust\n");
    a.expect("parted:rust:a");
    b.expect("parted:rust:a");
    assert_eq!(
        listing(&server),
        BTreeMap::from([
            ("lobby".to_owned(), lobby),
            ("rust".to_owned(), vec![(id_b, "b".to_owned())]),
        ])
    );
    // The last member leaves the server: the room, empty, is gone.
    b.send(b"bye:done\n");
    b.expect("bye:done");
    a.expect("left:b");
    assert_eq!(
        listing(&server),
        BTreeMap::from([("lobby".to_owned(), vec![(id_a, "a".to_owned())])])
    );

    let handle = server.handle().clone();
    server.shutdown();
    assert_eq!(handle.rooms_timeout(PATIENCE), Ok(None));
}
