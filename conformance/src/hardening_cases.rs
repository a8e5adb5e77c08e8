//! What every server must do against an unlucky or hostile client (issue
//! 16): answer a client that half-closes its connection, limit what one
//! source address may take, and treat look-alike names as one name.
//!
//! Run with [`hardening_suite!`](crate::hardening_suite) beside the main
//! suite. Per-address cases empty the exemptions (loopback is exempt by
//! default) and connect from 127.0.0.2 and 127.0.0.3, which the server
//! tells apart; every wait is bounded by [`PATIENCE`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chat_proto::{Allowance, RateLimit, ServerConfig};

use crate::Start;
use crate::wire::{PATIENCE, RawConn};

/// How many times each half-close case runs: the failure it guards
/// against was a race, lost in 1 to 98 runs of 100 depending on the
/// transport.
const HALF_CLOSE_RUNS: usize = 100;

/// The two source addresses the per-address cases connect from.
const FIRST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const SECOND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// An interval long enough that no allowance refills during a test.
const HOUR: Duration = Duration::from_secs(3600);

/// The frames of issue 16's half-closing client.
const HALF_CLOSE_SCRIPT: [&str; 4] = ["iam:h", "who:", "msg:x", "ping:t"];

/// What the server owes that client (with `watcher` logged in already).
const HALF_CLOSE_ANSWERS: [&str; 5] = ["ok:h", "users:watcher,h", "users:", "msg:h:x", "pong:t"];

/// Sends the script (and `bye:done` if `bye`) on `HALF_CLOSE_RUNS` fresh
/// connections, each then half-closed, and checks that every run receives
/// every answer, then EOF, while a watcher sees the client come, speak and
/// go. Even runs send the script in one write, odd runs a frame a write.
fn half_close_runs(start: Start<'_>, bye: bool) {
    let server = start(ServerConfig::default());
    let mut watcher = RawConn::login(server.addr(), "watcher");
    let mut frames: Vec<&str> = HALF_CLOSE_SCRIPT.to_vec();
    let mut expected: Vec<&str> = HALF_CLOSE_ANSWERS.to_vec();
    if bye {
        frames.push("bye:done");
        expected.push("bye:done");
    }
    let mut lost = Vec::new();
    for run in 0..HALF_CLOSE_RUNS {
        let mut conn = RawConn::connect(server.addr());
        if run % 2 == 0 {
            let script: String = frames.iter().map(|f| format!("{f}\n")).collect();
            conn.send(script.as_bytes());
        } else {
            for frame in &frames {
                conn.send(format!("{frame}\n").as_bytes());
            }
        }
        conn.shutdown_write();
        let (lines, eof) = conn.read_to_eof(PATIENCE);
        if lines != expected || !eof {
            lost.push((run, lines, eof));
        }
        // The others saw it all, in order; `left:` also says the name is
        // free for the next run.
        for line in ["join:h", "msg:h:x", "left:h"] {
            watcher.expect(line);
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {HALF_CLOSE_RUNS} half-closed runs did not get every answer then EOF; \
         expected {expected:?}, first: {:?}",
        lost.len(),
        lost.first()
    );
}

/// A client that sends frames and then half-closes (shuts down its write
/// side, as `printf ... | nc -N` does) receives every answer, then EOF.
pub fn half_close_gets_every_answer(start: Start<'_>) {
    half_close_runs(start, false);
}

/// The same, with `bye:done` as the last frame before the half-close: the
/// answers, then `bye:done`, then EOF.
pub fn half_close_after_bye_gets_every_answer(start: Start<'_>) {
    half_close_runs(start, true);
}

/// A half-closing client whose frames take the server many reads (and
/// answers many writes) still gets all of them: 150 messages, within the
/// default rate limit's burst.
pub fn half_close_after_many_frames(start: Start<'_>) {
    const MESSAGES: usize = 150;
    let server = start(ServerConfig::default());
    let mut conn = RawConn::connect(server.addr());
    let mut script = String::from("iam:many\n");
    for i in 0..MESSAGES {
        script.push_str(&format!("msg:{i} {}\n", "z".repeat(100)));
    }
    conn.send(script.as_bytes());
    conn.shutdown_write();
    let lines = conn.expect_eof();
    let mut expected = vec!["ok:many".to_owned()];
    expected.extend((0..MESSAGES).map(|i| format!("msg:many:{i} {}", "z".repeat(100))));
    assert_eq!(lines, expected);
}

/// A half-closing client whose frames outrun the rate limit: the server
/// pauses its input (the EOF waits unread behind the paused frames),
/// resumes, and still answers every frame before it closes.
pub fn half_close_while_input_is_paused(start: Start<'_>) {
    const MESSAGES: u32 = 60;
    let mut config = ServerConfig::default();
    // A burst of 20, then 100 a second: a pause of about 0.4 s.
    config.rate_limit = Some(RateLimit {
        per_second: 100,
        burst: 20,
    });
    let server = start(config);
    let mut conn = RawConn::connect(server.addr());
    let mut script = String::from("iam:paused\n");
    for i in 0..MESSAGES {
        script.push_str(&format!("msg:{i}\n"));
    }
    script.push_str("ping:end\n");
    conn.send(script.as_bytes());
    conn.shutdown_write();
    let lines = conn.expect_eof();
    let mut expected = vec!["ok:paused".to_owned()];
    expected.extend((0..MESSAGES).map(|i| format!("msg:paused:{i}")));
    expected.push("pong:end".to_owned());
    assert_eq!(lines, expected);
    // The case did what it says: the input was paused on the way.
    assert!(server.handle().stats().input_pauses >= 1);
}

/// An unfinished last line before the half-close is answered `bad-frame`
/// after the answers to the complete ones, then the server closes.
pub fn half_close_inside_a_frame(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut conn = RawConn::connect(server.addr());
    conn.send(b"iam:cut\nping:t\nmsg:no end");
    conn.shutdown_write();
    let lines = conn.expect_eof();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[..2], ["ok:cut", "pong:t"]);
    assert!(lines[2].starts_with("err:bad-frame:"), "{lines:?}");
}

/// The default configuration with per-address limits on every address,
/// loopback included.
fn no_exemptions() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.addresses.exempt = Vec::new();
    config
}

/// Connects from `source` and logs in as `name`, expecting `ok:NAME`.
fn login_from(server: &crate::TestServer, source: IpAddr, name: &str) -> RawConn {
    let mut conn = RawConn::connect_from(server.addr(), source);
    conn.send(format!("iam:{name}\n").as_bytes());
    conn.expect(&format!("ok:{name}"));
    conn
}

/// Asserts a connection from `source` is refused with `code`: one `err:`
/// line, then EOF.
fn expect_refused(server: &crate::TestServer, source: IpAddr, code: &str) {
    let mut conn = RawConn::connect_from(server.addr(), source);
    let lines = conn.expect_eof();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("err:{code}:")),
        "expected err:{code}, got {lines:?}"
    );
}

/// The N+1-th connection from one address is answered
/// `err:too-many-connections` and closed; another address is unaffected;
/// once one of the N leaves, the address may connect again.
pub fn per_address_connection_limit(start: Start<'_>) {
    const N: usize = 3;
    let mut config = no_exemptions();
    config.addresses.max_connections = N;
    config.addresses.connects = Allowance::new(1000, HOUR);
    config.addresses.logins = Allowance::new(1000, HOUR);
    let server = start(config);
    let mut first: Vec<RawConn> = (0..N)
        .map(|i| login_from(&server, FIRST, &format!("a{i}")))
        .collect();
    expect_refused(&server, FIRST, "too-many-connections");
    let mut second: Vec<RawConn> = (0..N)
        .map(|i| login_from(&server, SECOND, &format!("b{i}")))
        .collect();
    expect_refused(&server, SECOND, "too-many-connections");
    // The refusals cost the others nothing.
    for conn in first.iter_mut().chain(second.iter_mut()) {
        conn.send(b"ping:still\n");
        conn.skip_to("pong:still");
    }
    // One leaves; the server counts it gone once its socket is closed, a
    // moment after the client sees EOF, so a refusal meanwhile is retried.
    let mut leaving = first.remove(0);
    leaving.send(b"bye:x\n");
    assert_eq!(
        leaving.expect_eof().last().map(String::as_str),
        Some("bye:x")
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut conn = RawConn::connect_from(server.addr(), FIRST);
        conn.send(b"iam:a3\n");
        match conn.line().as_str() {
            "ok:a3" => break,
            line if line.starts_with("err:too-many-connections:") => {
                assert!(Instant::now() < deadline, "the address was never freed");
                std::thread::sleep(Duration::from_millis(10));
            }
            line => panic!("unexpected {line:?}"),
        }
    }
}

/// Past its allowance of new connections, an address is answered
/// `err:connection-rate` and closed, whether or not the earlier ones are
/// still open; another address is unaffected.
pub fn per_address_connect_rate(start: Start<'_>) {
    const CONNECTS: u32 = 4;
    let mut config = no_exemptions();
    config.addresses.connects = Allowance::new(CONNECTS, HOUR);
    let server = start(config);
    let mut open = Vec::new();
    for i in 0..CONNECTS {
        let mut conn = login_from(&server, FIRST, &format!("r{i}"));
        if i % 2 == 0 {
            conn.send(b"bye:x\n");
            conn.expect_eof();
        } else {
            open.push(conn);
        }
    }
    expect_refused(&server, FIRST, "connection-rate");
    let mut other = login_from(&server, SECOND, "s0");
    other.send(b"ping:t\n");
    other.expect("pong:t");
    for conn in &mut open {
        conn.send(b"ping:t\n");
        conn.skip_to("pong:t");
    }
}

/// Past its allowance of login attempts, an address is answered
/// `err:retry-later:SECS:TEXT`, not fatal: the connection stays and may
/// try again later; another address logs in.
pub fn per_address_login_rate(start: Start<'_>) {
    const LOGINS: u32 = 3;
    let mut config = no_exemptions();
    config.addresses.logins = Allowance::new(LOGINS, HOUR);
    let server = start(config);
    let _in: Vec<RawConn> = (0..LOGINS)
        .map(|i| login_from(&server, FIRST, &format!("l{i}")))
        .collect();
    let mut late = RawConn::connect_from(server.addr(), FIRST);
    late.send(b"iam:l9\n");
    let line = late.line();
    let rest = line
        .strip_prefix("err:retry-later:")
        .unwrap_or_else(|| panic!("expected err:retry-later, got {line:?}"));
    let (secs, text) = rest.split_once(':').expect("SECS:TEXT");
    let secs: u64 = secs.parse().expect("seconds to wait");
    // One more attempt comes with the next refill: an hour over LOGINS.
    assert_eq!(secs, HOUR.as_secs() / u64::from(LOGINS));
    assert!(text.contains(&format!("{secs} s")), "{text:?}");
    // Not fatal.
    late.send(b"ping:t\nmsg:x\n");
    late.expect("pong:t");
    late.expect_prefix("err:not-logged-in:");
    let mut other = RawConn::connect_from(server.addr(), SECOND);
    other.send(b"iam:m0\n");
    other.expect("ok:m0");
}

/// By default loopback is exempt: more connections, connects and logins
/// from one loopback address than the defaults allow one address all go.
pub fn loopback_is_exempt_by_default(start: Start<'_>) {
    let config = ServerConfig::default();
    let limits = &config.addresses;
    let n = limits
        .max_connections
        .max(limits.connects.count as usize)
        .max(limits.logins.count as usize)
        + 5;
    let server = start(config);
    let conns: Vec<RawConn> = (0..n)
        .map(|i| login_from(&server, FIRST, &format!("e{i}")))
        .collect();
    assert_eq!(conns.len(), n);
}

/// Look-alike pairs from issue 16, and a few more: the second of each
/// pair is refused `name-taken` while the first is logged in, and the
/// other way round; each is shown as its owner typed it.
const LOOK_ALIKES: [(&str, &str); 7] = [
    ("\u{C5}", "\u{212B}"),                                // Å, Angstrom sign
    ("K", "\u{212A}"),                                     // Kelvin sign
    ("\u{AC00}", "\u{1100}\u{1161}"),                      // 가, conjoining jamo
    ("admin", "\u{FF41}\u{FF44}\u{FF4D}\u{FF49}\u{FF4E}"), // fullwidth
    ("\u{FB01}", "fi"),                                    // ligature
    ("papa", "\u{440}\u{430}\u{440}\u{430}"),              // all Cyrillic
    ("zhangsan", "ZhangSan"),                              // case
];

/// Logs in as `first`, checks `second` is taken, leaves; then the same
/// with the roles swapped.
fn check_look_alike(server: &crate::TestServer, first: &str, second: &str) {
    let mut holder = RawConn::login(server.addr(), first);
    let mut other = RawConn::connect(server.addr());
    other.send(format!("iam:{second}\n").as_bytes());
    other.expect_prefix("err:name-taken:");
    holder.send(b"bye:x\n");
    holder.expect_eof();
    // The name is free once the holder's `bye:` came back.
    other.send(format!("iam:{second}\n").as_bytes());
    other.expect(&format!("ok:{second}"));
    let mut third = RawConn::connect(server.addr());
    third.send(format!("iam:{first}\n").as_bytes());
    third.expect_prefix("err:name-taken:");
}

/// Names that look the same are one name: `name-taken` for the second.
pub fn look_alike_names_are_taken(start: Start<'_>) {
    let server = start(ServerConfig::default());
    for (first, second) in LOOK_ALIKES {
        check_look_alike(&server, first, second);
    }
}

/// Names that mix scripts TR39 says must not mix are `bad-name` (not
/// fatal), whether or not the name they imitate is logged in.
pub fn mixed_script_names_are_refused(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut conn = RawConn::connect(server.addr());
    let mixed = [
        "\u{430}dmin",           // Latin with a Cyrillic а
        "abc\u{3B1}\u{3B2}",     // Latin and Greek
        "\u{41E}\u{43B}\u{3B1}", // Cyrillic and Greek
        "张三ольга",             // Han and Cyrillic
    ];
    for name in mixed {
        conn.send(format!("iam:{name}\n").as_bytes());
        conn.expect_prefix("err:bad-name:");
    }
    let _admin = RawConn::login(server.addr(), "admin");
    conn.send("iam:\u{430}dmin\n".as_bytes());
    conn.expect_prefix("err:bad-name:");
    conn.send(b"iam:fine\n");
    conn.expect("ok:fine");
}

/// Names of one script (or allowed mixes) stay valid, and every frame
/// shows a name exactly as its owner typed it: `ok:`, `join:`, `msg:`,
/// `users:`, `left:`.
pub fn names_are_shown_as_typed(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let mut watcher = RawConn::login(server.addr(), "watcher");
    let names = [
        "zhangsan",
        "张三",
        "Zoë",
        "Ольга",
        "user-1.b",
        "\u{212A}elvin",
    ];
    let mut conns = Vec::new();
    for name in names {
        let mut conn = RawConn::login(server.addr(), name);
        watcher.expect(&format!("join:{name}"));
        conn.send(format!("msg:hello from {name}\n").as_bytes());
        watcher.expect(&format!("msg:{name}:hello from {name}"));
        conns.push(conn);
    }
    watcher.send(b"who:\n");
    let mut listed = Vec::new();
    loop {
        let line = watcher.line();
        let list = line.strip_prefix("users:").expect("a users: frame");
        if list.is_empty() {
            break;
        }
        listed.extend(list.split(',').map(str::to_owned));
    }
    let mut expected = vec!["watcher".to_owned()];
    expected.extend(names.iter().map(|n| (*n).to_owned()));
    assert_eq!(listed, expected);
    for (conn, name) in conns.into_iter().zip(names) {
        conn.close();
        watcher.expect(&format!("left:{name}"));
    }
}
