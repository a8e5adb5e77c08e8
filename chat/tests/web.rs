//! `chat serve --http` end to end: a WebSocket user and a raw TCP user
//! share the room on the tokio and async-std servers, /metrics and
//! /healthz answer, SIGINT ends the WebSocket with `bye:` too; the std
//! server and bad flags are refused at startup.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chat_conformance::wire::RawConn;
use tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(10);

/// `chat serve --http` as a child process, with both of its addresses.
struct ServeHttp {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
}

/// The address after `marker` in a log line, if there is one.
impl ServeHttp {
    fn start(runtime: &str) -> ServeHttp {
        let (mut tcp, mut http) = (None, None);
        let args = ["serve", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0"];
        let child = common::spawn_serve(&[&args[..], &["--runtime", runtime]].concat(), |line| {
            tcp = tcp.or_else(|| common::address_after(line, "listening on "));
            http = http.or_else(|| common::address_after(line, "http on "));
            tcp.is_some() && http.is_some()
        })
        .unwrap_or_else(|log| panic!("chat serve exited early: {log}"));
        ServeHttp {
            child,
            tcp: tcp.unwrap(),
            http: http.unwrap(),
        }
    }

    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect_timeout(&self.http, PATIENCE).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("a response");
        response
    }
}

impl Drop for ServeHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn ws_login(http: SocketAddr, name: &str) -> Ws {
    let stream = TcpStream::connect_timeout(&http, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{http}/ws"), stream).expect("handshake");
    ws.send(Message::text(format!("iam:{name}"))).unwrap();
    expect(&mut ws, &format!("ok:{name}"));
    ws
}

/// The next message; a read interrupted by a signal (the test process
/// gets SIGCHLD as servers it started exit) is tried again, as the
/// WebSocket stays usable.
fn read(ws: &mut Ws) -> tungstenite::Result<Message> {
    loop {
        match ws.read() {
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn expect(ws: &mut Ws, want: &str) {
    match read(ws).expect("a message in time") {
        Message::Text(text) => assert_eq!(text.as_str(), want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

fn chats_over_http_and_stops(runtime: &str) {
    let mut server = ServeHttp::start(runtime);
    let page = server.get("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>chat</title>"));

    let mut ws = ws_login(server.http, "zhangsan");
    let mut tcp = RawConn::login(server.tcp, "lisi");
    expect(&mut ws, "join:lisi");
    tcp.send(b"msg:did you have dinner\n");
    expect(&mut ws, "msg:lisi:did you have dinner");
    ws.send(Message::text("msg:not yet")).unwrap();
    expect(&mut ws, "msg:zhangsan:not yet");
    tcp.expect("msg:lisi:did you have dinner");
    tcp.expect("msg:zhangsan:not yet");

    assert!(server.get("/healthz").ends_with("\r\n\r\nok\n"));
    let metrics = server.get("/metrics");
    assert!(metrics.contains("\nchat_logins_total 2\n"), "{metrics}");
    assert!(
        metrics.contains("\nchat_messages_in_total 2\n"),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    expect(&mut ws, "bye:server shutting down");
    assert!(matches!(read(&mut ws), Ok(Message::Close(_))));
    assert_eq!(tcp.expect_eof(), ["bye:server shutting down"]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "chat serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tokio_serves_http_into_the_same_room() {
    chats_over_http_and_stops("tokio");
}

#[test]
fn async_std_serves_http_into_the_same_room() {
    chats_over_http_and_stops("async-std");
}

fn refused(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["serve", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("run chat serve");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn http_is_refused_at_startup_where_it_cannot_work() {
    let stderr = refused(&["--runtime", "std"]);
    assert!(
        stderr.contains("--http needs --runtime tokio or async-std"),
        "{stderr}"
    );
    let stderr = refused(&["--http-origin", "chat.example"]);
    assert!(stderr.contains("--http-origin"), "{stderr}");
    let stderr = refused(&["--http-max-connections", "0"]);
    assert!(stderr.contains("--http-max-connections"), "{stderr}");
}
