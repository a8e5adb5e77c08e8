//! End to end: the generator's fan-out and scale scenarios against a real
//! tokio server started in this process on 127.0.0.1:0. Small and bounded:
//! K=3 clients × M=50 messages must arrive complete and in order, in
//! bursts and paced, and a few idle connections must log in and hold;
//! the same over TLS (`--tls-ca`), against a server serving the
//! conformance suite's test certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_conformance::tls::test_ca;
use chat_load::fanout::{self, FanoutConfig, Pacing};
use chat_load::report::Status;
use chat_load::scale::{self, ScaleConfig};
use chat_load::stream::TlsClient;
use chat_proto::{Keepalive, ServerConfig};
use transport_tokio::Server;

/// Starts a server on its own runtime thread; returns its address. The
/// thread ends with the test process.
fn start_server(config: ServerConfig) -> SocketAddr {
    start(config, false)
}

/// [`start_server`], serving TLS with the conformance suite's test
/// certificate.
fn start_tls_server(config: ServerConfig) -> SocketAddr {
    start(config, true)
}

fn start(config: ServerConfig, tls: bool) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let server = match tls {
                false => Server::bind("127.0.0.1:0", config).await,
                true => Server::bind_tls("127.0.0.1:0", config, test_ca().server()).await,
            }
            .expect("bind");
            tx.send(server.local_addr().expect("addr"))
                .expect("send addr");
            server.serve().await.expect("serve");
        });
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("server started")
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

fn small(addr: SocketAddr, pacing: Pacing) -> FanoutConfig {
    let mut cfg = FanoutConfig::new(addr, 3, 50, 64);
    cfg.pacing = pacing;
    cfg.batch = 8;
    cfg.login_timeout = Duration::from_secs(2);
    cfg.run_timeout = Duration::from_secs(3);
    cfg.stall_timeout = Duration::from_secs(1);
    // Measure the test process itself: exercises the /proc path.
    cfg.server_pid = Some(std::process::id());
    cfg
}

#[test]
fn burst_fanout_delivers_everything_in_order() {
    let addr = start_server(ServerConfig::default());
    let cfg = small(addr, Pacing::Burst { window: 10 });
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.expected(), 3 * 50 * 3);
    assert_eq!(report.totals.received_total(), 450);
    assert_eq!(report.totals.losses_total(), 0);
    assert_eq!(report.totals.reorders_total(), 0);
    assert_eq!(report.errors, 0);
    assert_eq!(report.latency.count(), 450);
    assert!(report.latency.quantile(0.5) > 0);
    assert!(report.cpu.server_s.is_some());
    let line = report.result_line();
    assert!(
        line.contains(" expected=450 received=450 lost=0 reordered=0 "),
        "{line}"
    );
}

#[test]
fn paced_fanout_and_unlimited_window_deliver_everything() {
    let addr = start_server(ServerConfig::default());
    let mut cfg = small(addr, Pacing::Rate(500.0));
    cfg.name_prefix = "paced".into();
    let report = client_runtime()
        .block_on(fanout::run(&cfg))
        .expect("paced run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.received_total(), 450);
    // 50 messages at 500/s take about 0.1 s.
    assert!(report.cpu.wall_s >= 0.09, "{}", report.cpu.wall_s);

    let mut cfg = small(addr, Pacing::Burst { window: 0 });
    cfg.name_prefix = "blast".into();
    let report = client_runtime()
        .block_on(fanout::run(&cfg))
        .expect("burst run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.reorders_total(), 0);
}

#[test]
fn idle_connections_log_in_and_answer_pings() {
    let mut config = ServerConfig::default();
    config.keepalive = Keepalive::new(Duration::from_millis(200), Duration::from_millis(500));
    let addr = start_server(config);
    let mut cfg = ScaleConfig::new(addr, 20, Duration::from_millis(700));
    cfg.sources = 2;
    cfg.login_timeout = Duration::from_secs(2);
    let report = client_runtime()
        .block_on(scale::run(&cfg))
        .expect("scale run");
    // Pinged every 200 ms for 0.7 s, 20 connections: dozens of pongs, and
    // nobody dropped for silence.
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert!(report.pings_in_hold >= 20, "{}", report.summary());
    assert!(report.result_line().contains(" connections=20 "));
}

#[test]
fn addresses_outside_loopback_are_refused() {
    let cfg = FanoutConfig::new("192.0.2.1:7878".parse().unwrap(), 3, 50, 64);
    let err = client_runtime().block_on(fanout::run(&cfg)).unwrap_err();
    assert!(err.to_string().contains("outside 127.0.0.0/8"), "{err}");
}

#[test]
fn a_missing_server_fails_fast() {
    // A port nobody listens on: bind one, then drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = small(port, Pacing::Burst { window: 10 });
    let err = client_runtime().block_on(fanout::run(&cfg)).unwrap_err();
    assert!(err.to_string().contains("connect"), "{err}");
}

#[test]
fn rooms_fanout_delivers_each_message_to_its_room_only() {
    let addr = start_server(ServerConfig::default());
    // 5 clients over 2 rooms (sizes 3 and 2), each saying say:ROOM:...
    let mut cfg = small(addr, Pacing::Burst { window: 10 });
    cfg.clients = 5;
    cfg.rooms = Some(2);
    cfg.name_prefix = "roomy".into();
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.expected(), 50 * (3 * 3 + 2 * 2));
    assert_eq!(report.totals.expected_per_sender, [150, 100, 150, 100, 150]);
    assert_eq!(report.totals.received_total(), 650);
    assert_eq!(report.totals.reorders_total(), 0);
    assert_eq!(report.errors, 0);
    assert!(report.result_line().contains(" rooms=2 clients=5 "));

    let mut cfg = small(addr, Pacing::Rate(500.0));
    cfg.rooms = Some(3);
    cfg.name_prefix = "paced-roomy".into();
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("paced");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.received_total(), 3 * 50);
}

#[test]
fn idle_connections_log_in_and_join_their_rooms() {
    let addr = start_server(ServerConfig::default());
    let mut cfg = ScaleConfig::new(addr, 20, Duration::from_millis(300));
    cfg.rooms = Some(3);
    cfg.login_timeout = Duration::from_secs(2);
    let report = client_runtime()
        .block_on(scale::run(&cfg))
        .expect("scale run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert!(report.result_line().contains(" rooms=3 connections=20 "));
    assert!(report.summary().contains("joins one of 3 rooms"));
}

/// The test CA's certificate in a file, as `--tls-ca` takes it.
fn ca_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-load-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let [ca, _, _] = test_ca().write_pem_files(&dir);
    ca
}

#[test]
fn tls_fanout_delivers_everything_in_order() {
    let addr = start_tls_server(ServerConfig::default());
    let ca = ca_file("fanout");
    let mut cfg = FanoutConfig::new(addr, 3, 50, 64);
    cfg.pacing = Pacing::Burst { window: 10 };
    cfg.batch = 8;
    cfg.login_timeout = Duration::from_secs(5);
    cfg.run_timeout = Duration::from_secs(5);
    cfg.stall_timeout = Duration::from_secs(2);
    cfg.tls = Some(TlsClient::new(ca.to_str().unwrap(), None, addr).expect("TLS settings"));
    let report = client_runtime().block_on(fanout::run(&cfg)).expect("run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!(report.totals.received_total(), 450);
    assert_eq!(report.totals.losses_total(), 0);
    assert_eq!(report.totals.reorders_total(), 0);
    let _ = std::fs::remove_dir_all(ca.parent().unwrap());
}

#[test]
fn tls_idle_connections_log_in_and_answer_pings() {
    let mut config = ServerConfig::default();
    config.keepalive = Keepalive::new(Duration::from_millis(200), Duration::from_millis(500));
    let addr = start_tls_server(config);
    let ca = ca_file("scale");
    let mut cfg = ScaleConfig::new(addr, 10, Duration::from_millis(700));
    cfg.login_timeout = Duration::from_secs(5);
    cfg.tls = Some(TlsClient::new(ca.to_str().unwrap(), Some("localhost"), addr).expect("TLS"));
    let report = client_runtime()
        .block_on(scale::run(&cfg))
        .expect("scale run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert!(report.pings_in_hold >= 10, "{}", report.summary());
    let _ = std::fs::remove_dir_all(ca.parent().unwrap());
}

#[test]
fn a_ca_file_that_is_not_one_is_refused_before_connecting() {
    let dir = std::env::temp_dir().join(format!("chat-load-tls-{}-bad", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let err =
        TlsClient::new(bad.to_str().unwrap(), None, "127.0.0.1:1".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("holds no certificate"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_delivers_every_missed_message_to_every_client_and_sees_gaps() {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config.history.messages = 300;
    config.history.max_replay = 300;
    let addr = start_server(config.clone());
    let mut cfg = chat_load::resume::ResumeConfig::new(addr, 20, 300, 64);
    cfg.timeout = Duration::from_secs(10);
    cfg.server_pid = Some(std::process::id());
    let report = client_runtime()
        .block_on(chat_load::resume::run(&cfg))
        .expect("run");
    assert_eq!(report.status, Status::Ok, "{}", report.summary());
    assert_eq!((report.complete, report.delivered), (20, 20 * 300));
    assert!(report.result_line().contains("status=ok"));
    // A server that keeps less than was missed: every client reports the
    // gap, and the run fails.
    config.history.messages = 100;
    let addr = start_server(config);
    let mut cfg = chat_load::resume::ResumeConfig::new(addr, 3, 300, 64);
    cfg.timeout = Duration::from_secs(10);
    let report = client_runtime()
        .block_on(chat_load::resume::run(&cfg))
        .expect("run");
    assert_eq!(report.complete, 0);
    match &report.status {
        Status::Fail(why) => assert!(why.contains("err:history-gap"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}
