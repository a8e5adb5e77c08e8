//! What the web tests share: a chat server with its HTTP side on loopback,
//! run on a tokio runtime of its own so that a test may drive it from
//! blocking code (raw TCP clients) and async code (WebSocket and WebDriver
//! clients) alike; a WebSocket client; a plain HTTP GET.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use chat_web::{WebConfig, WebServer};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use transport_tokio::{Server, ServerConfig, ServerHandle};

/// How long any single expectation may wait.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A chat server and its HTTP side.
pub struct TestWeb {
    pub runtime: tokio::runtime::Runtime,
    /// The chat server's TCP address.
    pub tcp: SocketAddr,
    /// The HTTP side's address.
    pub http: SocketAddr,
    pub handle: ServerHandle,
    server: Option<JoinHandle<std::io::Result<()>>>,
    web: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

impl TestWeb {
    /// Starts both on free loopback ports; `web` adjusts the HTTP side's
    /// configuration.
    pub fn start(config: ServerConfig, web: impl FnOnce(&mut WebConfig)) -> TestWeb {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Self::start_on(runtime, "127.0.0.1:0", "127.0.0.1:0", config, web)
    }

    /// Starts both on the given addresses, on `runtime`.
    pub fn start_on(
        runtime: tokio::runtime::Runtime,
        tcp: &str,
        http: &str,
        config: ServerConfig,
        web: impl FnOnce(&mut WebConfig),
    ) -> TestWeb {
        let mut web_config = WebConfig::for_server(&config);
        web(&mut web_config);
        let (server, web_server) = runtime.block_on(async {
            let server = Server::bind(tcp, config)
                .await
                .expect("bind the chat server");
            let web = WebServer::bind(
                http,
                server.attacher("websocket"),
                server.handle(),
                web_config,
            )
            .await
            .expect("bind the http side");
            (server, web)
        });
        let tcp = server.local_addr().unwrap();
        let http = web_server.local_addr().unwrap();
        let handle = server.handle();
        let server = runtime.spawn(server.serve());
        let (stop, stopped) = oneshot::channel::<()>();
        let web = runtime.spawn(web_server.serve_with_shutdown(async {
            let _ = stopped.await;
        }));
        TestWeb {
            runtime,
            tcp,
            http,
            handle,
            server: Some(server),
            web: Some((stop, web)),
        }
    }

    /// Shuts the chat server down gracefully, then the HTTP side, and
    /// waits for both; gives the runtime back for a restart.
    pub fn stop(mut self) -> tokio::runtime::Runtime {
        self.handle.shutdown();
        let server = self.server.take().unwrap();
        let (stop, web) = self.web.take().unwrap();
        self.runtime.block_on(async {
            let served = tokio::time::timeout(PATIENCE, server).await;
            served.expect("the server stops in time").unwrap().unwrap();
            let _ = stop.send(());
            let served = tokio::time::timeout(PATIENCE, web).await;
            served
                .expect("the http side stops in time")
                .unwrap()
                .unwrap();
        });
        let TestWeb { runtime, .. } = self;
        runtime
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// Opens a WebSocket to `/ws`, with this `Origin` header if given.
    pub fn ws(&self, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
        let mut request = self.ws_url().into_client_request()?;
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().expect("an origin header"));
        }
        let connecting = tokio_tungstenite::connect_async(request);
        let (stream, _) = self
            .runtime
            .block_on(async { tokio::time::timeout(PATIENCE, connecting).await })
            .expect("the handshake ends in time")?;
        Ok(Ws {
            stream,
            runtime: self.runtime.handle().clone(),
        })
    }

    /// Opens a WebSocket and logs in as `name`.
    pub fn ws_login(&self, name: &str) -> Ws {
        let mut ws = self.ws(None).expect("open the websocket");
        ws.send(&format!("iam:{name}"));
        ws.expect(&format!("ok:{name}"));
        ws
    }
}

/// A WebSocket client; every wait is bounded.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    runtime: tokio::runtime::Handle,
}

impl Ws {
    /// Sends one text message.
    pub fn send(&mut self, text: &str) {
        self.send_message(Message::text(text));
    }

    /// Sends one message.
    pub fn send_message(&mut self, message: Message) {
        let sent = self.runtime.block_on(self.stream.send(message));
        sent.expect("send on the websocket");
    }

    /// The next message other than a ping or a pong; `None` when the
    /// stream ends.
    pub fn next(&mut self) -> Option<Message> {
        loop {
            let next = self
                .runtime
                .block_on(async { tokio::time::timeout(PATIENCE, self.stream.next()).await })
                .expect("a message in time");
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next text message, which must be `want`.
    pub fn expect(&mut self, want: &str) {
        match self.next() {
            Some(Message::Text(text)) => assert_eq!(text.as_str(), want),
            other => panic!("expected {want:?}, got {other:?}"),
        }
    }

    /// The next text message, which must start with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        match self.next() {
            Some(Message::Text(text)) if text.as_str().starts_with(prefix) => text.to_string(),
            other => panic!("expected {prefix:?}..., got {other:?}"),
        }
    }

    /// The next message, which must be a close with `code`; returns its
    /// reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        match self.next() {
            Some(Message::Close(Some(frame))) => {
                assert_eq!(
                    u16::from(frame.code),
                    code,
                    "close reason {:?}",
                    frame.reason
                );
                frame.reason.to_string()
            }
            other => panic!("expected a close {code}, got {other:?}"),
        }
    }
}

/// An HTTP response, as [`http_get`] read it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The header lines, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name` (lower case), if present once or more.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        values.next().map(|(_, v)| v.as_str())
    }
}

/// A GET of `path` with a fresh connection.
pub fn http_get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("a whole response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1));
    let status = status.and_then(|s| s.parse().ok()).expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}
