//! What each path answers: the page, the WebSocket, the metrics and the
//! health check.
//!
//! | path | answer |
//! |---|---|
//! | `/` | the page (`assets/index.html`), with `/app.js` and `/style.css` |
//! | `/ws` | a WebSocket into the hub, if the `Origin` is allowed (else 403) |
//! | `/metrics` | a measurement of the server, Prometheus text format |
//! | `/healthz` | `ok` if the server's loop answers, else 503 |
//!
//! The handlers hold no protocol logic: the WebSocket goes to the
//! [bridge](crate::bridge), the figures come from the server's loop
//! ([`ServerHandle::measure`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use transport_async::{Attacher, Peer, ServerHandle, ServerSnapshot};

use crate::origin::AllowedOrigins;
use crate::{WebConfig, metrics, page};

/// What every handler shares.
#[derive(Debug, Clone)]
struct AppState {
    attacher: Attacher,
    /// Every WebSocket bridge running, so that a shutdown can wait for
    /// their last frames.
    bridges: TaskTracker,
    handle: ServerHandle,
    origins: Arc<AllowedOrigins>,
    max_message_len: usize,
    measure_timeout: Duration,
}

/// The routes, for the server behind `attacher` and `handle`.
pub(crate) fn routes(
    attacher: Attacher,
    handle: ServerHandle,
    bridges: TaskTracker,
    config: &WebConfig,
) -> Router {
    let state = AppState {
        attacher,
        bridges,
        handle,
        origins: Arc::new(config.origins.clone()),
        max_message_len: config.max_message_len,
        measure_timeout: config.measure_timeout,
    };
    Router::new()
        .route("/", get(|| async { page::INDEX.response() }))
        .route("/app.js", get(|| async { page::SCRIPT.response() }))
        .route("/style.css", get(|| async { page::STYLE.response() }))
        .route("/ws", get(websocket))
        .route("/metrics", get(metrics))
        .route("/healthz", get(health))
        .with_state(state)
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN);
    if !state.origins.allows(origin, headers.get(header::HOST)) {
        tracing::info!(%remote, ?origin, "websocket refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    // The HTTP side is plain text: a secret may only come from loopback,
    // as on a plain TCP connection (the hub decides).
    let peer = Peer::plain(Some(remote.ip()));
    let attacher = state.attacher.clone();
    let running = state.bridges.token();
    upgrade
        .max_message_size(state.max_message_len)
        .max_frame_size(state.max_message_len)
        .on_upgrade(move |ws| async move {
            crate::bridge::run(ws, attacher, peer).await;
            drop(running);
        })
}

/// A measurement from the server's loop, or why there is none.
async fn measure(state: &AppState) -> Result<ServerSnapshot, (StatusCode, &'static str)> {
    match tokio::time::timeout(state.measure_timeout, state.handle.measure()).await {
        Ok(Some(snapshot)) => Ok(snapshot),
        Ok(None) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the chat server has stopped\n",
        )),
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the chat server did not answer in time\n",
        )),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match measure(&state).await {
        Ok(snapshot) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            )],
            metrics::encode(snapshot),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    match measure(&state).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
