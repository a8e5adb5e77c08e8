//! `/metrics` and `/healthz` over loopback: the figures after known
//! traffic from a WebSocket and a TCP client, every metric name, and the
//! health check before and after the chat server stops.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chat_conformance::wire::RawConn;
use common::{TestWeb, http_get};
use transport_tokio::{HubCloseReason, ServerConfig};

/// `/metrics` as a map from a sample's name and labels to its value.
fn scrape(web: &TestWeb) -> HashMap<String, f64> {
    let response = http_get(web.http, "/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some(chat_web::METRICS_CONTENT_TYPE)
    );
    let samples = response.body.lines().filter(|l| !l.starts_with('#'));
    samples
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("name value");
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn metrics_count_the_traffic_of_websocket_and_tcp_clients() {
    let web = TestWeb::start(ServerConfig::default(), |_| {});
    let before = scrape(&web);
    assert_eq!(before["chat_connections_open"], 0.0);
    assert_eq!(before["chat_logins_total"], 0.0);

    let mut sent = 0;
    let mut ws = web.ws_login("zhangsan");
    sent += "iam:zhangsan\n".len();
    let mut tcp = RawConn::login(web.tcp, "lisi");
    sent += "iam:lisi\n".len();
    ws.expect("join:lisi");
    for text in ["did you have dinner", "yes"] {
        ws.send(&format!("msg:{text}"));
        sent += format!("msg:{text}\n").len();
        ws.expect(&format!("msg:zhangsan:{text}"));
        tcp.expect(&format!("msg:zhangsan:{text}"));
    }
    tcp.send(b"msg:good\n");
    sent += "msg:good\n".len();
    ws.expect("msg:lisi:good");
    tcp.expect("msg:lisi:good");

    let m = scrape(&web);
    assert_eq!(m["chat_connections_open"], 2.0);
    assert_eq!(m["chat_members"], 2.0);
    assert_eq!(m["chat_rooms"], 1.0);
    assert_eq!(m["chat_connections_accepted_total"], 2.0);
    assert_eq!(m["chat_logins_total"], 2.0);
    assert_eq!(m["chat_messages_in_total"], 3.0);
    assert_eq!(m["chat_deliveries_out_total"], 6.0);
    assert_eq!(m["chat_received_bytes_total"], sent as f64);
    assert!(m["chat_written_bytes_total"] > 0.0);
    for name in [
        "chat_sockets_open",
        "chat_output_unflushed_bytes",
        "chat_room_backlog_bytes",
        "chat_pings_total",
        "chat_input_pauses_total",
        "chat_private_messages_in_total",
        "chat_logins_refused_total",
        "chat_logins_held_total",
        "chat_logins_deferred_total",
        "chat_slow_consumers_total",
        "chat_keepalive_timeouts_total",
    ] {
        assert!(m.contains_key(name), "no {name}");
    }

    // One leaves by bye:, the other's socket just closes.
    tcp.send(b"bye:off\n");
    tcp.expect("bye:off");
    tcp.expect_eof();
    ws.expect("left:lisi");
    drop(ws);
    let m = wait_for(&web, |m| m["chat_connections_open"] == 0.0);
    assert_eq!(m["chat_members"], 0.0);
    let closes = |reason: HubCloseReason| {
        let key = format!("chat_closes_total{{reason=\"{}\"}}", reason.as_str());
        m[&key]
    };
    assert_eq!(closes(HubCloseReason::Bye), 1.0);
    assert_eq!(
        closes(HubCloseReason::PeerClosed) + closes(HubCloseReason::Disconnected),
        1.0
    );
    let total: f64 = HubCloseReason::ALL.into_iter().map(closes).sum();
    assert_eq!(total, 2.0);
    web.stop();
}

/// Scrapes until `done` holds, a bounded number of times (a close reaches
/// the hub in its own time).
fn wait_for(web: &TestWeb, done: impl Fn(&HashMap<String, f64>) -> bool) -> HashMap<String, f64> {
    for _ in 0..200 {
        let m = scrape(web);
        if done(&m) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the metrics never got there");
}

#[test]
fn healthz_answers_while_the_chat_server_runs() {
    let web = TestWeb::start(ServerConfig::default(), |_| {});
    let health = http_get(web.http, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    // The chat server stops; the HTTP side says so.
    web.handle.shutdown();
    for _ in 0..200 {
        let health = http_get(web.http, "/healthz");
        if health.status == 503 {
            assert_eq!(health.body, "the chat server has stopped\n");
            let metrics = http_get(web.http, "/metrics");
            assert_eq!(metrics.status, 503);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("/healthz never answered 503");
}

#[test]
fn the_page_and_its_files_are_served_with_their_types() {
    let web = TestWeb::start(ServerConfig::default(), |_| {});
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let response = http_get(web.http, path);
        assert_eq!(response.status, 200, "{path}");
        let types: Vec<_> = response
            .headers
            .iter()
            .filter(|(n, _)| n == "content-type")
            .collect();
        assert_eq!(types.len(), 1, "{path}: {types:?}");
        assert_eq!(response.header("content-type"), Some(content_type));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert!(!response.body.is_empty());
    }
    let page = http_get(web.http, "/");
    let policy = page.header("content-security-policy").expect("a policy");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!page.body.contains("innerHTML"));
    assert!(!http_get(web.http, "/app.js").body.contains("innerHTML"));
    assert_eq!(http_get(web.http, "/nothing-here").status, 404);
}
