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
//! `connect_tls` (feature `tls`) also completes a TLS handshake within that
//! time, verifying the server's certificate as the host connected to.
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

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_proto::{ClientConfig, Event, UsageError};
use transport_common::{
    ClientOptions, ClientShared, ConnectError, Login, SocketOrder, TimedOut, WriteQueue,
    jitter_seed, login_outcome,
};

use crate::socket::{Socket, timed_out};

/// The socket commands write to; `None` between connections.
type Writer = Arc<Mutex<Option<Arc<Socket>>>>;

/// How each connection of a session is opened.
#[derive(Clone)]
enum Opening {
    /// Plain TCP.
    Plain,
    /// TLS over TCP, verifying the server as `name`.
    #[cfg(feature = "tls")]
    Tls {
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    },
}

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
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        Self::connect_over(addrs, login.into(), config, options, Opening::Plain)
    }

    /// [`connect_with`](Self::connect_with) over TLS: verifies the server's
    /// certificate against `tls`'s roots, as the host of `addr` (or the
    /// name `tls` sets), which is also sent as SNI. The handshake counts in
    /// `ClientOptions::connect_timeout`; every reconnect is over TLS too.
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        addr: impl Into<transport_common::Address>,
        login: impl Into<Login>,
        config: ClientConfig,
        options: ClientOptions,
        tls: &transport_common::tls::ClientTls,
    ) -> Result<Client, ConnectError> {
        let addr = addr.into();
        let opening = Opening::Tls {
            config: tls.config().clone(),
            name: tls.server_name_for(&addr)?,
        };
        Self::connect_over(
            addr.resolve_blocking()?,
            login.into(),
            config,
            options,
            opening,
        )
    }

    fn connect_over(
        addrs: Vec<SocketAddr>,
        login: Login,
        mut config: ClientConfig,
        options: ClientOptions,
        opening: Opening,
    ) -> Result<Client, ConnectError> {
        config.validate()?;
        if config.jitter_seed == 0 {
            config.jitter_seed = jitter_seed();
        }
        let target = Target {
            addrs,
            opening,
            timeout: options.connect_timeout,
            config: config.clone(),
        };
        let (socket, _) = target.open_any()?;
        let core = chat_proto::Client::new(config, Instant::now())?;
        let shared = Arc::new(ClientShared::new(core, &options));
        shared.command(|c| login.start(c))?;
        let socket = Arc::new(socket);
        let writer: Writer = Arc::new(Mutex::new(Some(socket.clone())));
        let io = Io {
            shared: shared.clone(),
            writer: writer.clone(),
            target,
        };
        std::thread::Builder::new()
            .name("chat-client-io".into())
            .spawn(move || io.run(socket))?;
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

/// Where a session connects, and how.
struct Target {
    /// Every address the server's name resolved to, tried in order.
    addrs: Vec<SocketAddr>,
    opening: Opening,
    /// How long each address may take, TLS handshake included.
    timeout: Duration,
    config: ClientConfig,
}

impl Target {
    /// Opens a connection to the first address that accepts (and completes
    /// the TLS handshake, with TLS) within the timeout; returns it and the
    /// address it reached, or the last error.
    fn open_any(&self) -> std::io::Result<(Socket, SocketAddr)> {
        let mut last_error = None;
        for &addr in &self.addrs {
            match self.open(addr) {
                Ok(socket) => return Ok((socket, addr)),
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

    /// Opens a connection to `addr`.
    fn open(&self, addr: SocketAddr) -> std::io::Result<Socket> {
        // `connect_timeout` refuses a zero duration.
        let timeout = self.timeout.max(Duration::from_millis(1));
        // The TLS handshake has what the TCP connect left of the timeout.
        #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
        let started = Instant::now();
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        let socket = match &self.opening {
            Opening::Plain => Socket::Plain(stream),
            #[cfg(feature = "tls")]
            Opening::Tls { config, name } => {
                let left = timeout.saturating_sub(started.elapsed());
                let tls =
                    crate::tls::TlsSocket::connect(stream, config.clone(), name.clone(), left)?;
                Socket::Tls(Box::new(tls))
            }
        };
        // A server that stops reading must not block a writer forever: give
        // up after as long as keepalive would take to declare it dead.
        let patience = self.config.keepalive.idle + self.config.keepalive.timeout;
        socket.tcp().set_write_timeout(Some(patience))?;
        Ok(socket)
    }
}

/// Writes what the core queued. The queue is taken under the writer's lock
/// so that concurrent flushes keep the bytes in order.
fn flush(shared: &ClientShared, writer: &Mutex<Option<Arc<Socket>>>) {
    let guard = writer.lock().unwrap_or_else(PoisonError::into_inner);
    let mut queue = WriteQueue::new();
    queue.extend(shared.take_transmit());
    let Some(socket) = guard.as_ref() else {
        return;
    };
    loop {
        let result = match queue.is_empty() {
            // What TLS still holds goes out too.
            true => match socket.flush() {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            false => socket.write_vectored(&queue.io_slices()),
        };
        match result {
            Ok(n) if n > 0 => {
                queue.advance(n);
                shared.written(n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The reader will see the connection fail.
            _ => {
                socket.close();
                return;
            }
        }
    }
}

/// The background I/O thread of one session.
struct Io {
    shared: Arc<ClientShared>,
    writer: Writer,
    target: Target,
}

impl Io {
    fn set_writer(&self, socket: Option<Arc<Socket>>) {
        *self.writer.lock().unwrap_or_else(PoisonError::into_inner) = socket;
    }

    /// The socket is gone (lost, closed or dropped as ordered).
    fn gone(&self, stream: &mut Option<Arc<Socket>>) {
        if let Some(s) = stream.take() {
            s.close();
        }
        self.set_writer(None);
        self.shared.disconnected(Instant::now());
    }

    fn run(self, first: Arc<Socket>) {
        let mut stream = Some(first);
        let mut buf = [0u8; 16 * 1024];
        loop {
            // The core's orders.
            while let Some(order) = self.shared.take_order() {
                match order {
                    SocketOrder::Connect => match self.target.open_any() {
                        Ok((s, addr)) => {
                            tracing::info!(%addr, "reconnected; logging in again");
                            let s = Arc::new(s);
                            self.set_writer(Some(s.clone()));
                            stream = Some(s);
                            self.shared.connected(Instant::now());
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "reconnect failed");
                            self.shared.connect_failed(Instant::now());
                        }
                    },
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
            if s.tcp().set_read_timeout(Some(wait)).is_err() {
                self.gone(&mut stream);
                continue;
            }
            match s.read(&mut buf) {
                Ok(0) => self.gone(&mut stream),
                Ok(n) => self.shared.input(Instant::now(), &buf[..n]),
                Err(e) if timed_out(&e) => {
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
