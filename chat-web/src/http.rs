//! The HTTP listener: accepts connections, bounds them, and serves each
//! with hyper, the routes answering.
//!
//! axum's own `serve` sets no timeouts and no limit, which is fine behind
//! a proxy and not on the open internet, so the accept loop is our own,
//! with hyper's HTTP/1 connection builder:
//!
//! * at most [`WebConfig::max_connections`] HTTP connections at once; one
//!   more is answered `503` at once and closed (in a flood, beyond 64
//!   being answered, closed without a word; a WebSocket stops counting
//!   once upgraded: from then on it is a chat connection, and the hub's
//!   connection limits count it);
//! * a request's headers must arrive within
//!   [`WebConfig::header_timeout`], including the next request's on an
//!   idle keep-alive connection, so a silent or slow client cannot hold a
//!   connection;
//! * on shutdown the loop stops accepting and every connection is told to
//!   finish its request in flight and close.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

use crate::WebConfig;

/// What a connection over the limit is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 20\r\nconnection: close\r\n\r\ntoo many connections";

/// How long a refused connection may take to be told so.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Refused connections told so at once; beyond them (a flood), one more
/// is closed without a word, so that refusing costs bounded memory.
const REFUSALS: usize = 64;

/// Tells a connection over the limit so and closes it, reading what it
/// sent meanwhile (closing with unread input would reset the connection,
/// and the client could lose the answer), for [`REFUSAL_TIME`] at most.
async fn refuse(mut stream: TcpStream) {
    let refusal = async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_TIME, refusal).await;
}

/// Accepts and serves until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    config: &WebConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "http connection refused: too many");
            if let Ok(refusing) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusing);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |mut request: hyper::Request<Incoming>| {
                // The WebSocket handler gives the hub the peer's address.
                request.extensions_mut().insert(ConnectInfo(remote));
                let mut router = router.clone();
                async move { router.call(request).await }
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "http connection ended");
            }
            drop(permit);
        });
    }
    tracing::info!("http listener stopped");
    let _ = stop_tx.send(true);
    Ok(())
}
