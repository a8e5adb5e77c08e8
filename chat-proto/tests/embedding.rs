//! The embedder's API of the hub, with simulated time: logins decided by
//! the application, messages it can see, kicks and notices, the lifetime of
//! connection ids, half-closed connections, and the counters.

use std::time::{Duration, Instant};

use chat_proto::sim::{Network, PeerId};
use chat_proto::{
    ClientConfig, CloseReason, ConnId, ErrorCode, Event, Hub, HubCloseReason, HubEvent, LoginMode,
    Output, ServerConfig,
};

const S: Duration = Duration::from_secs(1);

fn net(config: ServerConfig) -> Network {
    Network::new(config, Instant::now()).unwrap()
}

fn app_login() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.login = LoginMode::Application;
    config
}

fn join(net: &mut Network, name: &str) -> PeerId {
    let peer = net.connect(ClientConfig::plain()).unwrap();
    net.client(peer).login(name).unwrap();
    net.run();
    peer
}

/// The login requests among the hub's events.
fn requests(events: &[HubEvent]) -> Vec<(ConnId, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            HubEvent::LoginRequested { conn, name, .. } => Some((*conn, name.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn an_application_login_waits_for_the_decision_and_keeps_later_frames() {
    let mut net = net(app_login());
    net.record();
    let watcher = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(watcher, b"iam:watcher\n");
    let (conn, _) = requests(&net.take_hub_events())[0].clone();
    let now = net.now();
    net.hub_mut().approve_login(conn, now);
    net.run();

    let a = net.connect(ClientConfig::plain()).unwrap();
    // Pipelined: the message and the ping must wait for the decision, and
    // be answered after the ok, in order.
    net.send_raw(a, b"iam:zhangsan\nmsg:first\nping:p\n");
    let asked = requests(&net.take_hub_events());
    assert_eq!(asked, [(net.conn(a), "zhangsan".to_string())]);
    assert!(net.is_paused(a));
    assert!(net.hub().is_input_paused(net.conn(a)));
    assert_eq!(
        net.received(a),
        "",
        "nothing is answered before the decision"
    );
    // The name is held meanwhile: another client cannot take it.
    let b = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(b, b"iam:ZhangSan\n");
    assert_eq!(net.received(b), "err:name-taken:ZhangSan is taken\n");
    assert!(requests(&net.take_hub_events()).is_empty());

    // Time passes (less than the login timeout) while a password is checked.
    net.advance(3 * S);
    let now = net.now();
    let aid = net.conn(a);
    net.hub_mut().approve_login(aid, now);
    net.run();
    assert!(!net.is_paused(a));
    assert_eq!(net.received(a), "ok:zhangsan\nmsg:zhangsan:first\npong:p\n");
    assert_eq!(
        net.received(watcher),
        "ok:watcher\njoin:zhangsan\nmsg:zhangsan:first\n"
    );
    assert_eq!(net.hub().name(net.conn(a)), Some("zhangsan"));
    // A late second answer changes nothing.
    net.hub_mut().approve_login(aid, now);
    let refused = net
        .hub_mut()
        .refuse_login(aid, now, ErrorCode::LoginRefused, "too late");
    assert_eq!(refused, Ok(()));
    net.run();
    assert!(net.received(a).ends_with("pong:p\n"));
}

#[test]
fn a_refused_login_frees_the_name_and_the_client_may_try_again() {
    let mut net = net(app_login());
    net.record();
    let a = net.connect(ClientConfig::plain()).unwrap();
    net.client(a).login("lisi").unwrap();
    net.run();
    let (conn, name) = requests(&net.take_hub_events())[0].clone();
    assert_eq!(name, "lisi");
    let now = net.now();
    net.hub_mut()
        .refuse_login(conn, now, ErrorCode::LoginRefused, "wrong password")
        .unwrap();
    net.run();
    assert_eq!(net.received(a), "err:login-refused:wrong password\n");
    let events = net.take_events(a);
    assert!(matches!(&events[..], [Event::Error { code, .. }] if *code == ErrorCode::LoginRefused));
    assert_eq!(net.hub().find("lisi"), None);
    // Not closed, and input flows again.
    net.send_raw(a, b"ping:1\n");
    assert!(net.received(a).ends_with("pong:1\n"));
    // Someone else may now have the name (a guest refused is not a failed
    // login: no delay).
    let b = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(b, b"iam:lisi\n");
    assert_eq!(requests(&net.take_hub_events()).len(), 1);
    // An invalid answer is refused and changes nothing.
    let now = net.now();
    let bid = net.conn(b);
    assert!(
        net.hub_mut()
            .refuse_login(bid, now, ErrorCode::LoginRefused, "two\nlines")
            .is_err()
    );
    assert!(net.hub().is_input_paused(net.conn(b)));
}

#[test]
fn the_login_timeout_still_applies_while_the_application_decides() {
    let mut net = net(app_login());
    net.record();
    let a = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(a, b"iam:slowpoke\n");
    let (conn, _) = requests(&net.take_hub_events())[0].clone();
    net.advance(10 * S);
    assert!(!net.is_connected(a));
    assert_eq!(net.received(a), "err:timeout:no login in time\n");
    assert!(net.take_hub_events().contains(&HubEvent::Closed {
        conn,
        reason: HubCloseReason::LoginTimeout
    }));
    // The answer comes too late: ignored, and the name is free.
    let now = net.now();
    net.hub_mut().approve_login(conn, now);
    net.run();
    assert_eq!(net.hub().members(), 0);
    assert_eq!(net.hub().find("slowpoke"), None);
}

#[test]
fn look_alike_names_are_one_name_and_mixed_scripts_are_refused() {
    let mut net = net(ServerConfig::default());
    net.record();
    let pairs = [
        ("\u{c5}", "\u{212b}"),
        ("K", "\u{212a}"),
        ("\u{ac00}", "\u{1100}\u{1161}"),
        ("admin", "\u{ff41}\u{ff44}\u{ff4d}\u{ff49}\u{ff4e}"),
        ("\u{fb01}", "fi"),
        ("Zoë", "zoË"),
    ];
    for (first, second) in pairs {
        let a = net.connect(ClientConfig::plain()).unwrap();
        net.send_raw(a, format!("iam:{first}\n").as_bytes());
        assert_eq!(net.received(a), format!("ok:{first}\n"));
        let b = net.connect(ClientConfig::plain()).unwrap();
        net.send_raw(b, format!("iam:{second}\n").as_bytes());
        assert_eq!(
            net.received(b),
            format!("err:name-taken:{second} is taken\n"),
            "{first} / {second}"
        );
    }
    // `аdmin` with a Cyrillic а mixes scripts: refused even when `admin` is
    // free.
    let c = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(c, "iam:\u{430}dmin\n".as_bytes());
    assert!(net.received(c).starts_with("err:bad-name:"));
    // Ordinary names, Latin or not, are fine, and shown as typed.
    for name in ["zhangsan", "张三", "Ольга", "user-1.b"] {
        let p = net.connect(ClientConfig::plain()).unwrap();
        net.send_raw(p, format!("iam:{name}\n").as_bytes());
        assert_eq!(net.received(p), format!("ok:{name}\n"));
    }
}

#[test]
fn messages_are_visible_to_the_application_with_their_positions() {
    let mut config = ServerConfig::default();
    config.activity_events = true;
    let mut net = net(config);
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    net.client(a).say("one").unwrap();
    net.client(b).say("two: with a colon").unwrap();
    net.run();
    let messages: Vec<_> = net
        .take_hub_events()
        .into_iter()
        .filter_map(|e| match e {
            HubEvent::Message {
                conn,
                from,
                room,
                offset,
                text,
            } => Some((conn, from, room, text, offset)),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        [
            (net.conn(a), "a".into(), "lobby".into(), "one".into(), 0),
            (
                net.conn(b),
                "b".into(),
                "lobby".into(),
                "two: with a colon".into(),
                1
            ),
        ]
    );
    assert_eq!(net.hub().stats().messages, 2);
    assert_eq!(net.hub().stats().deliveries, 4);
}

#[test]
fn messages_are_not_reported_unless_asked_for() {
    let mut net = net(ServerConfig::default());
    let a = join(&mut net, "a");
    net.client(a).say("quiet").unwrap();
    net.run();
    assert!(
        !net.take_hub_events()
            .iter()
            .any(|e| matches!(e, HubEvent::Message { .. }))
    );
}

#[test]
fn kick_ends_a_connection_with_its_reason_and_others_see_it_leave() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    let troll = join(&mut net, "troll");
    net.take_hub_events();
    let now = net.now();
    let conn = net.conn(troll);
    net.hub_mut().kick(conn, now, "flooding").unwrap();
    net.run();
    assert!(!net.is_connected(troll));
    assert!(net.received(troll).ends_with("err:kicked:flooding\n"));
    assert_eq!(
        net.take_events(troll).last(),
        Some(&Event::Closed {
            reason: CloseReason::Fatal {
                code: ErrorCode::Kicked
            }
        })
    );
    assert!(net.received(a).ends_with("left:troll\n"));
    assert_eq!(
        net.take_hub_events(),
        [HubEvent::Closed {
            conn,
            reason: HubCloseReason::Kicked
        }]
    );
    assert_eq!(net.hub().stats().closes(HubCloseReason::Kicked), 1);
    // A bad reason is refused and kicks nobody.
    let now = net.now();
    let aid = net.conn(a);
    assert!(net.hub_mut().kick(aid, now, "bad\u{7}reason").is_err());
    assert!(net.is_connected(a));
}

#[test]
fn notices_reach_one_connection_or_every_member() {
    let mut net = net(ServerConfig::default());
    net.record();
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    let anonymous = net.connect(ClientConfig::plain()).unwrap();
    net.run();
    let now = net.now();
    let aid = net.conn(a);
    net.hub_mut()
        .notice(aid, now, "your password expires soon")
        .unwrap();
    net.hub_mut()
        .notice_all(now, "server restarts at 03:00")
        .unwrap();
    net.run();
    assert!(
        net.received(a)
            .ends_with("notice:your password expires soon\nnotice:server restarts at 03:00\n")
    );
    assert_eq!(net.received(b), "ok:b\nnotice:server restarts at 03:00\n");
    assert_eq!(net.received(anonymous), "");
    assert_eq!(
        net.take_events(a).last(),
        Some(&Event::Notice {
            room: None,
            text: "server restarts at 03:00".into()
        })
    );
    // Too long for a frame: refused.
    let long = "x".repeat(5000);
    assert!(net.hub_mut().notice_all(now, &long).is_err());
}

#[test]
fn a_half_closed_connection_gets_every_answer_then_is_closed() {
    let mut net = net(ServerConfig::default());
    net.record();
    let other = join(&mut net, "other");
    let a = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(a, b"iam:a\nwho:\nmsg:x\nping:t\n");
    net.half_close(a);
    assert_eq!(
        net.received(a),
        "ok:a\nusers:other,a\nusers:\nmsg:a:x\npong:t\n"
    );
    assert!(!net.is_connected(a));
    assert!(net.received(other).ends_with("join:a\nmsg:a:x\nleft:a\n"));
    assert!(net.take_hub_events().contains(&HubEvent::Closed {
        conn: net.conn(a),
        reason: HubCloseReason::PeerClosed
    }));
    // An unfinished last line is answered, not dropped in silence.
    let b = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(b, b"ping:u\nmsg:no newline");
    net.half_close(b);
    assert_eq!(
        net.received(b),
        "pong:u\nerr:bad-frame:the input ended inside a frame (no LF at its end)\n"
    );
}

#[test]
fn a_half_close_during_a_pending_login_is_finished_after_the_decision() {
    let mut net = net(app_login());
    net.record();
    let a = net.connect(ClientConfig::plain()).unwrap();
    net.send_raw(a, b"iam:a\nmsg:hello\n");
    net.half_close(a);
    assert!(
        net.is_connected(a),
        "the pending login holds the connection"
    );
    let (conn, _) = requests(&net.take_hub_events())[0].clone();
    let now = net.now();
    net.hub_mut().approve_login(conn, now);
    net.run();
    assert_eq!(net.received(a), "ok:a\nmsg:a:hello\n");
    assert!(!net.is_connected(a));
}

/// A raw hub, driven by hand: ids stay valid (and their index unused) until
/// the adapter reports the socket gone.
#[test]
fn an_id_is_not_reused_before_the_socket_is_reported_gone() {
    let now = Instant::now();
    let mut hub = Hub::new(ServerConfig::default()).unwrap();
    let a = hub.accept(now, None);
    hub.handle_input(a, now, b"iam:a\nbye:done\n");
    let mut closed = None;
    while let Some(out) = hub.poll_output() {
        if let Output::Close(id) = out {
            closed = Some(id);
        }
    }
    assert_eq!(closed, Some(a));
    // The adapter is still flushing `a`: a new connection gets another index.
    let b = hub.accept(now, None);
    assert_ne!(a.index(), b.index());
    assert_eq!(hub.sockets(), 2);
    assert_eq!(hub.connections(), 1);
    hub.written(a, now, "ok:a\nbye:done\n".len());
    hub.disconnected(a, now);
    let c = hub.accept(now, None);
    assert_eq!(c.index(), a.index());
    assert_ne!(c, a);
}

#[test]
fn a_closing_connection_that_does_not_flush_in_time_is_aborted() {
    let mut config = ServerConfig::default();
    config.close_linger = Duration::from_millis(500);
    let t0 = Instant::now();
    let mut hub = Hub::new(config).unwrap();
    let a = hub.accept(t0, None);
    hub.handle_input(a, t0, b"bye:\n");
    let outputs: Vec<Output> = std::iter::from_fn(|| hub.poll_output()).collect();
    assert!(outputs.contains(&Output::Close(a)));
    assert_eq!(hub.poll_timeout(), Some(t0 + Duration::from_millis(500)));
    hub.handle_timeout(t0 + Duration::from_millis(499));
    assert_eq!(hub.poll_output(), None);
    hub.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(hub.poll_output(), Some(Output::Abort(a)));
    assert_eq!(hub.poll_output(), None);
    // Asked once only.
    hub.handle_timeout(t0 + 10 * S);
    assert_eq!(hub.poll_output(), None);
    hub.disconnected(a, t0 + 10 * S);
    assert_eq!(hub.sockets(), 0);
}

#[test]
fn counters_follow_what_the_hub_does() {
    let mut net = net(ServerConfig::default());
    let a = join(&mut net, "a");
    let b = join(&mut net, "b");
    net.client(a).say("hi").unwrap();
    net.run();
    net.disconnect(b);
    net.advance(31 * S);
    let stats = net.hub().stats().clone();
    assert_eq!(stats.accepted, 2);
    assert_eq!(stats.logins, 2);
    assert_eq!(stats.messages, 1);
    assert_eq!(stats.deliveries, 2);
    assert_eq!(stats.closes(HubCloseReason::Disconnected), 1);
    assert!(stats.pings >= 1);
    assert!(stats.bytes_received > 0);
    assert!(stats.bytes_written > 0);
    assert!(net.is_connected(a));
}
