//! What every transport's client must do, against a real server of the same
//! transport, or against a scripted fake server written here with
//! `std::net` (for servers that misbehave: go silent, ping, drop). For a
//! TLS client the scripted servers speak TLS, with the test CA's
//! certificate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_proto::{
    ClientConfig, CloseReason, ErrorCode, Event, Keepalive, ReconnectPolicy, ServerConfig,
};

use transport_common::ClientOptions;

use crate::history_cases::say;
use crate::relay::Relay;
use crate::wire::{PATIENCE, RawConn};
use crate::{Start, TestClient};

fn fast_keepalive() -> Keepalive {
    Keepalive::new(Duration::from_millis(150), Duration::from_millis(300))
}

/// Waits for an event matching `pred`, skipping others; panics on timeout.
fn wait_for<C: TestClient>(client: &C, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_event(left) {
            Some(event) if pred(&event) => return event,
            Some(_) => {}
            None => panic!("no {what} within {PATIENCE:?}"),
        }
    }
}

/// A fake server's connection: plain, or TLS.
trait Duplex: Read + Write + Send {}

impl<T: Read + Write + Send> Duplex for T {}

/// What a fake server reads lines from, and writes to (`get_mut`).
type FakeConn = BufReader<Box<dyn Duplex>>;

/// What a fake server does with one connection.
type Script = Box<dyn FnOnce(&mut FakeConn) + Send>;

/// A scripted server: accepts connections and runs one script on each, in
/// turn, in a thread; over TLS for a client that speaks TLS.
fn fake_server<C: TestClient>(scripts: Vec<Script>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        for script in scripts {
            let (stream, _) = listener.accept().expect("accept");
            stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
            let duplex: Box<dyn Duplex> = match C::TLS {
                false => Box::new(stream),
                true => {
                    let config = crate::tls::test_ca().server().config().clone();
                    let conn = rustls::ServerConnection::new(config).expect("a TLS server");
                    Box::new(rustls::StreamOwned::new(conn, stream))
                }
            };
            script(&mut BufReader::new(duplex));
        }
    });
    (addr, handle)
}

/// Writes `bytes` to a fake server's client.
fn write(conn: &mut FakeConn, bytes: &[u8]) {
    let stream = conn.get_mut();
    stream.write_all(bytes).expect("write to the client");
    stream.flush().expect("flush to the client");
}

fn read_line(reader: &mut FakeConn) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read from client");
    line.trim_end_matches('\n').to_owned()
}

/// Two clients log in, chat, and see each other join and leave.
pub fn client_chats<C: TestClient>(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let a = C::connect(
        &[server.addr()],
        "zhangsan",
        ClientConfig::default(),
        ClientOptions::default(),
    )
    .unwrap();
    let b = C::connect(
        &[server.addr()],
        "lisi",
        ClientConfig::default(),
        ClientOptions::default(),
    )
    .unwrap();
    wait_for(&a, "join", |e| {
        *e == Event::Joined {
            room: "lobby".into(),
            name: "lisi".into(),
        }
    });
    b.say("did you have dinner");
    let msg = |e: &Event| {
        matches!(e, Event::Message { room, from, text, offset: Some(_), .. }
            if room == "lobby" && from == "lisi" && text == "did you have dinner")
    };
    wait_for(&a, "the message", msg);
    wait_for(&b, "the echo", msg);
    b.who();
    let users = wait_for(&b, "users", |e| matches!(e, Event::Users { .. }));
    let Event::Users { room, mut names } = users else {
        unreachable!()
    };
    assert_eq!(room, "lobby");
    names.sort();
    assert_eq!(names, ["lisi", "zhangsan"]);
    b.close();
    wait_for(&b, "closed", |e| {
        *e == Event::Closed {
            reason: CloseReason::Local,
        }
    });
    wait_for(&a, "left", |e| {
        *e == Event::Left {
            room: "lobby".into(),
            name: "lisi".into(),
        }
    });
}

/// A refused login is an error of `connect`.
pub fn client_login_refused<C: TestClient>(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let _a = C::connect(
        &[server.addr()],
        "zhangsan",
        ClientConfig::default(),
        ClientOptions::default(),
    )
    .unwrap();
    let Err(err) = C::connect(
        &[server.addr()],
        "zhangsan",
        ClientConfig::default(),
        ClientOptions::default(),
    ) else {
        panic!("a second zhangsan was let in");
    };
    assert!(err.contains("name-taken"), "{err}");
}

/// Keepalive keeps an idle session alive on both sides.
pub fn client_keepalive_keeps_idle_session<C: TestClient>(start: Start<'_>) {
    let mut server_config = ServerConfig::default();
    server_config.keepalive = fast_keepalive();
    let server = start(server_config);
    let mut config = ClientConfig::default();
    config.keepalive = fast_keepalive();
    let a = C::connect(&[server.addr()], "idle", config, ClientOptions::default()).unwrap();
    // Ten idle periods of both sides, with nobody reading events.
    std::thread::sleep(Duration::from_millis(1500));
    a.say("still here");
    let event = wait_for(&a, "the echo", |e| !matches!(e, Event::Joined { .. }));
    assert!(
        matches!(&event, Event::Message { from, text, .. } if from == "idle" && text == "still here"),
        "{event:?}"
    );
}

/// The client answers the server's pings even when the application is not
/// reading events.
pub fn client_answers_pings_while_idle<C: TestClient>(_start: Start<'_>) {
    let (addr, server) = fake_server::<C>(vec![Box::new(|conn| {
        assert_eq!(read_line(conn), "iam:pingme");
        write(conn, b"ok:pingme\n");
        for token in ["a1", "b2", "c3"] {
            write(conn, format!("ping:{token}\n").as_bytes());
            assert_eq!(read_line(conn), format!("pong:{token}"));
        }
        write(conn, b"bye:done\n");
    })]);
    let client = C::connect(
        &[addr],
        "pingme",
        ClientConfig::plain(),
        ClientOptions::default(),
    )
    .unwrap();
    server.join().expect("the fake server saw every pong");
    wait_for(&client, "closed", |e| matches!(e, Event::Closed { .. }));
}

/// A server that stops answering is detected by the client's keepalive.
pub fn client_detects_silent_server<C: TestClient>(_start: Start<'_>) {
    let (addr, server) = fake_server::<C>(vec![Box::new(|conn| {
        assert_eq!(read_line(conn), "iam:lonely");
        write(conn, b"ok:lonely\n");
        // Read (pings) but never answer, until the client gives up.
        let mut line = String::new();
        while conn.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    })]);
    let mut config = ClientConfig::plain();
    config.keepalive = Keepalive::new(Duration::from_millis(100), Duration::from_millis(200));
    let client = C::connect(&[addr], "lonely", config, ClientOptions::default()).unwrap();
    let started = Instant::now();
    let closed = wait_for(&client, "closed", |e| matches!(e, Event::Closed { .. }));
    assert_eq!(
        closed,
        Event::Closed {
            reason: CloseReason::Timeout
        }
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.join().unwrap();
}

/// With a reconnect policy, a lost connection is reopened and the client
/// logs in again under the same name.
pub fn client_reconnects<C: TestClient>(_start: Start<'_>) {
    let (addr, server) = fake_server::<C>(vec![
        Box::new(|conn| {
            assert_eq!(read_line(conn), "iam:phoenix");
            write(conn, b"ok:phoenix\n");
            // Then the connection drops.
        }),
        Box::new(|conn| {
            assert_eq!(read_line(conn), "iam:phoenix");
            write(conn, b"ok:phoenix\nmsg:server:welcome back\n");
            let _ = read_line(conn);
        }),
    ]);
    let policy = ReconnectPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        max_attempts: Some(20),
    };
    let mut config = ClientConfig::plain();
    config.reconnect = Some(policy);
    let client = C::connect(&[addr], "phoenix", config, ClientOptions::default()).unwrap();
    wait_for(&client, "the loss", |e| {
        *e == Event::Closed {
            reason: CloseReason::Disconnected,
        }
    });
    wait_for(&client, "the second login", |e| {
        *e == Event::LoggedIn {
            name: "phoenix".into(),
        }
    });
    wait_for(&client, "the message", |e| {
        matches!(e, Event::Message { .. })
    });
    client.close();
    server.join().unwrap();
}

/// A client given several addresses tries each in order: a refused one
/// first does not stop it.
pub fn client_tries_every_address<C: TestClient>(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
        // Dropped: connections to it are refused.
    };
    let client = C::connect(
        &[dead, server.addr()],
        "persistent",
        ClientConfig::default(),
        ClientOptions::default(),
    )
    .expect("the second address works");
    client.say("made it");
    wait_for(&client, "the echo", |e| matches!(e, Event::Message { .. }));
}

/// A connect that gets no answer gives up after `connect_timeout`.
pub fn client_connect_times_out<C: TestClient>(_start: Start<'_>) {
    let (listener, _filling) = saturated_listener();
    let addr = listener.local_addr().expect("addr");
    let mut options = ClientOptions::default();
    options.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = C::connect(&[addr], "patient", ClientConfig::default(), options);
    let waited = started.elapsed();
    assert!(
        result.is_err(),
        "connected to a listener that answers nothing"
    );
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "gave up after {waited:?}"
    );
}

/// A listener whose accept queue is full, and the connections filling it.
/// Linux drops a SYN to a full queue, so a further connect gets no answer
/// at all, like one to a host that is down.
fn saturated_listener() -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut filling = Vec::new();
    for _ in 0..4096 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => filling.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return (listener, filling),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled");
}

/// The client in rooms: it joins, hears who joins after it, reads a room's
/// messages with their room and offset, exchanges a private message, and
/// reports a room error as an event, over the transport's own client.
pub fn client_speaks_in_rooms<C: TestClient>(start: Start<'_>) {
    let server = start(ServerConfig::default());
    let connect = |name: &str| {
        C::connect(
            &[server.addr()],
            name,
            ClientConfig::default(),
            ClientOptions::default(),
        )
        .unwrap()
    };
    let a = connect("zhangsan");
    let b = connect("lisi");
    let joined = |room: &str, name: &str| Event::Joined {
        room: room.into(),
        name: name.into(),
    };
    a.join("rust");
    wait_for(&a, "own join", |e| *e == joined("rust", "zhangsan"));
    b.join("RUST");
    wait_for(&b, "own join", |e| *e == joined("rust", "lisi"));
    wait_for(&a, "lisi's join", |e| *e == joined("rust", "lisi"));
    b.say_in("rust", "hi: rust");
    let said = Event::Message {
        room: "rust".into(),
        from: "lisi".into(),
        text: "hi: rust".into(),
        offset: Some(0),
        history: false,
    };
    wait_for(&a, "the room's message", |e| *e == said);
    wait_for(&b, "its own message back", |e| *e == said);
    b.pm("zhangsan", "psst");
    let private = Event::Private {
        from: "lisi".into(),
        to: "zhangsan".into(),
        text: "psst".into(),
    };
    wait_for(&a, "the private message", |e| *e == private);
    wait_for(&b, "its private message back", |e| *e == private);
    a.say_in("elsewhere", "x");
    wait_for(
        &a,
        "no-such-room",
        |e| matches!(e, Event::Error { code, .. } if *code == ErrorCode::NoSuchRoom),
    );
}

/// A client with rooms and history whose connection is lost (cut between
/// it and the server, which keeps running) while another client speaks
/// gets, after its own reconnect and resume, every message it missed
/// exactly once and in offset order, then live traffic, with no gap. More
/// are missed than history on join would replay (20), and the first
/// attempts to reconnect fail before the server can answer (the network is
/// still down), so only a resume from the session's place passes.
pub fn client_resumes_what_it_missed_once_in_order<C: TestClient>(start: Start<'_>) {
    let mut server_config = ServerConfig::default();
    server_config.rate_limit = None;
    let server = start(server_config);
    let relay = Relay::start(server.addr());
    let mut config = ClientConfig::default();
    config.reconnect = Some(ReconnectPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        max_attempts: None,
    });
    let ann = C::connect(&[relay.addr()], "ann", config, ClientOptions::default()).unwrap();
    let mut speaker = RawConn::login(server.target(), "speaker");
    let is_said = |e: &Event, at: u64| matches!(e, Event::Message { offset: Some(offset), .. } if *offset == at);
    say(&mut speaker, 0..5);
    wait_for(&ann, "m4", |e| is_said(e, 4));

    relay.cut();
    wait_for(&ann, "the loss", |e| {
        *e == Event::Closed {
            reason: CloseReason::Disconnected,
        }
    });
    // The server saw ann go: what follows is said in its absence.
    speaker.skip_to("left:ann");
    say(&mut speaker, 5..35);
    // Attempts made while the relay is cut fail; give it a few.
    for _ in 0..3 {
        wait_for(&ann, "an attempt to reconnect", |e| {
            matches!(e, Event::Reconnecting { .. })
        });
    }
    relay.reopen();

    let mut events = Vec::new();
    wait_for(&ann, "m34 after the resume", |e| {
        events.push(e.clone());
        is_said(e, 34)
    });
    say(&mut speaker, 35..36);
    wait_for(&ann, "m35, live", |e| {
        events.push(e.clone());
        is_said(e, 35)
    });
    assert!(
        events.contains(&Event::LoggedIn { name: "ann".into() }),
        "{events:#?}"
    );
    let gaps: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Gap { .. }))
        .collect();
    assert!(gaps.is_empty(), "{gaps:?}");
    let said: Vec<(u64, String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                room,
                from,
                text,
                offset: Some(offset),
                history,
            } if room == "lobby" && from == "speaker" => Some((*offset, text.clone(), *history)),
            _ => None,
        })
        .collect();
    // Missed: replayed, so marked history; then live.
    let expected: Vec<(u64, String, bool)> =
        (5..36).map(|i| (i, format!("m{i}"), i < 35)).collect();
    assert_eq!(said, expected);
}
