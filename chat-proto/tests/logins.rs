//! Logins under attack, with simulated time: per-address limits on
//! connections and login attempts, failed logins that slow the next ones
//! down (per name and per address), and secrets refused in clear.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chat_proto::sim::{Network, PeerId};
use chat_proto::{
    AddressRange, ClientConfig, ErrorCode, HubCloseReason, HubEvent, LoginMode, Peer, ServerConfig,
};

const S: Duration = Duration::from_secs(1);

fn addr(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([192, 0, 2, last]))
}

fn loopback() -> Option<IpAddr> {
    Some(IpAddr::from([127, 0, 0, 1]))
}

/// Accounts decided by the application, no address exempt.
fn app_login() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.login = LoginMode::Application;
    config.addresses.exempt = Vec::new();
    config
}

fn net(config: ServerConfig) -> Network {
    let mut net = Network::new(config, Instant::now()).unwrap();
    net.record();
    net
}

fn connect(net: &mut Network, from: Peer) -> PeerId {
    net.connect_from(ClientConfig::plain(), from).unwrap()
}

/// The login requests among the hub's events, with their secrets.
fn requests(net: &mut Network) -> Vec<(chat_proto::ConnId, String, Option<String>)> {
    net.take_hub_events()
        .into_iter()
        .filter_map(|e| match e {
            HubEvent::LoginRequested { conn, name, secret } => Some((conn, name, secret)),
            _ => None,
        })
        .collect()
}

/// Refuses the login the application was last asked for, with `code`.
fn refuse_next(net: &mut Network, code: ErrorCode, text: &str) {
    let (conn, ..) = requests(net).remove(0);
    let now = net.now();
    net.hub_mut().refuse_login(conn, now, code, text).unwrap();
    net.run();
}

#[test]
fn a_thousand_wrong_guesses_take_at_least_ten_minutes_of_server_delay() {
    let mut net = net(app_login());
    let from = Peer::secure(addr(66));
    let start = net.now();
    let mut guesser = connect(&mut net, from);
    let (mut refused, mut deferred, mut seen) = (0u32, 0u32, 0usize);
    let mut steps = 0u32;
    while refused < 1000 {
        steps += 1;
        assert!(steps < 100_000, "no progress after {refused} refusals");
        if !net.is_connected(guesser) {
            guesser = connect(&mut net, from);
            seen = 0;
        }
        let guess = format!("iam:alice:guess{refused}\n");
        net.send_raw(guesser, guess.as_bytes());
        // Until this attempt is decided: refused by the application, or
        // put off by the hub (held, then answered; or `retry-later`).
        loop {
            let asked = requests(&mut net);
            if let Some((conn, name, secret)) = asked.into_iter().next() {
                assert_eq!(name, "alice");
                assert_eq!(secret.as_deref(), Some(&guess[10..guess.len() - 1]));
                let now = net.now();
                net.hub_mut()
                    .refuse_login(conn, now, ErrorCode::LoginRefused, "wrong name or password")
                    .unwrap();
                net.run();
                refused += 1;
                break;
            }
            let text = net.received(guesser);
            let new = &text[seen..];
            if let Some(rest) = new.find("err:retry-later:").map(|i| &new[i + 16..]) {
                seen = text.len();
                let secs: u64 = rest.split(':').next().unwrap().parse().unwrap();
                assert!((1..=60).contains(&secs), "retry in {secs} s");
                deferred += 1;
                net.advance(Duration::from_secs(secs));
                break;
            }
            if !net.is_connected(guesser) {
                break;
            }
            // Held: the hub answers once the delay is over.
            assert!(net.is_paused(guesser) || net.hub().is_input_paused(net.conn(guesser)));
            net.advance(S / 4);
        }
        seen = seen.max(net.received(guesser).len());
    }
    let took = net.now() - start;
    assert!(
        took >= Duration::from_secs(600),
        "1,000 wrong guesses took {took:?}"
    );
    assert!(deferred > 900, "{deferred} retry-later answers");
    let stats = net.hub().stats();
    assert_eq!(stats.logins_refused, 1000);
    assert!(stats.logins_held > 0);
    // The bookkeeping stays small: one name, one address.
    assert_eq!(net.hub().tracked(), (1, 1));
}

#[test]
fn a_success_clears_the_failures_of_the_name() {
    let mut net = net(app_login());
    for failure in 0..3 {
        // A connection per attempt: the login timeout is 10 s.
        let a = connect(&mut net, Peer::secure(addr(1)));
        net.send_raw(a, b"iam:bob:wrong\n");
        refuse_next(&mut net, ErrorCode::LoginRefused, "no");
        // The next attempt is held 1, then 2, then 4 s.
        if failure < 2 {
            net.advance(Duration::from_secs(1 << failure));
        }
    }
    let a = connect(&mut net, Peer::secure(addr(1)));
    net.send_raw(a, b"iam:bob:right\n");
    // Held 4 s after the third failure.
    assert!(requests(&mut net).is_empty());
    net.advance(Duration::from_secs(3));
    assert!(requests(&mut net).is_empty());
    net.advance(Duration::from_secs(1));
    let (conn, ..) = requests(&mut net).remove(0);
    let now = net.now();
    net.hub_mut().approve_login(conn, now);
    net.run();
    assert!(net.received(a).contains("ok:bob\n"));
    assert_eq!(net.hub().tracked().1, 0);
}

#[test]
fn secrets_are_refused_in_clear_except_from_loopback_or_when_allowed() {
    let mut net = net(app_login());
    let plain = connect(&mut net, Peer::plain(addr(1)));
    net.send_raw(plain, b"iam:carol:pw\n");
    assert!(requests(&mut net).is_empty());
    assert_eq!(
        net.received(plain),
        "err:insecure:a secret needs an encrypted connection (TLS); it was not looked at\n"
    );
    // Not fatal: a guest login goes on.
    net.send_raw(plain, b"iam:carol\n");
    let asked = requests(&mut net);
    assert_eq!(asked[0].1, "carol");
    assert_eq!(asked[0].2, None);

    let local = connect(&mut net, Peer::plain(loopback()));
    net.send_raw(local, b"iam:dave:pw:with:colons\n");
    assert_eq!(requests(&mut net)[0].2.as_deref(), Some("pw:with:colons"));

    let tls = connect(&mut net, Peer::secure(addr(2)));
    net.send_raw(tls, b"iam:erin:pw\n");
    assert_eq!(requests(&mut net)[0].2.as_deref(), Some("pw"));

    let mut config = app_login();
    config.secrets_in_clear = true;
    let mut net = self::net(config);
    let plain = connect(&mut net, Peer::plain(addr(1)));
    net.send_raw(plain, b"iam:carol:pw\n");
    assert_eq!(requests(&mut net)[0].2.as_deref(), Some("pw"));
}

#[test]
fn an_open_server_refuses_secrets_even_empty_ones() {
    let mut net = net(ServerConfig::default());
    let a = connect(&mut net, Peer::secure(addr(1)));
    net.send_raw(a, b"iam:zhangsan:pw\niam:zhangsan:\n");
    assert_eq!(
        net.received(a),
        "err:login-refused:this server has no accounts: log in with iam:NAME\n\
         err:login-refused:this server has no accounts: log in with iam:NAME\n"
    );
    assert_eq!(net.hub().find("zhangsan"), None);
}

#[test]
fn one_address_may_hold_only_so_many_connections() {
    let mut config = ServerConfig::default();
    config.addresses.exempt = Vec::new();
    config.addresses.max_connections = 3;
    let mut net = net(config);
    let mine: Vec<PeerId> = (0..3)
        .map(|_| connect(&mut net, Peer::plain(addr(1))))
        .collect();
    let fourth = connect(&mut net, Peer::plain(addr(1)));
    net.run();
    assert_eq!(
        net.received(fourth),
        "err:too-many-connections:at most 3 connections from one address\n"
    );
    assert!(!net.is_connected(fourth));
    assert_eq!(net.hub().stats().closes(HubCloseReason::AddressLimit), 1);
    // Another address is not affected; the first gets a place back when
    // one of its connections is gone.
    let other = connect(&mut net, Peer::plain(addr(2)));
    assert!(net.is_connected(other));
    net.disconnect(mine[0]);
    let again = connect(&mut net, Peer::plain(addr(1)));
    net.send_raw(again, b"iam:again\n");
    assert_eq!(net.received(again), "ok:again\n");
}

#[test]
fn ipv6_addresses_count_per_64() {
    let mut config = ServerConfig::default();
    config.addresses.exempt = Vec::new();
    config.addresses.max_connections = 2;
    let mut net = net(config);
    let six = |s: &str| Peer::plain(Some(s.parse().unwrap()));
    connect(&mut net, six("2001:db8:0:1::1"));
    connect(&mut net, six("2001:db8:0:1::2"));
    let third = connect(&mut net, six("2001:db8:0:1:ffff::3"));
    net.run();
    assert!(net.received(third).starts_with("err:too-many-connections:"));
    let next_block = connect(&mut net, six("2001:db8:0:2::1"));
    assert!(net.is_connected(next_block));
}

#[test]
fn one_address_may_open_only_so_many_connections_a_minute() {
    let mut config = ServerConfig::default();
    config.addresses.exempt = Vec::new();
    let mut net = net(config);
    for _ in 0..30 {
        let p = connect(&mut net, Peer::plain(addr(1)));
        net.disconnect(p);
    }
    let over = connect(&mut net, Peer::plain(addr(1)));
    net.run();
    assert_eq!(
        net.received(over),
        "err:connection-rate:at most 30 new connections from one address every 60 s\n"
    );
    // Two seconds refill one connection (30 a minute).
    net.advance(2 * S);
    let p = connect(&mut net, Peer::plain(addr(1)));
    assert!(net.is_connected(p));
}

#[test]
fn one_address_may_try_only_so_many_logins_a_minute() {
    let mut config = ServerConfig::default();
    config.addresses.exempt = Vec::new();
    let mut net = net(config);
    let a = connect(&mut net, Peer::plain(addr(1)));
    // Name-taken answers count as attempts too: probing names is bounded.
    let b = connect(&mut net, Peer::plain(addr(1)));
    net.send_raw(b, b"iam:taken\n");
    for _ in 0..29 {
        net.send_raw(a, b"iam:taken\n");
    }
    let text = net.received(a);
    assert_eq!(text.matches("err:name-taken:").count(), 29);
    net.send_raw(a, b"iam:other\n");
    // The 31st attempt within the minute waits two seconds for its token:
    // held, not refused.
    assert!(net.hub().is_input_paused(net.conn(a)));
    net.advance(2 * S);
    assert!(net.received(a).ends_with("ok:other\n"));
}

#[test]
fn loopback_is_exempt_by_default_and_exemptions_are_configurable() {
    let mut net = net(ServerConfig::default());
    let peers: Vec<PeerId> = (0..100)
        .map(|_| connect(&mut net, Peer::plain(loopback())))
        .collect();
    assert!(peers.iter().all(|p| net.is_connected(*p)));
    assert_eq!(net.hub().tracked(), (0, 0));

    let mut config = ServerConfig::default();
    config.addresses.exempt = vec!["192.0.2.0/24".parse::<AddressRange>().unwrap()];
    config.addresses.max_connections = 1;
    let mut net = self::net(config);
    let a = connect(&mut net, Peer::plain(addr(9)));
    let b = connect(&mut net, Peer::plain(addr(9)));
    assert!(net.is_connected(a) && net.is_connected(b));
    let c = connect(&mut net, Peer::plain(Some(IpAddr::from([198, 51, 100, 1]))));
    let d = connect(&mut net, Peer::plain(Some(IpAddr::from([198, 51, 100, 1]))));
    net.run();
    assert!(net.is_connected(c));
    assert!(net.received(d).starts_with("err:too-many-connections:"));
}

#[test]
fn address_bookkeeping_is_bounded() {
    let mut config = ServerConfig::default();
    config.addresses.exempt = Vec::new();
    config.addresses.tracked = 64;
    let mut net = net(config);
    for i in 0..1000u32 {
        let ip = IpAddr::from((0xc633_6400u32 + i).to_be_bytes());
        let p = connect(&mut net, Peer::plain(Some(ip)));
        net.disconnect(p);
        assert!(net.hub().tracked().0 <= 64);
    }
}

#[test]
fn only_a_refused_secret_counts_as_a_failed_login() {
    let mut net = net(app_login());
    let a = connect(&mut net, Peer::secure(addr(1)));
    // A guest turned away, and a busy application, do not slow anyone.
    for (line, code) in [
        (&b"iam:guest\n"[..], ErrorCode::LoginRefused),
        (&b"iam:bob:pw\n"[..], ErrorCode::RetryLater),
        (&b"iam:guest\n"[..], ErrorCode::LoginRefused),
    ] {
        net.send_raw(a, line);
        refuse_next(&mut net, code, "1:no");
    }
    assert_eq!(
        net.hub().tracked(),
        (1, 0),
        "one address seen, no name failed"
    );
    // A wrong secret does.
    net.send_raw(a, b"iam:bob:wrong\n");
    refuse_next(&mut net, ErrorCode::LoginRefused, "no");
    net.send_raw(a, b"iam:bob:again\n");
    assert!(requests(&mut net).is_empty(), "held a second");
    net.advance(S);
    assert_eq!(requests(&mut net).len(), 1);
}
