//! Streams attached to a running server (`Server::attacher`): they share
//! the room with TCP clients, the hub's limits apply to them, and
//! attaching fails once the server has stopped.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncReadCompatExt;
use transport_tokio::{Peer, Server, ServerConfig, ServerGone};

const LIMIT: Duration = Duration::from_secs(10);

/// A raw client over any byte stream: writes lines, reads lines.
struct Raw<S> {
    io: BufReader<S>,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Raw<S> {
    async fn send(&mut self, line: &str) {
        self.io.get_mut().write_all(line.as_bytes()).await.unwrap();
        self.io.get_mut().write_all(b"\n").await.unwrap();
    }

    /// The next line, without its LF; `None` at the end of the stream.
    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(LIMIT, self.io.read_line(&mut line))
            .await
            .expect("a line in time")
            .unwrap();
        (n > 0).then(|| line.trim_end_matches('\n').to_owned())
    }

    async fn expect(&mut self, want: &str) {
        assert_eq!(self.line().await.as_deref(), Some(want));
    }
}

fn pipe() -> (DuplexStream, Raw<DuplexStream>) {
    let (server_end, client_end) = tokio::io::duplex(4096);
    (
        server_end,
        Raw {
            io: BufReader::new(client_end),
        },
    )
}

#[tokio::test]
async fn an_attached_stream_chats_with_a_tcp_client_in_one_room() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let attacher = server.attacher("test-pipe");
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());

    let (server_end, mut piped) = pipe();
    let peer = Peer::plain(Some([127, 0, 0, 9].into()));
    attacher.attach(server_end.compat(), peer).await.unwrap();
    piped.send("iam:zhangsan").await;
    piped.expect("ok:zhangsan").await;

    let mut tcp = Raw {
        io: BufReader::new(TcpStream::connect(addr).await.unwrap()),
    };
    tcp.send("iam:lisi").await;
    tcp.expect("ok:lisi").await;
    piped.expect("join:lisi").await;
    tcp.send("msg:did you have dinner").await;
    piped.expect("msg:lisi:did you have dinner").await;
    tcp.expect("msg:lisi:did you have dinner").await;
    piped.send("msg:not yet").await;
    tcp.expect("msg:zhangsan:not yet").await;
    piped.expect("msg:zhangsan:not yet").await;
    piped.send("who:").await;
    piped.expect("users:zhangsan,lisi").await;
    piped.expect("users:").await;

    // Measured by the server like any connection.
    let snapshot = handle.measure().await.unwrap();
    assert_eq!((snapshot.connections, snapshot.members), (2, 2));

    // The hub closes the attached stream as it would a socket.
    piped.send("bye:off").await;
    piped.expect("bye:off").await;
    assert_eq!(piped.line().await, None);
    tcp.expect("left:zhangsan").await;

    handle.shutdown();
    tcp.expect("bye:server shutting down").await;
    tokio::time::timeout(LIMIT, serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (server_end, _piped) = pipe();
    assert!(attacher.is_server_gone());
    assert_eq!(
        attacher
            .attach(server_end.compat(), Peer::plain(None))
            .await,
        Err(ServerGone)
    );
}

#[tokio::test]
async fn the_connection_limit_counts_attached_streams() {
    let mut config = ServerConfig::default();
    config.max_connections = 1;
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let attacher = server.attacher("test-pipe");
    tokio::spawn(server.serve());

    let (server_end, mut first) = pipe();
    attacher
        .attach(server_end.compat(), Peer::plain(None))
        .await
        .unwrap();
    first.send("iam:a").await;
    first.expect("ok:a").await;
    let (server_end, mut second) = pipe();
    attacher
        .attach(server_end.compat(), Peer::plain(None))
        .await
        .unwrap();
    second.expect("err:server-full:at most 1 connections").await;
    assert_eq!(second.line().await, None);
}

#[tokio::test]
async fn the_per_address_limits_count_an_attached_streams_peer() {
    let mut config = ServerConfig::default();
    config.addresses.max_connections = 1;
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let attacher = server.attacher("test-pipe");
    tokio::spawn(server.serve());

    // An address that is not loopback, so not exempt (a label only: no
    // traffic goes anywhere).
    let peer = Peer::plain(Some([192, 0, 2, 1].into()));
    let (server_end, mut first) = pipe();
    attacher.attach(server_end.compat(), peer).await.unwrap();
    first.send("iam:a").await;
    first.expect("ok:a").await;
    let (server_end, mut second) = pipe();
    attacher.attach(server_end.compat(), peer).await.unwrap();
    let refusal = second.line().await.unwrap();
    assert!(
        refusal.starts_with("err:too-many-connections:"),
        "{refusal}"
    );
    // Another address is let in.
    let (server_end, mut third) = pipe();
    let other = Peer::plain(Some([192, 0, 2, 2].into()));
    attacher.attach(server_end.compat(), other).await.unwrap();
    third.send("iam:c").await;
    third.expect("ok:c").await;
}
