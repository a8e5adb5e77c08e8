//! `chat serve` stops gracefully on SIGHUP (the terminal it ran in closed)
//! and SIGTERM, on every runtime: every client is told `bye:` and the
//! process exits 0. Also: the per-address flags reach the server.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use chat_conformance::wire::RawConn;
use common::Serve;

/// Clients connected when the signal comes.
const CLIENTS: usize = 50;

fn every_client_gets_bye(runtime: &str, signal: &str) {
    let server = Serve::start(&["--runtime", runtime]);
    let mut clients: Vec<RawConn> = (0..CLIENTS)
        .map(|i| RawConn::login(server.addr, &format!("c{i}")))
        .collect();
    // The last login is known to all once the first client has seen it;
    // then every client is surely in the room.
    clients[0].skip_to(&format!("join:c{}", CLIENTS - 1));
    let status = server.signal_and_wait(signal);
    assert!(status.success(), "SIG{signal} on {runtime}: {status:?}");
    for (i, client) in clients.iter_mut().enumerate() {
        let lines = client.expect_eof();
        assert_eq!(
            lines.last().map(String::as_str),
            Some("bye:server shutting down"),
            "client {i} after SIG{signal} on {runtime}: {lines:?}"
        );
        // Before it, only presence.
        for line in &lines[..lines.len() - 1] {
            assert!(line.starts_with("join:"), "client {i}: {line:?}");
        }
    }
}

#[test]
fn tokio_stops_gracefully_on_sighup() {
    every_client_gets_bye("tokio", "HUP");
}

#[test]
fn async_std_stops_gracefully_on_sighup() {
    every_client_gets_bye("async-std", "HUP");
}

#[test]
fn std_stops_gracefully_on_sighup() {
    every_client_gets_bye("std", "HUP");
}

#[test]
fn tokio_stops_gracefully_on_sigterm() {
    every_client_gets_bye("tokio", "TERM");
}

#[test]
fn async_std_stops_gracefully_on_sigterm() {
    every_client_gets_bye("async-std", "TERM");
}

#[test]
fn std_stops_gracefully_on_sigterm() {
    every_client_gets_bye("std", "TERM");
}

/// `--max-per-address` and `--exempt none` reach the server: the third
/// connection from 127.0.0.2 is refused while 127.0.0.3 still connects.
#[test]
fn per_address_flags_reach_the_server() {
    let server = Serve::start(&["--max-per-address", "2", "--exempt", "none"]);
    let from = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let _kept: Vec<RawConn> = (0..2)
        .map(|i| {
            let mut conn = RawConn::connect_from(server.addr, from(2));
            conn.send(format!("iam:p{i}\n").as_bytes());
            conn.expect(&format!("ok:p{i}"));
            conn
        })
        .collect();
    let mut refused = RawConn::connect_from(server.addr, from(2));
    let lines = refused.expect_eof();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("err:too-many-connections:at most 2 connections"),
        "{lines:?}"
    );
    let mut other = RawConn::connect_from(server.addr, from(3));
    other.send(b"iam:q\n");
    other.expect("ok:q");
}
