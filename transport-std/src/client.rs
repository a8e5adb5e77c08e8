//! The chat client on a blocking socket.
//!
//! Commands write on the caller's thread. A background I/O thread reads
//! with a timeout at the core's next deadline (at least 1 ms; `WouldBlock`
//! and `TimedOut` both mean "the deadline came"), so keepalive runs, and
//! pongs go out, without the caller doing anything, and it carries out the
//! core session's socket orders: closing a connection that is over, and
//! opening a new one when the session reconnects
//! ([`ClientConfig::reconnect`]). Events wait in the shared state for
//! [`next_event`](Client::next_event) or
//! [`next_event_timeout`](Client::next_event_timeout); once
//! [`ClientOptions::max_pending_events`] wait, the I/O thread stops reading
//! until the application catches up.
//!
//! `connect` tries every address the name resolves to, in order, each
//! within [`ClientOptions::connect_timeout`]; so does every reconnect.
//!
//! ```no_run
//! use transport_std::{Client, ClientConfig, Event};
//!
//! let client = Client::connect("127.0.0.1:7878", "zhangsan", ClientConfig::default())?;
//! client.say("did you have dinner")?;
//! while let Some(event) = client.next_event() {
//!     if let Event::Message { from, text, .. } = event {
//!         println!("{from}: {text}");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_proto::{ClientConfig, Event, UsageError};
use transport_common::{
    ClientOptions, ClientShared, ConnectError, Login, SocketOrder, TimedOut, WriteQueue,
    jitter_seed, login_outcome,
};

/// The socket commands write to; `None` between connections.
type Writer = Arc<Mutex<Option<TcpStream>>>;

/// How long the I/O thread waits at most between looks at the session,
/// when nothing else wakes it.
const IDLE_LOOK: Duration = Duration::from_millis(200);

/// A connected, logged-in chat session on a blocking socket. Dropping it
/// closes the session.
#[derive(Debug)]
pub struct Client {
    shared: Arc<ClientShared>,
    writer: Writer,
}

impl Client {
    /// Connects to `addr`, logs in (as a guest with a plain name, to an
    /// account with [`Login::with_secret`]), and returns once the server
    /// answered `ok:` (or refused the login). Every address `addr` resolves
    /// to is tried in order.
    pub fn connect(
        addr: impl ToSocketAddrs,
        login: impl Into<Login>,
        config: ClientConfig,
    ) -> Result<Client, ConnectError> {
        Self::connect_with(addr, login, config, ClientOptions::default())
    }

    /// [`connect`](Self::connect) with transport options, such as a
    /// connect timeout or the bounds of the event and outgoing queues.
    /// (Reconnecting is the session's: set `ClientConfig::reconnect`.)
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        login: impl Into<Login>,
        mut config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        config.validate()?;
        if config.jitter_seed == 0 {
            config.jitter_seed = jitter_seed();
        }
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let (stream, _) = open_any(&addrs, &config, options.connect_timeout)?;
        let core = chat_proto::Client::new(config.clone(), Instant::now())?;
        let shared = Arc::new(ClientShared::new(core, &options));
        shared.command(|c| login.into().start(c))?;
        let writer: Writer = Arc::new(Mutex::new(Some(stream.try_clone()?)));
        let io = Io {
            shared: shared.clone(),
            writer: writer.clone(),
            addrs,
            connect_timeout: options.connect_timeout,
            config,
        };
        std::thread::Builder::new()
            .name("chat-client-io".into())
            .spawn(move || io.run(stream))?;
        // From here on, dropping `client` on an error closes the session.
        let client = Client { shared, writer };
        client.flush();
        loop {
            let event = client.shared.recv_blocking(None).unwrap_or(None);
            if let Some(outcome) = login_outcome(event) {
                return outcome.map(|()| client);
            }
        }
    }

    /// Says `text` in the default room; returns once it is handed to the
    /// socket.
    pub fn say(&self, text: &str) -> Result<(), UsageError> {
        self.send(|c| c.say(text))
    }

    /// Says `text` in the default room, or fails with
    /// [`UsageError::WouldBlock`] if the outgoing buffer is full.
    pub fn try_say(&self, text: &str) -> Result<(), UsageError> {
        self.shared.try_say(text)?;
        self.flush();
        Ok(())
    }

    /// Says `text` in `room`, which the session joined.
    pub fn say_in(&self, room: &str, text: &str) -> Result<(), UsageError> {
        self.send(|c| c.say_in(room, text))
    }

    /// Says `text` to the user `to` only.
    pub fn pm(&self, to: &str, text: &str) -> Result<(), UsageError> {
        self.send(|c| c.pm(to, text))
    }

    fn send(
        &self,
        f: impl Fn(&mut chat_proto::Client) -> Result<(), UsageError>,
    ) -> Result<(), UsageError> {
        loop {
            self.shared.wait_room();
            match self.shared.try_send(&f) {
                Err(UsageError::WouldBlock) => continue,
                other => {
                    self.flush();
                    return other;
                }
            }
        }
    }

    /// Runs a command and writes what it queued.
    fn command(
        &self,
        f: impl FnOnce(&mut chat_proto::Client) -> Result<(), UsageError>,
    ) -> Result<(), UsageError> {
        self.shared.command(f)?;
        self.flush();
        Ok(())
    }

    /// Asks who is in the default room; the answer arrives as
    /// [`Event::Users`].
    pub fn who(&self) -> Result<(), UsageError> {
        self.command(|c| c.who())
    }

    /// Asks who is in `room`; the answer arrives as [`Event::Users`].
    pub fn who_in(&self, room: &str) -> Result<(), UsageError> {
        self.command(|c| c.who_in(room))
    }

    /// Joins `room` (created if it does not exist); the session joins it
    /// again after a reconnect.
    pub fn join(&self, room: &str) -> Result<(), UsageError> {
        self.command(|c| c.join(room))
    }

    /// Leaves `room`.
    pub fn part(&self, room: &str) -> Result<(), UsageError> {
        self.command(|c| c.part(room))
    }

    /// Asks which rooms exist; the answer arrives as [`Event::Rooms`].
    pub fn rooms(&self) -> Result<(), UsageError> {
        self.command(|c| c.rooms())
    }

    /// Closes the session: `bye:REASON`; the events end with
    /// `Closed { reason: Local }` once the server answered, then `None`.
    pub fn close(&self, reason: &str) -> Result<(), UsageError> {
        self.command(|c| c.close(reason))
    }

    /// The name logged in with.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// The rooms joined besides the default one.
    pub fn joined_rooms(&self) -> Vec<String> {
        self.shared.joined_rooms()
    }

    /// The next event, waiting as long as it takes; `None` once the
    /// session is over for good.
    pub fn next_event(&self) -> Option<Event> {
        self.shared.recv_blocking(None).unwrap_or(None)
    }

    /// The next event, waiting up to `timeout`; `Ok(None)` once the
    /// session is over for good.
    pub fn next_event_timeout(&self, timeout: Duration) -> Result<Option<Event>, TimedOut> {
        self.shared.recv_blocking(Some(timeout))
    }

    fn flush(&self) {
        flush(&self.shared, &self.writer);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.shared.close("");
        self.flush();
    }
}

/// Opens a socket to the first of `addrs` that accepts within `timeout`;
/// returns it and the address it reached, or the last error.
fn open_any(
    addrs: &[SocketAddr],
    config: &ClientConfig,
    timeout: Duration,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    let mut last_error = None;
    for &addr in addrs {
        match open(addr, config, timeout) {
            Ok(stream) => return Ok((stream, addr)),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(ErrorKind::InvalidInput, "no address to connect to")
    }))
}

/// Opens a socket to `addr` for a client with `config`, waiting at most
/// `timeout` for the connection.
fn open(addr: SocketAddr, config: &ClientConfig, timeout: Duration) -> std::io::Result<TcpStream> {
    // `connect_timeout` refuses a zero duration.
    let timeout = timeout.max(Duration::from_millis(1));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    // A server that stops reading must not block a writer forever: give up
    // after as long as keepalive would take to declare it dead.
    let patience = config.keepalive.idle + config.keepalive.timeout;
    stream.set_write_timeout(Some(patience))?;
    Ok(stream)
}

/// Writes what the core queued. The queue is taken under the writer's lock
/// so that concurrent flushes keep the bytes in order.
fn flush(shared: &ClientShared, writer: &Mutex<Option<TcpStream>>) {
    let guard = writer.lock().unwrap_or_else(PoisonError::into_inner);
    let mut queue = WriteQueue::new();
    queue.extend(shared.take_transmit());
    let Some(mut stream) = guard.as_ref() else {
        return;
    };
    while !queue.is_empty() {
        match stream.write_vectored(&queue.io_slices()) {
            Ok(n) if n > 0 => {
                queue.advance(n);
                shared.written(n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The reader will see the connection fail.
            _ => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// The background I/O thread of one session.
struct Io {
    shared: Arc<ClientShared>,
    writer: Writer,
    /// Every address the server's name resolved to, tried in order.
    addrs: Vec<SocketAddr>,
    connect_timeout: Duration,
    config: ClientConfig,
}

impl Io {
    fn set_writer(&self, stream: Option<TcpStream>) {
        *self.writer.lock().unwrap_or_else(PoisonError::into_inner) = stream;
    }

    /// The socket is gone (lost, closed or dropped as ordered).
    fn gone(&self, stream: &mut Option<TcpStream>) {
        if let Some(s) = stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.set_writer(None);
        self.shared.disconnected(Instant::now());
    }

    fn run(self, first: TcpStream) {
        let mut stream = Some(first);
        let mut buf = [0u8; 16 * 1024];
        loop {
            // The core's orders.
            while let Some(order) = self.shared.take_order() {
                match order {
                    SocketOrder::Connect => {
                        match open_any(&self.addrs, &self.config, self.connect_timeout) {
                            Ok((s, addr)) => {
                                tracing::info!(%addr, "reconnected; logging in again");
                                self.set_writer(s.try_clone().ok());
                                stream = Some(s);
                                self.shared.connected(Instant::now());
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "reconnect failed");
                                self.shared.connect_failed(Instant::now());
                            }
                        }
                    }
                    // Writes are flushed before the order is looked at: the
                    // socket can go.
                    SocketOrder::Disconnect | SocketOrder::Abort => {
                        flush(&self.shared, &self.writer);
                        self.gone(&mut stream);
                    }
                }
            }
            flush(&self.shared, &self.writer);
            if stream.is_none() && self.shared.is_finished() {
                self.shared.finish();
                return;
            }
            let deadline = self.shared.poll_timeout();
            let wait = deadline.map_or(IDLE_LOOK, |d| {
                d.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), IDLE_LOOK)
            });
            let Some(s) = &stream else {
                // Between connections: wait for the backoff (or the
                // application's close).
                self.shared.wait_for_io(wait);
                self.due(deadline);
                continue;
            };
            if !self.shared.wants_input() {
                self.shared.wait_wants_input(wait);
                self.due(deadline);
                continue;
            }
            let mut reader: &TcpStream = s;
            if reader.set_read_timeout(Some(wait)).is_err() {
                self.gone(&mut stream);
                continue;
            }
            match reader.read(&mut buf) {
                Ok(0) => self.gone(&mut stream),
                Ok(n) => self.shared.input(Instant::now(), &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.due(deadline);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.gone(&mut stream),
            }
        }
    }

    /// Runs the core's timer if its deadline came.
    fn due(&self, deadline: Option<Instant>) {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            self.shared.timeout(now);
        }
    }
}
