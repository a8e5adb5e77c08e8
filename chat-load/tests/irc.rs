//! The IRC mode of the fan-out scenario against a small fake IRC server
//! written here (no ngircd needed), on 127.0.0.1:0.
//!
//! The fake does what the generator relies on, the way ngircd does it:
//! `NICK` and `USER` are welcomed with `001` (followed by a harmless `422`,
//! no MOTD, and a `PING` that must be answered); `JOIN` is echoed to every
//! member and ends with the names (`353`, `366`); a `PRIVMSG` to a channel
//! goes to every member but its sender; after a client's tenth message it
//! is sent a `PING` too. It counts the `PONG`s it gets back. A nickname
//! starting with `taken` is refused with `433`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_load::fanout::{self, FanoutConfig, Pacing};
use chat_load::report::Status;
use chat_load::wire::Protocol;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the fake server saw.
#[derive(Default)]
struct Seen {
    /// PONGs answering the PING sent at registration.
    registration_pongs: AtomicU64,
    /// PONGs answering the PINGs sent during the run.
    run_pongs: AtomicU64,
    /// PRIVMSGs relayed.
    privmsgs: AtomicU64,
}

type Channels = Mutex<HashMap<String, Vec<(String, mpsc::UnboundedSender<Vec<u8>>)>>>;

/// Starts the fake on its own runtime thread; returns its address and what
/// it sees. The thread ends with the test process.
fn start_fake() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let counters = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fake runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            let channels: Arc<Channels> = Arc::default();
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                tokio::spawn(client(stream, channels.clone(), counters.clone()));
            }
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("fake started");
    (addr, seen)
}

/// One client of the fake server.
async fn client(stream: TcpStream, channels: Arc<Channels>, seen: Arc<Seen>) {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let (out, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = queue.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let send = |s: String| {
        let _ = out.send(s.into_bytes());
    };
    let mut lines = BufReader::new(rd).lines();
    let (mut nick, mut said) = (String::new(), 0u32);
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim_end_matches('\r');
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let source = format!(":{nick}!~{nick}@127.0.0.1");
        match command {
            "NICK" if rest.starts_with("taken") => {
                send(format!(":fake 433 * {rest} :Nickname already in use\r\n"));
            }
            "NICK" => nick = rest.to_string(),
            "USER" => {
                send(format!(":fake 001 {nick} :Welcome {nick}\r\n"));
                send(format!(":fake 422 {nick} :MOTD File is missing\r\n"));
                send("PING :registration\r\n".to_string());
            }
            "PONG" if rest == ":registration" => {
                seen.registration_pongs.fetch_add(1, Ordering::Relaxed);
            }
            "PONG" => {
                seen.run_pongs.fetch_add(1, Ordering::Relaxed);
            }
            "JOIN" => {
                let mut map = channels.lock().unwrap();
                let members = map.entry(rest.to_string()).or_default();
                members.push((nick.clone(), out.clone()));
                for (_, member) in members.iter() {
                    let _ = member.send(format!("{source} JOIN :{rest}\r\n").into_bytes());
                }
                let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
                send(format!(
                    ":fake 353 {nick} = {rest} :{}\r\n",
                    names.join(" ")
                ));
                send(format!(":fake 366 {nick} {rest} :End of NAMES list\r\n"));
            }
            "PRIVMSG" => {
                let (target, _) = rest.split_once(' ').unwrap_or((rest, ""));
                let relayed = format!("{source} {line}\r\n").into_bytes();
                let map = channels.lock().unwrap();
                for (member, tx) in map.get(target).into_iter().flatten() {
                    if *member != nick {
                        let _ = tx.send(relayed.clone());
                    }
                }
                seen.privmsgs.fetch_add(1, Ordering::Relaxed);
                said += 1;
                if said == 10 {
                    send(format!("PING :run-{nick}\r\n"));
                }
            }
            _ => {}
        }
    }
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

fn irc(addr: SocketAddr, clients: usize, pacing: Pacing) -> FanoutConfig {
    let mut cfg = FanoutConfig::new(addr, clients, 50, 64);
    cfg.protocol = Protocol::Irc;
    cfg.pacing = pacing;
    cfg.batch = 8;
    cfg.login_timeout = Duration::from_secs(2);
    cfg.run_timeout = Duration::from_secs(3);
    cfg.stall_timeout = Duration::from_secs(1);
    cfg
}

#[test]
fn irc_burst_registers_joins_answers_pings_and_expects_k_minus_1() {
    let (addr, seen) = start_fake();
    let cfg = irc(addr, 4, Pacing::Burst { window: 5 });
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    // Nobody hears themselves: 4 senders x 50 messages x 3 receivers.
    assert_eq!(report.totals.expected(), 4 * 50 * 3);
    assert_eq!(report.totals.expected_per_sender, [150; 4]);
    assert_eq!(report.totals.received_total(), 600);
    assert_eq!(report.totals.losses_total(), 0);
    assert_eq!(report.totals.reorders_total(), 0);
    assert_eq!(report.errors, 0);
    assert_eq!(report.latency.count(), 600);
    assert_eq!(seen.privmsgs.load(Ordering::Relaxed), 200);
    assert_eq!(seen.registration_pongs.load(Ordering::Relaxed), 4);
    // Each client is pinged after its tenth message, and answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while seen.run_pongs.load(Ordering::Relaxed) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen.run_pongs.load(Ordering::Relaxed), 4);
    let line = report.result_line();
    assert!(line.starts_with("RESULT mode=fanout server="), "{line}");
    assert!(line.contains(" protocol=irc clients=4 "), "{line}");
    assert!(
        line.contains(" expected=600 received=600 lost=0 "),
        "{line}"
    );
    assert!(
        report.summary().contains("n-1 times"),
        "{}",
        report.summary()
    );
}

#[test]
fn irc_paced_and_unwindowed_bursts_deliver_everything() {
    let (addr, _) = start_fake();
    let mut cfg = irc(addr, 3, Pacing::Rate(500.0));
    cfg.name_prefix = "paced".into();
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("paced");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.received_total(), 3 * 50 * 2);
    assert!(report.cpu.wall_s >= 0.09, "{}", report.cpu.wall_s);

    let mut cfg = irc(addr, 3, Pacing::Burst { window: 0 });
    cfg.name_prefix = "blast".into();
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("burst");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.received_total(), 300);
}

#[test]
fn irc_rooms_are_channels_of_their_own() {
    let (addr, seen) = start_fake();
    // 6 clients over 3 channels (#bench0..2) of 2: one delivery a message.
    let mut cfg = irc(addr, 6, Pacing::Burst { window: 3 });
    cfg.rooms = Some(3);
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.expected(), 6 * 50);
    assert_eq!(report.totals.received_total(), 300);
    assert_eq!(seen.privmsgs.load(Ordering::Relaxed), 300);
    assert!(report.result_line().contains(" protocol=irc rooms=3 "));
}

#[test]
fn a_refused_nickname_fails_the_login() {
    let (addr, _) = start_fake();
    let mut cfg = irc(addr, 2, Pacing::Burst { window: 5 });
    cfg.name_prefix = "taken".into();
    let err = client_runtime().block_on(fanout::run(&cfg)).unwrap_err();
    assert!(err.to_string().contains("433"), "{err}");
}

#[test]
fn irc_needs_two_members_a_room_and_valid_nicks() {
    let (addr, _) = start_fake();
    let cfg = irc(addr, 1, Pacing::Burst { window: 5 });
    assert!(cfg.validate().is_err());
    let mut cfg = irc(addr, 4, Pacing::Burst { window: 5 });
    cfg.rooms = Some(3);
    assert!(cfg.validate().is_err());
    cfg.rooms = None;
    cfg.name_prefix = "9x".into();
    assert!(cfg.validate().is_err());
    cfg.name_prefix = "load".into();
    cfg.size = 600;
    assert!(cfg.validate().unwrap_err().to_string().contains("512"));
}
