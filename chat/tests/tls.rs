//! `chat serve --tls-cert --tls-key [--plain-addr]` and `chat connect
//! --tls --ca` end to end, with certificates made by the test CA of the
//! conformance suite and written to a scratch directory.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use chat_conformance::tls::{other_ca, test_ca};
use chat_conformance::wire::{RawConn, Target};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("chat-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `chat serve`, and the addresses it logged.
struct Serve {
    child: Child,
    /// `--addr`, then `--plain-addr` if given.
    addrs: Vec<SocketAddr>,
}

impl Serve {
    fn start(args: &[&str], listeners: usize) -> Serve {
        let mut addrs = Vec::new();
        let args = [&["serve", "--addr", "127.0.0.1:0"][..], args].concat();
        let child = common::spawn_serve(&args, |line| {
            addrs.extend(common::address_after(line, "listening on "));
            addrs.len() == listeners
        })
        .unwrap_or_else(|log| panic!("chat serve exited early: {log}"));
        Serve { child, addrs }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serves_tls_and_plain_text_side_by_side(runtime: &str) {
    let scratch = Scratch::new(runtime);
    let [_, cert, key] = test_ca().write_pem_files(&scratch.0);
    let server = Serve::start(
        &[
            "--runtime",
            runtime,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--plain-addr",
            "127.0.0.1:0",
        ],
        2,
    );
    let tls = Target {
        addr: server.addrs[0],
        tls: true,
    };
    let mut a = RawConn::login(tls, "over_tls");
    let mut b = RawConn::login(server.addrs[1], "in_clear");
    a.expect("join:in_clear");
    b.send(b"msg:one room for both\n");
    a.expect("msg:in_clear:one room for both");
    b.expect("msg:in_clear:one room for both");
    a.send(b"msg:back\n");
    b.expect("msg:over_tls:back");
}

#[test]
fn tokio_serves_tls_and_plain_text_side_by_side() {
    serves_tls_and_plain_text_side_by_side("tokio");
}

#[test]
fn async_std_serves_tls_and_plain_text_side_by_side() {
    serves_tls_and_plain_text_side_by_side("async-std");
}

#[test]
fn std_serves_tls_and_plain_text_side_by_side() {
    serves_tls_and_plain_text_side_by_side("std");
}

#[test]
fn connect_speaks_tls_verified_against_the_given_ca() {
    let scratch = Scratch::new("connect");
    let [ca, cert, key] = test_ca().write_pem_files(&scratch.0);
    let server = Serve::start(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        1,
    );
    let mut watcher = RawConn::login(
        Target {
            addr: server.addrs[0],
            tls: true,
        },
        "watcher",
    );
    let mut connect = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["connect", "--name", "zhangsan", "--tls", "--ca"])
        .arg(&ca)
        .args(["--addr", &format!("localhost:{}", server.addrs[0].port())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start chat connect");
    let mut stdin = connect.stdin.take().expect("stdin");
    stdin.write_all(b"did you have dinner\n").expect("type");
    watcher.expect("join:zhangsan");
    watcher.expect("msg:zhangsan:did you have dinner");
    drop(stdin);
    let output = connect.wait_with_output().expect("chat connect ends");
    assert!(output.status.success());
    watcher.expect("left:zhangsan");
}

#[test]
fn connect_refuses_a_server_its_ca_does_not_vouch_for() {
    let scratch = Scratch::new("refuse");
    let [_, cert, key] = test_ca().write_pem_files(&scratch.0);
    let other = scratch.0.join("other-ca.pem");
    std::fs::write(&other, &other_ca().ca_pem).expect("write");
    let server = Serve::start(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        1,
    );
    let output = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["connect", "--name", "zhangsan", "--ca"])
        .arg(&other)
        .args(["--addr", &server.addrs[0].to_string(), "--no-reconnect"])
        .stdin(Stdio::null())
        .output()
        .expect("run chat connect");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid peer certificate") && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
}

#[test]
fn serve_names_what_is_wrong_with_the_certificate_or_key() {
    let scratch = Scratch::new("bad");
    let [_, cert, key] = test_ca().write_pem_files(&scratch.0);
    let other_key = scratch.0.join("other-key.pem");
    std::fs::write(&other_key, &other_ca().key_pem).expect("write");
    let serve = |cert: &PathBuf, key: &PathBuf| {
        let output = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .expect("run chat serve");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    // The files swapped.
    let stderr = serve(&key, &cert);
    assert!(stderr.contains("holds no certificate"), "{stderr}");
    assert!(stderr.contains(key.to_str().unwrap()), "{stderr}");
    // A key of another certificate.
    let stderr = serve(&cert, &other_key);
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
    // No such file.
    let stderr = serve(&scratch.0.join("missing.pem"), &key);
    assert!(
        stderr.contains("cannot read the certificate file"),
        "{stderr}"
    );
}
