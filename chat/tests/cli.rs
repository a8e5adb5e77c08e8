//! The `chat` program end to end: `chat serve` starts, serves raw clients
//! and `chat connect` (with stdin piped), and stops gracefully on SIGINT.
//! `chat connect` in line mode across a server that goes away: a line typed
//! meanwhile goes out after the reconnect; leaving meanwhile (a signal, or
//! the end of stdin after `--send-grace`) lists what was not sent and exits;
//! what was said meanwhile beyond the history kept is shown as a gap.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use chat_conformance::relay::Relay;
use chat_conformance::wire::RawConn;
use common::{LineClient, Serve, wait_for_said};

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

/// The server goes away under a line-mode client: it says so and holds a
/// line typed meanwhile.
fn lose_the_server(server: Serve, client: &mut LineClient, typed: &[&str]) {
    drop(server);
    client.wait_for_line("the lost connection", |l| {
        l.starts_with("* connection closed")
    });
    client.wait_for_line("a reconnect planned", |l| {
        l.starts_with("* reconnecting in")
    });
    for line in typed {
        client.type_line(line);
        client.wait_for_line("the line held", |l| {
            l == "* not connected: will send once logged in again"
        });
    }
}

#[test]
fn line_mode_sends_a_line_typed_while_disconnected_after_the_server_restarts() {
    let server = Serve::start(&[]);
    let addr = server.addr;
    let mut client = LineClient::start("zhangsan", addr, &[]);
    lose_the_server(server, &mut client, &["typed while away"]);
    // Back on the same port, with a new history: the client reconnects,
    // sends the held line, and says that what the room said meanwhile may
    // be lost (its resume finds another log).
    let server = Serve::start_at(addr, &[]);
    client.wait_for_line("the echo of the held line", |l| {
        l == "zhangsan: typed while away"
    });
    wait_for_said(server.addr, "watcher", "zhangsan:typed while away");
    // Typing goes on as before.
    client.type_line("back again");
    wait_for_said(server.addr, "watcher2", "zhangsan:back again");
    client.close_stdin();
    let ended = client.wait_for_exit();
    ended.assert_all_sent();
    ended.assert_printed("* logged in as zhangsan\n");
    ended.assert_printed(
        "* the room's history was lost (server restarted?): messages may be missing",
    );
}

#[test]
fn line_mode_input_ending_while_disconnected_sends_the_held_lines_if_the_server_returns_in_time() {
    let server = Serve::start(&[]);
    let addr = server.addr;
    let mut client = LineClient::start("lisi", addr, &["--send-grace", "60"]);
    lose_the_server(server, &mut client, &["one", "two"]);
    client.close_stdin();
    client.wait_for_line("the wait announced", |l| {
        l == "* input ended while disconnected: waiting up to 60.0 s to send 2 typed lines"
    });
    let server = Serve::start_at(addr, &[]);
    let ended = client.wait_for_exit();
    ended.assert_all_sent();
    ended.assert_printed("lisi: one\nlisi: two");
    wait_for_said(server.addr, "watcher", "lisi:two");
}

#[test]
fn line_mode_input_ending_while_disconnected_gives_up_after_the_grace_and_lists_the_lines() {
    let server = Serve::start(&[]);
    let mut client = LineClient::start("wangwu", server.addr, &["--send-grace", "0.5"]);
    lose_the_server(server, &mut client, &["one", "two: 你好"]);
    client.close_stdin();
    // The server never comes back.
    client.wait_for_exit().assert_not_sent(
        "chat: not sent: one\nchat: not sent: two: 你好\n\
         chat: 2 typed lines not sent: the connection was down\n",
    );
}

#[test]
fn line_mode_interrupted_while_disconnected_leaves_at_once_and_lists_the_lines() {
    let server = Serve::start(&[]);
    let mut client = LineClient::start("zhaoliu", server.addr, &[]);
    lose_the_server(server, &mut client, &["kept"]);
    // Stdin stays open and the server away: only the signal ends it.
    client.signal("-INT");
    client.wait_for_exit().assert_not_sent(
        "chat: not sent: kept\nchat: 1 typed line not sent: the connection was down\n",
    );
}

#[test]
fn line_mode_shows_a_line_for_messages_missed_beyond_the_history() {
    let server = Serve::start(&["--history", "5", "--rate-limit", "off"]);
    // The connection is cut between them; the server keeps its history.
    let relay = Relay::start(server.addr);
    let mut client = LineClient::start("ann", relay.addr(), &[]);
    let mut speaker = RawConn::login(server.addr, "speaker");
    client.wait_for_line("speaker's join", |l| l == "* speaker joined");
    relay.cut();
    client.wait_for_line("the lost connection", |l| {
        l.starts_with("* connection closed")
    });
    speaker.skip_to("left:ann");
    let said: String = (0..8).map(|i| format!("msg:m{i}\n")).collect();
    speaker.send(said.as_bytes());
    speaker.skip_to("msg:speaker:m7");
    relay.reopen();
    // Eight said, five kept: three missing, then the five.
    client.wait_for_line("the gap line", |l| {
        l == "* 3 messages were said while you were away and are no longer kept"
    });
    for i in 3..8 {
        let expected = format!("speaker: m{i}");
        client.wait_for_line("a message kept", |l| l == expected);
    }
    client.close_stdin();
    let ended = client.wait_for_exit();
    ended.assert_all_sent();
    assert!(!ended.stdout.contains("speaker: m2"), "{}", ended.stdout);
}
