//! What every server must do, one function per behaviour PROTOCOL.md
//! promises. Each takes the transport's `start` function, starts a server
//! with the configuration the case needs, and talks to it in raw bytes.

use std::time::{Duration, Instant};

use chat_proto::{
    ConnId, ErrorCode, HubCloseReason, HubEvent, Keepalive, LoginMode, RateLimit, ServerConfig,
};
use transport_common::Events;

use crate::wire::{PATIENCE, RawConn};
use crate::{Start, TestServer};

fn default(start: Start<'_>) -> TestServer {
    start(ServerConfig::default())
}

/// The default configuration without the rate limit, for cases about
/// volume rather than rate (the limit would only make them slower).
fn unlimited() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config
}

/// `iam:` is answered `ok:`; others see `join:`.
pub fn login_ok(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "zhangsan");
    let _b = RawConn::login(server.target(), "lisi");
    a.expect("join:lisi");
}

/// A taken name is refused without closing; another name then works.
pub fn login_name_taken(start: Start<'_>) {
    let server = default(start);
    let _a = RawConn::login(server.target(), "zhangsan");
    let mut b = RawConn::connect(server.target());
    b.send(b"iam:zhangsan\n");
    b.expect_prefix("err:name-taken:");
    b.send(b"iam:lisi\n");
    b.expect("ok:lisi");
}

/// Invalid names are refused with `bad-name`; the connection goes on.
pub fn login_invalid_names(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::connect(server.target());
    let long = "x".repeat(33);
    for bad in ["zhang san", "", "a,b", ":secret", long.as_str()] {
        a.send(format!("iam:{bad}\n").as_bytes());
        a.expect_prefix("err:bad-name:");
    }
    // A colon starts a secret: a server without accounts refuses it
    // rather than take a name the client did not mean.
    a.send(b"iam:a:b\n");
    a.expect("err:login-refused:this server has no accounts: log in with iam:NAME");
    a.send(b"iam:ok_name\n");
    a.expect("ok:ok_name");
}

/// Unicode names log in and are announced byte for byte.
pub fn login_unicode_name(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "zhangsan");
    let mut b = RawConn::login(server.target(), "张三");
    a.expect("join:张三");
    b.send("msg:你好\n".as_bytes());
    b.expect("msg:张三:你好");
    a.expect("msg:张三:你好");
}

/// `msg:` reaches every client, the sender too, in one order for all.
pub fn messages_echo_in_one_order(start: Start<'_>) {
    let server = default(start);
    let mut conns: Vec<RawConn> = ["a", "b", "c"]
        .iter()
        .map(|n| RawConn::login(server.target(), n))
        .collect();
    conns[0].skip_to("join:c");
    conns[1].skip_to("join:c");
    for round in 0..20 {
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.send(format!("msg:{i}-{round}\n").as_bytes());
        }
    }
    let seen: Vec<Vec<String>> = conns
        .iter_mut()
        .map(|c| (0..60).map(|_| c.line()).collect())
        .collect();
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let own: Vec<&String> = seen[2].iter().filter(|l| l.starts_with("msg:c:")).collect();
    let expected: Vec<String> = (0..20).map(|r| format!("msg:c:2-{r}")).collect();
    assert_eq!(own, expected.iter().collect::<Vec<_>>());
}

/// A busy room loses nothing: many clients write at once, in many small
/// writes, and every client receives every message, each sender's in order.
pub fn busy_room_loses_nothing(start: Start<'_>) {
    const CLIENTS: usize = 30;
    const WRITES: usize = 10;
    const PER_WRITE: usize = 10;
    let server = default(start);
    let mut conns: Vec<RawConn> = (0..CLIENTS)
        .map(|i| RawConn::login(server.target(), &format!("c{i}")))
        .collect();
    let last = format!("join:c{}", CLIENTS - 1);
    for conn in &mut conns[..CLIENTS - 1] {
        conn.skip_to(&last);
    }
    for write in 0..WRITES {
        for conn in &mut conns {
            let frames: String = (0..PER_WRITE)
                .map(|k| format!("msg:{}\n", write * PER_WRITE + k))
                .collect();
            conn.send(frames.as_bytes());
        }
    }
    let per_sender = WRITES * PER_WRITE;
    for conn in &mut conns {
        let mut next = vec![0usize; CLIENTS];
        for _ in 0..CLIENTS * per_sender {
            let line = conn.line();
            let rest = line.strip_prefix("msg:c").expect("only messages arrive");
            let (from, seq) = rest.split_once(':').expect("msg:FROM:TEXT");
            let (from, seq): (usize, usize) = (from.parse().unwrap(), seq.parse().unwrap());
            assert_eq!(seq, next[from], "sender c{from} out of order or lost");
            next[from] += 1;
        }
        assert!(next.iter().all(|&n| n == per_sender));
    }
}

/// A frame sent one byte at a time, a character split across reads.
pub fn frame_byte_by_byte(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::connect(server.target());
    a.send_bytewise("iam:张三\nmsg:你好 world\n".as_bytes());
    a.expect("ok:张三");
    a.expect("msg:张三:你好 world");
}

/// Many frames in one write.
pub fn many_frames_in_one_write(start: Start<'_>) {
    let server = start(unlimited());
    let mut a = RawConn::connect(server.target());
    let mut bytes = b"iam:batch\n".to_vec();
    for i in 0..500 {
        bytes.extend_from_slice(format!("msg:{i}\n").as_bytes());
    }
    a.send(&bytes);
    a.expect("ok:batch");
    for i in 0..500 {
        a.expect(&format!("msg:batch:{i}"));
    }
}

/// CR LF endings are accepted; the server answers with LF only.
pub fn crlf_is_accepted(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::connect(server.target());
    a.send(b"iam:telnet\r\n\r\nmsg:hi\r\n");
    a.expect("ok:telnet");
    a.expect("msg:telnet:hi");
}

/// An overlong frame is refused and skipped; the next one works.
pub fn overlong_frame_then_normal(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "long");
    let mut bytes = b"msg:".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 10_000));
    bytes.extend_from_slice(b"\nmsg:after\n");
    a.send(&bytes);
    a.expect("err:too-long:frame longer than 4096 bytes");
    a.expect("msg:long:after");
}

/// Invalid UTF-8 is refused; the connection goes on.
pub fn invalid_utf8(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "u");
    a.send(b"msg:\xff\xfe\nmsg:\xe4\xbd\nmsg:ok\n");
    a.expect_prefix("err:bad-utf8:");
    a.expect_prefix("err:bad-utf8:");
    a.expect("msg:u:ok");
}

/// Control characters (C0, DEL, C1, a bare CR) are refused.
pub fn control_characters(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "c");
    a.send(b"msg:a\x1b[2Jb\nmsg:a\rb\nmsg:a\x7fb\nmsg:a\xc2\x85b\nmsg:tab\tok\n");
    for _ in 0..4 {
        a.expect("err:bad-frame:control character in frame");
    }
    a.expect("msg:c:tab\tok");
}

/// An unknown tag is a non-fatal error; so is a frame without a tag.
pub fn unknown_tag(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "t");
    a.send(b"nick:x\nhello there\nmsg:still\n");
    a.expect("err:unknown-tag:unknown tag \"nick\"");
    a.expect("err:bad-frame:frame does not start with tag:");
    a.expect("msg:t:still");
}

/// `ping:` is answered with `pong:` and the same token, before login too.
pub fn ping_pong(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::connect(server.target());
    a.send(b"ping:abc-123\nping:\n");
    a.expect("pong:abc-123");
    a.expect("pong:");
}

/// `who:` lists everyone, then an empty `users:`.
pub fn who_lists_users(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "a");
    let _b = RawConn::login(server.target(), "b");
    let _c = RawConn::login(server.target(), "c");
    a.skip_to("join:c");
    a.send(b"who:\n");
    let mut names = Vec::new();
    loop {
        let line = a.expect_prefix("users:");
        if line == "users:" {
            break;
        }
        names.extend(line["users:".len()..].split(',').map(String::from));
    }
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
}

/// `bye:` is answered with `bye:`, then the server closes; others see
/// `left:`.
pub fn bye_closes_and_others_see_left(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    b.send(b"bye:gotta go\n");
    b.expect("bye:gotta go");
    assert!(b.expect_eof().is_empty());
    a.expect("left:b");
}

/// `msg:` and `who:` before login get `not-logged-in`; a second `iam:`
/// gets `already-logged-in`; the connection goes on through all of them.
pub fn login_state_errors(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::connect(server.target());
    a.send(b"msg:too early\nwho:\n");
    a.expect_prefix("err:not-logged-in:");
    a.expect_prefix("err:not-logged-in:");
    a.send(b"iam:zhangsan\niam:lisi\nmsg:in\n");
    a.expect("ok:zhangsan");
    a.expect_prefix("err:already-logged-in:");
    a.expect("msg:zhangsan:in");
}

/// A known tag whose payload breaks its rule is `bad-frame`.
pub fn bad_payloads(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "p");
    a.send(b"who:x y\nping:a b\nmsg:fine\n");
    a.expect_prefix("err:bad-frame:");
    a.expect_prefix("err:bad-frame:");
    a.expect("msg:p:fine");
}

/// A `msg:` that fits but whose relayed form would not is `too-long`.
pub fn relayed_message_too_long(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "abcdefghij");
    // 4,095 bytes sent, within the default 4,096; relayed as
    // `msg:abcdefghij:` + text + LF, 4,106 bytes.
    let text = "t".repeat(4090);
    a.send(format!("msg:{text}\nmsg:short\n").as_bytes());
    a.expect_prefix("err:too-long:");
    a.expect("msg:abcdefghij:short");
}

/// Above `presence_limit`, `join:` and `left:` are not broadcast.
pub fn presence_limit(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.presence_limit = 2;
    let server = start(config);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    // The room would hold 3: no `join:c`.
    let mut c = RawConn::login(server.target(), "c");
    // It held 3 before c left: no `left:c`.
    c.send(b"bye:\n");
    c.expect("bye:");
    c.expect_eof();
    // It holds 2 before b leaves: `left:b`.
    b.send(b"bye:\n");
    b.expect("bye:");
    b.expect_eof();
    a.send(b"msg:probe\n");
    assert_eq!(a.line(), "left:b");
    a.expect("msg:a:probe");
}

/// `who:` counts against the rate limit like `msg:`: the second waits for
/// its token.
pub fn rate_limit_counts_who(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.rate_limit = Some(RateLimit {
        per_second: 2,
        burst: 1,
    });
    let server = start(config);
    let mut a = RawConn::login(server.target(), "w");
    let sent = Instant::now();
    a.send(b"who:\nwho:\n");
    a.expect("users:w");
    a.expect("users:");
    a.expect("users:w");
    a.expect("users:");
    assert!(sent.elapsed() >= Duration::from_millis(400), "not slowed");
}

/// Frames sent before `bye:` are answered before the server's `bye:`.
pub fn frames_before_bye_are_answered(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "x");
    a.send(b"msg:last words\nping:p\nbye:done\n");
    assert_eq!(a.expect_eof(), ["msg:x:last words", "pong:p", "bye:done"]);
}

/// A dropped connection leaves the room.
pub fn disconnect_sends_left(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "a");
    let b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    b.close();
    a.expect("left:b");
}

/// A silent client is pinged; answering keeps it, silence drops it.
pub fn keepalive_ping_and_drop(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.keepalive = Keepalive::new(Duration::from_millis(300), Duration::from_millis(1000));
    let server = start(config);
    let mut alive = RawConn::login(server.target(), "alive");
    let mut silent = RawConn::login(server.target(), "silent");
    alive.expect("join:silent");
    // `alive` answers every ping until the silent one is dropped.
    let mut pings = 0;
    loop {
        let line = alive.line();
        if let Some(token) = line.strip_prefix("ping:") {
            alive.send(format!("pong:{token}\n").as_bytes());
            pings += 1;
            continue;
        }
        assert_eq!(line, "left:silent");
        break;
    }
    assert!(pings >= 2, "pinged {pings} times in 1.3 s of idleness");
    // The silent one was pinged once, then told and dropped.
    let lines = silent.expect_eof();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("ping:"), "{lines:?}");
    assert_eq!(lines[1], "err:timeout:no answer to ping");
    // `alive` is still served.
    alive.send(b"msg:still here\n");
    alive.skip_to("msg:alive:still here");
}

/// A connection that does not log in in time is told and dropped.
pub fn login_timeout(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.login_timeout = Duration::from_millis(300);
    let server = start(config);
    let mut lurker = RawConn::connect(server.target());
    let started = Instant::now();
    let lines = lurker.expect_eof_within(Duration::from_secs(3));
    assert_eq!(lines, ["err:timeout:no login in time"]);
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A prompt login is unaffected.
    let mut prompt = RawConn::login(server.target(), "prompt");
    prompt.expect_silence(Duration::from_millis(500));
}

/// A client that never reads is dropped once it makes no progress for the
/// write timeout, while the others keep chatting.
pub fn slow_consumer_is_dropped(start: Start<'_>) {
    let mut config = unlimited();
    config.room_backlog = 1 << 20;
    config.history.bytes = config.room_backlog / 4;
    config.write_timeout = Duration::from_secs(1);
    let server = start(config);
    let mut sloth = RawConn::login(server.target(), "sloth");
    let mut talker = RawConn::login(server.target(), "talker");
    let mut listener = RawConn::login(server.target(), "listener");
    talker.expect("join:listener");
    let text = "z".repeat(4000);
    let frame = format!("msg:{text}\n");
    let expected = format!("msg:talker:{text}");
    // 16 MB through the room: far more than socket buffers and the room's
    // backlog bound. The talker is held back while the sloth holds the
    // room, until the sloth is closed for making no progress; somewhere in
    // it the others hear that the sloth left.
    let mut left_seen = [false, false];
    for _ in 0..4000 {
        talker.send(frame.as_bytes());
        for (conn, seen) in [&mut talker, &mut listener].into_iter().zip(&mut left_seen) {
            let mut line = conn.line();
            if line == "left:sloth" && !*seen {
                *seen = true;
                line = conn.line();
            }
            assert_eq!(line, expected);
        }
    }
    assert_eq!(left_seen, [true, true], "the sloth was never dropped");
    let lines = sloth.expect_eof_within(Duration::from_secs(10));
    assert!(lines.len() < 4000, "the sloth got everything: no bound");
    // The explanation is sent if the socket takes it before the server
    // gives up on flushing (`close_linger`); nothing else may appear.
    let odd: Vec<&String> = lines
        .iter()
        .filter(|l| **l != expected && !l.starts_with("join:"))
        .collect();
    assert!(
        odd.is_empty()
            || odd == [&lines[lines.len() - 1]] && odd[0].starts_with("err:slow-consumer:"),
        "unexpected lines: {odd:?}"
    );
    talker.send(b"msg:still here\n");
    listener.skip_to("msg:talker:still here");
}

/// Connections past the limit are refused with `server-full`.
pub fn server_full(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    let server = start(config);
    let _a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    let mut c = RawConn::connect(server.target());
    assert_eq!(c.expect_eof(), ["err:server-full:at most 2 connections"]);
    b.send(b"bye:\n");
    b.expect_eof();
    // Room again.
    let _d = RawConn::login(server.target(), "d");
}

/// Messages beyond the rate limit wait for their turn (the sender is
/// slowed); nothing is refused and nothing is lost.
pub fn rate_limit(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.rate_limit = Some(RateLimit {
        per_second: 5,
        burst: 3,
    });
    let server = start(config);
    let mut a = RawConn::login(server.target(), "r");
    let sent = Instant::now();
    a.send(b"msg:1\nmsg:2\nmsg:3\nmsg:4\nmsg:5\nping:x\n");
    let lines: Vec<String> = (0..6).map(|_| a.line()).collect();
    assert_eq!(
        lines,
        [
            "msg:r:1", "msg:r:2", "msg:r:3", "msg:r:4", "msg:r:5", "pong:x"
        ]
    );
    // Two over the burst at 5 a second: at least 400 ms.
    assert!(sent.elapsed() >= Duration::from_millis(350), "not slowed");
}

/// A connection arriving while the server shuts down is answered with
/// `bye:` and closed. A reader stalled behind megabytes of output keeps the
/// server in its grace period meanwhile.
pub fn late_arrival_during_shutdown_gets_bye(start: Start<'_>) {
    const FRAMES: usize = 4000;
    let mut config = unlimited();
    // Everything handed to the stalled reader's socket at once: the server
    // cannot finish its flush, and holds on for the close linger.
    config.room_backlog = 64 << 20;
    config.history.bytes = config.room_backlog / 4;
    config.send_window = 32 << 20;
    config.outbound_limit = 64 << 20;
    let server = start(config);
    let addr = server.target();
    let mut stalled = RawConn::login(addr, "stalled");
    let mut sender = RawConn::login(addr, "sender");
    stalled.expect("join:sender");
    // 16 MB for the stalled reader, more than the kernel buffers between
    // it and the server hold; the sender reads its own copy to know the
    // hub has queued everything.
    let text = "z".repeat(4000);
    let flood: String = (0..FRAMES).map(|_| format!("msg:{text}\n")).collect();
    sender.send(flood.as_bytes());
    for _ in 0..FRAMES {
        // 16 MB each way, over TLS in a debug build on a loaded machine:
        // a longer wait than PATIENCE for a line (still only a bound).
        let line = sender
            .try_line(6 * PATIENCE)
            .expect("the sender's own copy");
        assert_eq!(line.len(), "msg:sender:".len() + text.len());
    }
    // An anonymous connection sees the shutdown begin (it gets no room
    // messages, so its `bye:` comes at once).
    let mut witness = RawConn::connect(addr);
    witness.send(b"ping:w\n");
    witness.expect("pong:w");
    let stopping = std::thread::spawn(move || server.shutdown());
    assert_eq!(witness.expect_eof(), ["bye:server shutting down"]);

    let mut late = RawConn::connect(addr);
    assert_eq!(late.expect_eof(), ["bye:server shutting down"]);

    drop(stalled);
    drop(sender);
    stopping.join().expect("shutdown");
}

/// Shutdown sends `bye:` to every client and closes.
pub fn graceful_shutdown(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::connect(server.target());
    b.send(b"ping:1\n");
    b.expect("pong:1");
    server.shutdown();
    assert_eq!(a.expect_eof(), ["bye:server shutting down"]);
    assert_eq!(b.expect_eof(), ["bye:server shutting down"]);
}

/// The id of the logged-in connection called `name`, from the handle.
pub(crate) fn conn_of(server: &TestServer, name: &str) -> ConnId {
    server
        .handle()
        .logged_in()
        .into_iter()
        .find(|(_, n)| n == name)
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("{name} is not logged in"))
}

/// The next event matching `pred`, skipping others.
fn wait_event(events: &Events, what: &str, pred: impl Fn(&HubEvent) -> bool) -> HubEvent {
    wait_event_within(events, what, PATIENCE, pred)
}

/// The next event matching `pred` within `patience`, skipping others.
pub(crate) fn wait_event_within(
    events: &Events,
    what: &str,
    patience: Duration,
    pred: impl Fn(&HubEvent) -> bool,
) -> HubEvent {
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Some(event)) if pred(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("no {what} within {patience:?}"),
        }
    }
}

/// A kick sends `err:kicked:REASON`, closes, and the others see `left:`.
pub fn handle_kick(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    let handle = server.handle();
    assert!(handle.kick(conn_of(&server, "b"), "a\nforged").is_err());
    handle.kick(conn_of(&server, "b"), "flooding").unwrap();
    assert_eq!(b.expect_eof(), ["err:kicked:flooding"]);
    a.expect("left:b");
    assert_eq!(handle.stats().closes(HubCloseReason::Kicked), 1);
}

/// `notice:TEXT` to one connection, then to everyone logged in.
pub fn handle_notices(start: Start<'_>) {
    let server = default(start);
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    let mut anonymous = RawConn::connect(server.target());
    a.expect("join:b");
    let handle = server.handle();
    handle.notice(conn_of(&server, "a"), "just for a").unwrap();
    a.expect("notice:just for a");
    handle.notice_all("maintenance at noon").unwrap();
    a.expect("notice:maintenance at noon");
    b.expect("notice:maintenance at noon");
    assert!(handle.notice_all(&"x".repeat(5000)).is_err());
    assert!(handle.notice_all("bell\u{7}").is_err());
    anonymous.expect_silence(Duration::from_millis(200));
}

/// With logins decided by the application, a request is seen as an event
/// and answered `ok:` once approved.
pub fn handle_login_approved(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.login = LoginMode::Application;
    let server = start(config);
    let events = server.handle().events();
    let mut a = RawConn::connect(server.target());
    a.send(b"iam:zhangsan\n");
    let HubEvent::LoginRequested { conn, name, .. } = wait_event(&events, "login request", |e| {
        matches!(e, HubEvent::LoginRequested { .. })
    }) else {
        unreachable!()
    };
    assert_eq!(name, "zhangsan");
    a.expect_silence(Duration::from_millis(100));
    server.handle().approve_login(conn);
    a.expect("ok:zhangsan");
    wait_event(&events, "login", |e| matches!(e, HubEvent::LoggedIn { .. }));
    assert_eq!(server.handle().logged_in(), [(conn, "zhangsan".to_owned())]);
}

/// A refused login is answered `err:login-refused:...`, and the name is
/// free again for the next one to ask.
pub fn handle_login_refused_frees_the_name(start: Start<'_>) {
    let mut config = ServerConfig::default();
    config.login = LoginMode::Application;
    let server = start(config);
    let handle = server.handle();
    let events = handle.events();
    let requested = |e: &HubEvent| matches!(e, HubEvent::LoginRequested { .. });
    let mut a = RawConn::connect(server.target());
    a.send(b"iam:zhangsan\n");
    let HubEvent::LoginRequested { conn, .. } = wait_event(&events, "request", requested) else {
        unreachable!()
    };
    handle
        .refuse_login(conn, ErrorCode::LoginRefused, "wrong password")
        .unwrap();
    a.expect("err:login-refused:wrong password");
    assert!(handle.logged_in().is_empty());
    let mut b = RawConn::connect(server.target());
    b.send(b"iam:zhangsan\n");
    let HubEvent::LoginRequested { conn, .. } = wait_event(&events, "request", requested) else {
        unreachable!()
    };
    handle.approve_login(conn);
    b.expect("ok:zhangsan");
}

/// `logged_in()` follows logins and leaves; the counters follow the work.
pub fn handle_logged_in_and_stats(start: Start<'_>) {
    let server = default(start);
    let handle = server.handle();
    assert!(handle.logged_in().is_empty());
    let mut a = RawConn::login(server.target(), "a");
    let mut b = RawConn::login(server.target(), "b");
    a.expect("join:b");
    let mut names: Vec<String> = handle.logged_in().into_iter().map(|(_, n)| n).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    b.send(b"msg:hi\nbye:\n");
    b.expect("msg:b:hi");
    b.expect("bye:");
    a.expect("msg:b:hi");
    a.expect("left:b");
    let left: Vec<String> = handle.logged_in().into_iter().map(|(_, n)| n).collect();
    assert_eq!(left, ["a"]);
    let stats = handle.stats();
    assert_eq!((stats.accepted, stats.logins, stats.messages), (2, 2, 1));
}

/// The handle's `shutdown` is a graceful shutdown, and ends the
/// subscriptions.
pub fn handle_shutdown(start: Start<'_>) {
    let server = default(start);
    let events = server.handle().events();
    let mut a = RawConn::login(server.target(), "a");
    server.handle().shutdown();
    assert_eq!(a.expect_eof(), ["bye:server shutting down"]);
    let deadline = Instant::now() + PATIENCE;
    while events
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .expect("the subscription ends with the server")
        .is_some()
    {}
}
