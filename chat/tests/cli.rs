//! The `chat` program end to end: `chat serve` starts, serves raw clients
//! and `chat connect` (with stdin piped), and stops gracefully on SIGINT.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use chat_conformance::wire::RawConn;
use common::Serve;

fn serves_and_stops_gracefully_on_sigint(runtime: &str) {
    let server = Serve::start(&[
        "--max-connections",
        "5",
        "--rate-limit",
        "100",
        "--runtime",
        runtime,
    ]);
    let mut a = RawConn::login(server.addr, "zhangsan");
    let mut b = RawConn::login(server.addr, "lisi");
    a.expect("join:lisi");
    b.send(b"msg:did you have dinner\n");
    a.expect("msg:lisi:did you have dinner");
    let status = server.interrupt_and_wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(a.expect_eof(), ["bye:server shutting down"]);
}

#[test]
fn tokio_serves_and_stops_gracefully_on_sigint() {
    serves_and_stops_gracefully_on_sigint("tokio");
}

#[test]
fn async_std_serves_and_stops_gracefully_on_sigint() {
    serves_and_stops_gracefully_on_sigint("async-std");
}

#[test]
fn std_serves_and_stops_gracefully_on_sigint() {
    serves_and_stops_gracefully_on_sigint("std");
}

#[test]
fn serve_refuses_an_invalid_configuration() {
    let output = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["serve", "--addr", "127.0.0.1:0", "--keepalive-timeout", "0"])
        .output()
        .expect("run chat serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("keepalive.timeout must be greater than zero"),
        "{stderr}"
    );
}

#[test]
fn connect_works_with_stdin_piped() {
    let server = Serve::start(&[]);
    let mut watcher = RawConn::login(server.addr, "watcher");
    let mut connect = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args([
            "connect",
            "--name",
            "zhangsan",
            "--addr",
            &server.addr.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start chat connect");
    let mut stdin = connect.stdin.take().expect("stdin");
    stdin
        .write_all("did you have dinner\n你好\n".as_bytes())
        .expect("type");
    watcher.expect("join:zhangsan");
    watcher.expect("msg:zhangsan:did you have dinner");
    watcher.expect("msg:zhangsan:你好");
    watcher.send(b"msg:yes\n");
    watcher.expect("msg:watcher:yes");
    stdin.write_all(b"/who\n").expect("type");
    drop(stdin);
    let output = connect
        .wait_with_output()
        .expect("chat connect ends at EOF");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    for expected in [
        "zhangsan: did you have dinner",
        "zhangsan: 你好",
        "watcher: yes",
        "* users: watcher, zhangsan",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The end of stdin said bye: the server saw a clean leave.
    watcher.expect("left:zhangsan");
}
