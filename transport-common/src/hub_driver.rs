//! The hub's side of a server: the [`Hub`] plus the table of connections,
//! driven by messages from the connections.
//!
//! Every transport has one place that owns the hub: a task for the async
//! ones, a thread for the blocking one. That place feeds the hub the
//! [`HubMsg`]s of the connections, plus accepts, timeouts and shutdown,
//! through a [`HubDriver`]. After every input the driver drains the hub's
//! outputs, as the core's contract requires: transmits, closes, aborts and
//! input pauses go to each connection's [`Outbox`], and events become
//! tracing events. Writers are woken by [`HubDriver::flush`], once per
//! batch of inputs, so that each takes the batch's output in one write.
//! The driver makes no protocol decision; it only routes what the hub
//! decided.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chat_proto::{ConfigError, ConnId, Hub, HubEvent, Output, ServerConfig};

use crate::outbox::Outbox;

/// What a connection tells the hub.
#[derive(Debug)]
pub enum HubMsg {
    /// Bytes arrived.
    Input(ConnId, Bytes),
    /// The peer ended its side of the stream; the connection goes on
    /// writing until the hub closes it.
    Eof(ConnId),
    /// Bytes the hub handed out were written to the socket.
    Written(ConnId, usize),
    /// The connection's socket is closed and its task or threads are done.
    Closed(ConnId),
}

#[derive(Debug)]
struct Entry {
    id: ConnId,
    outbox: Arc<Outbox>,
}

/// The hub and the connections it talks to.
#[derive(Debug)]
pub struct HubDriver {
    hub: Hub,
    /// Connections whose socket is open, by `ConnId::index` (the hub does
    /// not reuse an index before the socket is reported closed).
    open: Vec<Option<Entry>>,
    /// Outboxes given data since the last [`flush`](HubDriver::flush).
    to_wake: Vec<Arc<Outbox>>,
}

impl HubDriver {
    /// A driver for a new hub.
    pub fn new(config: ServerConfig) -> Result<Self, ConfigError> {
        Ok(HubDriver {
            hub: Hub::new(config)?,
            open: Vec::new(),
            to_wake: Vec::new(),
        })
    }

    /// The hub, to inspect.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sockets still held: open connections and closing ones still flushing.
    pub fn sockets(&self) -> usize {
        self.hub.sockets()
    }

    /// Wakes every writer that was given data since the last call. Call it
    /// after a batch of inputs and before waiting for more: writers then
    /// take a batch's output for their connection in one write.
    pub fn flush(&mut self) {
        for outbox in self.to_wake.drain(..) {
            outbox.wake();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hub.poll_timeout()
    }

    /// Registers a connection accepted at `now`. The caller starts its
    /// reader and writer with the returned id and outbox. A connection over
    /// the limit is already told `err:server-full` and closed through its
    /// outbox; its writer flushes that and exits.
    pub fn accept(&mut self, now: Instant, peer: SocketAddr) -> (ConnId, Arc<Outbox>) {
        let id = self.hub.accept(now, Some(peer.ip()));
        let outbox = Arc::new(Outbox::new());
        let index = id.index();
        if self.open.len() <= index {
            self.open.resize_with(index + 1, || None);
        }
        debug_assert!(self.open[index].is_none());
        self.open[index] = Some(Entry {
            id,
            outbox: outbox.clone(),
        });
        tracing::info!(conn = %id, %peer, "accepted");
        self.drain();
        (id, outbox)
    }

    /// Applies a message from a connection, then drains the hub.
    pub fn handle(&mut self, msg: HubMsg, now: Instant) {
        match msg {
            HubMsg::Input(id, bytes) => self.hub.handle_input(id, now, &bytes),
            HubMsg::Eof(id) => self.hub.handle_eof(id, now),
            HubMsg::Written(id, n) => self.hub.written(id, now, n),
            HubMsg::Closed(id) => {
                self.hub.disconnected(id, now);
                self.remove_open(id);
            }
        }
        self.drain();
    }

    /// Lets the hub's timers run, then drains it.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hub.handle_timeout(now);
        self.drain();
    }

    /// Starts a graceful shutdown: every connection is sent `bye:` and
    /// closed by its writer once flushed.
    pub fn shutdown(&mut self, now: Instant) {
        tracing::info!(connections = self.hub.connections(), "shutting down");
        self.hub.shutdown(now);
        self.drain();
    }

    /// Tells every remaining writer to stop at once (the server is going
    /// away).
    pub fn abort_all(&mut self) {
        for entry in self.open.iter().flatten() {
            entry.outbox.abort();
        }
    }

    /// Whether the hub's shutdown is complete: every socket closed.
    pub fn is_finished(&self) -> bool {
        self.hub.is_finished()
    }

    fn remove_open(&mut self, id: ConnId) -> Option<Entry> {
        let slot = self.open.get_mut(id.index())?;
        if slot.as_ref().is_some_and(|e| e.id == id) {
            slot.take()
        } else {
            None
        }
    }

    fn outbox(&self, id: ConnId) -> Option<&Arc<Outbox>> {
        match self.open.get(id.index()) {
            Some(Some(entry)) if entry.id == id => Some(&entry.outbox),
            _ => None,
        }
    }

    /// Routes everything the hub has to say.
    fn drain(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Transmit(t) => {
                    if let Some(outbox) = self.outbox(t.conn)
                        && outbox.push(t.data)
                    {
                        let outbox = outbox.clone();
                        self.to_wake.push(outbox);
                    }
                }
                Output::Close(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.close();
                    }
                }
                Output::Abort(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.abort();
                    }
                }
                Output::PauseInput(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.pause_input();
                    }
                }
                Output::ResumeInput(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.resume_input();
                    }
                }
                Output::Event(event) => log_event(&event),
                other => tracing::debug!(?other, "hub output"),
            }
        }
    }
}

fn log_event(event: &HubEvent) {
    match event {
        HubEvent::LoggedIn { conn, name } => {
            tracing::info!(%conn, %name, "logged in");
        }
        HubEvent::Closed { conn, reason } => {
            tracing::info!(%conn, reason = reason.as_str(), "closed");
        }
        other => tracing::debug!(?other, "hub event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    fn take(outbox: &Outbox) -> crate::outbox::Taken {
        outbox
            .take_blocking(Some(std::time::Duration::ZERO))
            .unwrap_or_default()
    }

    #[test]
    fn routes_output_and_tracks_sockets_until_writers_finish() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default()).unwrap();
        let (a, out_a) = driver.accept(now, peer());
        let (b, out_b) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        assert_eq!(take(&out_a).data.concat(), b"ok:a\njoin:b\n");
        assert_eq!(take(&out_b).data.concat(), b"ok:b\n");

        driver.handle(HubMsg::Input(b, Bytes::from_static(b"bye:x\n")), now);
        let last = take(&out_b);
        assert_eq!(
            (last.data.concat(), last.close),
            (b"bye:x\n".to_vec(), true)
        );
        assert_eq!(take(&out_a).data.concat(), b"left:b\n");
        // The writer of b is still flushing: its socket still counts, and
        // its index is not reused meanwhile.
        assert_eq!(driver.sockets(), 2);
        let (c, _out_c) = driver.accept(now, peer());
        assert_ne!(c.index(), b.index());
        driver.handle(HubMsg::Closed(b), now);
        assert_eq!(driver.sockets(), 2);
        assert_eq!(driver.hub().connections(), 2);
        driver.handle(HubMsg::Closed(a), now);
        assert_eq!(driver.sockets(), 1);
        assert_eq!(driver.hub().members(), 0);
    }

    #[test]
    fn shutdown_and_abort_reach_every_writer() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default()).unwrap();
        let (_, out) = driver.accept(now, peer());
        driver.shutdown(now);
        let taken = take(&out);
        assert_eq!(taken.data.concat(), b"bye:server shutting down\n");
        assert!(taken.close);
        driver.abort_all();
        assert!(take(&out).abort);
    }
}
