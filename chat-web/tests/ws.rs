//! `/ws` end to end over loopback, with tokio-tungstenite as the client:
//! WebSocket and TCP users share the room; the hub's errors, limits and
//! keepalive reach a WebSocket as they reach a socket; the Origin check,
//! the message bound and the HTTP limits refuse what they must.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use chat_conformance::wire::RawConn;
use chat_web::AllowedOrigins;
use common::{PATIENCE, Response, TestWeb, http_get};
use tokio_tungstenite::tungstenite::{self, Message};
use transport_tokio::{Keepalive, ServerConfig};

#[test]
fn a_websocket_and_a_tcp_client_chat_in_one_room() {
    let web = TestWeb::start(ServerConfig::default(), |_| {});
    let mut ws = web.ws_login("zhangsan");
    let mut tcp = RawConn::login(web.tcp, "lisi");
    ws.expect("join:lisi");

    tcp.send(b"msg:did you have dinner\n");
    ws.expect("msg:lisi:did you have dinner");
    tcp.expect("msg:lisi:did you have dinner");
    ws.send("msg:not yet");
    ws.expect("msg:zhangsan:not yet");
    tcp.expect("msg:zhangsan:not yet");

    ws.send("who:");
    ws.expect("users:zhangsan,lisi");
    ws.expect("users:");

    // The hub's errors, as to a TCP client; the connection goes on.
    ws.send("nonsense:1");
    ws.expect_prefix("err:unknown-tag:");
    ws.send("iam:lisi");
    ws.expect_prefix("err:");

    // Leaving: the hub answers, then the bridge closes normally.
    ws.send("bye:good night");
    ws.expect("bye:good night");
    ws.expect_close(1000);
    tcp.expect("left:zhangsan");
    web.stop();
}

#[test]
fn a_frame_too_long_for_the_hub_is_refused_before_it_is_decoded() {
    let mut config = ServerConfig::default();
    config.max_frame_len = 256;
    let web = TestWeb::start(config, |_| {});
    let mut ws = web.ws_login("a");
    // The longest message taken is the longest frame the hub takes,
    // without its LF: it reaches the hub, which answers it.
    let longest = format!("nonsense:{}", "x".repeat(255 - 9));
    assert_eq!(longest.len(), 255);
    ws.send(&longest);
    ws.expect_prefix("err:unknown-tag:");
    ws.send("msg:still here");
    ws.expect("msg:a:still here");
    // One byte more never reaches the hub: 1009, Message Too Big.
    ws.send(&format!("{longest}x"));
    let reason = ws.expect_close(1009);
    assert!(reason.contains("longer"), "{reason}");
    assert_eq!(ws.next(), None);

    // The bound is the WebSocket layer's, set from the configuration.
    let web = TestWeb::start(ServerConfig::default(), |w| w.max_message_len = 10);
    let mut ws = web.ws(None).unwrap();
    ws.send("iam:abcdef");
    ws.expect("ok:abcdef");
    ws.send("iam:abcdefg");
    ws.expect_close(1009);
}

#[test]
fn a_message_is_one_frame_and_text() {
    let web = TestWeb::start(ServerConfig::default(), |_| {});
    let mut ws = web.ws_login("a");
    ws.send("msg:one\nmsg:two");
    let reason = ws.expect_close(1007);
    assert!(reason.contains("LF"), "{reason}");

    let mut ws = web.ws_login("b");
    ws.send_message(Message::binary(b"msg:hi".to_vec()));
    ws.expect_close(1003);
    web.stop();
}

#[test]
fn the_origin_is_checked_against_the_page_host_or_the_list() {
    let web = TestWeb::start(ServerConfig::default(), |_| {});
    let page = format!("http://{}", web.http);
    // A page of this server, and a program with no Origin, may connect.
    let mut ws = web.ws(Some(&page)).expect("same origin");
    ws.send("iam:a");
    ws.expect("ok:a");
    web.ws(None).expect("no origin");
    // Another site may not: 403 before any upgrade.
    for origin in ["http://evil.example", "http://127.0.0.1:1", "null"] {
        match web.ws(Some(origin)) {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            Err(e) => panic!("{origin}: {e}"),
            Ok(_) => panic!("{origin} was let in"),
        }
    }

    let listed = AllowedOrigins::from_list(&["https://chat.example"]).unwrap();
    let web = TestWeb::start(ServerConfig::default(), |w| w.origins = listed);
    web.ws(Some("https://chat.example"))
        .expect("a listed origin");
    // The page's own host is not listed.
    let refused = web.ws(Some(&format!("http://{}", web.http)));
    assert!(matches!(&refused, Err(tungstenite::Error::Http(r)) if r.status() == 403));
}

#[test]
fn keepalive_pings_a_silent_websocket_and_ends_it() {
    let mut config = ServerConfig::default();
    config.keepalive = Keepalive::new(Duration::from_millis(200), Duration::from_millis(200));
    let web = TestWeb::start(config, |_| {});
    let mut ws = web.ws_login("quiet");
    let ping = ws.expect_prefix("ping:");
    ws.send(&format!("pong:{}", &ping["ping:".len()..]));
    // Silent from now on: pinged, then closed for it.
    ws.expect_prefix("ping:");
    ws.expect_prefix("err:timeout:");
    ws.expect_close(1000);
}

#[test]
fn the_hub_limits_count_websockets() {
    let mut config = ServerConfig::default();
    config.max_connections = 1;
    let web = TestWeb::start(config, |_| {});
    let _first = web.ws_login("a");
    let mut second = web.ws(None).unwrap();
    second.expect("err:server-full:at most 1 connections");
    second.expect_close(1000);
}

#[test]
fn http_connections_are_bounded_in_number_and_in_time() {
    let web = TestWeb::start(ServerConfig::default(), |w| {
        w.max_connections = 1;
        w.header_timeout = Duration::from_secs(1);
    });
    // One idle connection holds the only place: the next is refused.
    let mut idle = TcpStream::connect(web.http).unwrap();
    // Let the server accept it first.
    let refused = wait_for_status(&web, 503);
    assert_eq!(refused.body, "too many connections");
    // The idle one sent no headers in time: closed, and its place freed.
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    let ended = idle.read_to_end(&mut rest);
    assert!(ended.is_ok(), "not closed in time: {ended:?}");
    let answer = wait_for_status(&web, 200);
    assert_eq!(answer.body, "ok\n");
}

/// GETs `/healthz` until it answers `want` (the server accepts in its own
/// time), a bounded number of times.
fn wait_for_status(web: &TestWeb, want: u16) -> Response {
    for _ in 0..100 {
        let answer = http_get(web.http, "/healthz");
        if answer.status == want {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("/healthz never answered {want}");
}
