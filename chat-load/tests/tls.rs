//! The generator over TLS (`--tls-ca`): fan-out and idle connections
//! against a tokio server serving the conformance suite's test
//! certificate, started in this process on 127.0.0.1:0.

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

/// Starts a TLS server on its own runtime thread; returns its address. The
/// thread ends with the test process.
fn start_tls_server(config: ServerConfig) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let server = Server::bind_tls("127.0.0.1:0", config, test_ca().server())
                .await
                .expect("bind");
            tx.send(server.local_addr().expect("addr"))
                .expect("send addr");
            server.serve().await.expect("serve");
        });
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("server started")
}

/// The test CA's certificate in a file, as `--tls-ca` takes it.
fn ca_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-load-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let [ca, _, _] = test_ca().write_pem_files(&dir);
    ca
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
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
