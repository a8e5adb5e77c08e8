//! A WebSocket as a chat connection: each text message is one protocol
//! frame, passed to the hub as a byte stream.
//!
//! The hub speaks a byte stream of LF-ended frames. A browser speaks
//! messages. The bridge turns one into the other and decides nothing
//! else: it makes a pipe in memory, attaches one end to the server
//! ([`Attacher`], so the hub accepts it like a socket, with the WebSocket's
//! peer address), and moves bytes between the other end and the
//! WebSocket:
//!
//! * in: a text message `M` is written to the pipe as `M` LF. A message
//!   cannot be two frames, so a message containing LF is refused (close
//!   1007); so is a binary message (close 1003). What `M` says (a good
//!   frame, a bad one, too long) is the hub's to judge, and it answers as
//!   it answers a TCP client;
//! * out: what the hub writes is split at each LF and each frame sent as
//!   one text message, without its LF; a burst goes out with one flush;
//! * the hub closing the connection (after its `bye:` or `err:` frame)
//!   ends the pipe, and the bridge closes the WebSocket (1000); the
//!   browser closing it, or the connection failing, ends the pipe's input,
//!   and the hub closes the connection as it does a TCP peer's.
//!
//! Size is bounded before anything is decoded: the WebSocket layer refuses
//! a message longer than the longest frame the hub would take (its
//! `max_frame_len` less the LF) while reading it, and closes with 1009.
//! That is the one difference from TCP, where an over-long frame is skipped
//! with `err:too-long` and the connection goes on: a WebSocket message
//! arrives whole, so refusing it late would mean buffering it first.
//!
//! Backpressure is the socket's: the pipe is bounded, the bridge writes to
//! the WebSocket before it reads more of the pipe, so a browser that stops
//! reading leaves the hub's output unwritten, and the hub's own flow
//! control and slow-consumer rule apply to it as to a TCP client.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::compat::TokioAsyncReadCompatExt;
use transport_async::{Attacher, Peer};

/// Bytes the pipe between the bridge and the hub's connection task holds
/// each way.
const PIPE_CAPACITY: usize = 16 * 1024;

/// Close code for a message too big to process (RFC 6455, 7.4.1).
const TOO_BIG: u16 = 1009;

/// Why the browser's side ended.
#[derive(Debug, PartialEq, Eq)]
enum InEnd {
    /// The browser closed the WebSocket, or the connection failed.
    Gone,
    /// The browser broke the mapping: close with this code and reason.
    Refused(u16, &'static str),
    /// The hub's side of the pipe is gone.
    HubGone,
}

/// Runs one WebSocket as a connection of the server behind `attacher`,
/// until either side ends it.
pub(crate) async fn run(ws: WebSocket, attacher: Attacher, peer: Peer) {
    let (hub_end, bridge_end) = tokio::io::duplex(PIPE_CAPACITY);
    let (mut ws_out, mut ws_in) = ws.split();
    if attacher.attach(hub_end.compat(), peer).await.is_err() {
        let _ = ws_out
            .send(close(close_code::AWAY, "the server has stopped"))
            .await;
        return;
    }
    let (from_hub, mut to_hub) = tokio::io::split(bridge_end);
    let mut from_hub = BufReader::new(from_hub);

    let inbound = async {
        let mut frame = Vec::new();
        loop {
            let text = match ws_in.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    return InEnd::Refused(close_code::UNSUPPORTED, "text messages only");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => return InEnd::Gone,
                Some(Err(e)) => return refusal(e),
            };
            if text.as_str().contains('\n') {
                return InEnd::Refused(close_code::INVALID, "one frame per message: no LF");
            }
            frame.clear();
            frame.extend_from_slice(text.as_str().as_bytes());
            frame.push(b'\n');
            if to_hub.write_all(&frame).await.is_err() {
                return InEnd::HubGone;
            }
        }
    };

    let outbound = async {
        let mut line = Vec::new();
        loop {
            line.clear();
            match from_hub.read_until(b'\n', &mut line).await {
                // The hub closed the connection: its last frame is sent.
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
            let frame = line.strip_suffix(b"\n").unwrap_or(&line);
            // The hub writes UTF-8 only; a lossy conversion cannot lose
            // anything here, and never panics.
            let text = String::from_utf8_lossy(frame).into_owned();
            if ws_out.feed(Message::Text(text.into())).await.is_err() {
                return false;
            }
            // The rest of a burst already read goes out with one flush.
            if from_hub.buffer().is_empty() && ws_out.flush().await.is_err() {
                return false;
            }
        }
    };

    tokio::select! {
        end = inbound => {
            // Whatever the hub still sends is moot: the browser is done, or
            // is told why it is being closed.
            if let InEnd::Refused(code, reason) = end {
                tracing::debug!(code, reason, "websocket refused");
                let _ = ws_out.send(close(code, reason)).await;
            }
            // Either way the pipe closes when dropped, and the hub sees
            // the end of the stream, as from a TCP peer.
            let _ = ws_out.close().await;
        }
        hub_closed = outbound => {
            if hub_closed {
                let _ = ws_out.send(close(close_code::NORMAL, "")).await;
            }
        }
    }
}

/// The close to send for an error reading the WebSocket.
fn refusal(error: axum::Error) -> InEnd {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::CapacityError;
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(CapacityError::MessageTooLong { .. })) => {
            InEnd::Refused(TOO_BIG, "message longer than the longest frame")
        }
        Some(Error::Utf8(_)) => InEnd::Refused(close_code::INVALID, "text is not UTF-8"),
        Some(Error::Protocol(_)) => {
            InEnd::Refused(close_code::PROTOCOL, "websocket protocol error")
        }
        _ => InEnd::Gone,
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}
