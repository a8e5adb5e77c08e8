//! The chat client on a blocking socket.
//!
//! Commands write on the caller's thread. A background I/O thread reads
//! with a timeout at the core's next deadline (at least 1 ms; `WouldBlock`
//! and `TimedOut` both mean "the deadline came"), so keepalive runs, and
//! pongs go out, without the caller doing anything. Events wait in the
//! shared state for [`next_event`](Client::next_event) or
//! [`next_event_timeout`](Client::next_event_timeout).
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
//!     if let Event::Message { from, text } = event {
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
    ClientOptions, ClientShared, ConnectError, Reconnector, TimedOut, WriteQueue, login_outcome,
};

/// The socket commands write to; `None` between connections.
type Writer = Arc<Mutex<Option<TcpStream>>>;

/// A connected, logged-in chat client on a blocking socket. Dropping it
/// closes the connection.
#[derive(Debug)]
pub struct Client {
    shared: Arc<ClientShared>,
    writer: Writer,
}

impl Client {
    /// Connects to `addr`, logs in as `name`, and returns once the server
    /// answered `ok:` (or refused the login). Every address `addr` resolves
    /// to is tried in order.
    pub fn connect(
        addr: impl ToSocketAddrs,
        name: &str,
        config: ClientConfig,
    ) -> Result<Client, ConnectError> {
        Self::connect_with(addr, name, config, ClientOptions::default())
    }

    /// [`connect`](Self::connect) with transport options, such as a
    /// reconnect policy.
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        config.validate()?;
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let (stream, addr) = open_any(&addrs, &config, options.connect_timeout)?;
        let core = chat_proto::Client::new(config.clone(), Instant::now())?;
        let shared = Arc::new(ClientShared::new(core));
        shared.login(name)?;
        let writer: Writer = Arc::new(Mutex::new(Some(stream.try_clone()?)));
        let io = Io {
            shared: shared.clone(),
            writer: writer.clone(),
            addrs,
            connect_timeout: options.connect_timeout,
            config,
            reconnector: Reconnector::new(options.reconnect, Reconnector::seed(addr)),
        };
        std::thread::Builder::new()
            .name("chat-client-io".into())
            .spawn(move || io.run(stream))?;
        // From here on, dropping `client` on an error closes the connection.
        let client = Client { shared, writer };
        client.flush();
        loop {
            let event = client.shared.recv_blocking(None).unwrap_or(None);
            if let Some(outcome) = login_outcome(event) {
                return outcome.map(|()| client);
            }
        }
    }

    /// Says `text` to the room; returns once it is handed to the socket.
    pub fn say(&self, text: &str) -> Result<(), UsageError> {
        self.shared.say(text)?;
        self.flush();
        Ok(())
    }

    /// Asks who is there; the answer arrives as [`Event::Users`].
    pub fn who(&self) -> Result<(), UsageError> {
        self.shared.who()?;
        self.flush();
        Ok(())
    }

    /// Sends `bye:REASON` and closes; the events end with
    /// `Closed { reason: Local }` once the server answered, then `None`.
    pub fn close(&self, reason: &str) -> Result<(), UsageError> {
        self.shared.stop();
        self.shared.close(reason)?;
        self.flush();
        Ok(())
    }

    /// The name logged in with.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// The next event, waiting as long as it takes; `None` once the
    /// connection is over for good.
    pub fn next_event(&self) -> Option<Event> {
        self.shared.recv_blocking(None).unwrap_or(None)
    }

    /// The next event, waiting up to `timeout`; `Ok(None)` once the
    /// connection is over for good.
    pub fn next_event_timeout(&self, timeout: Duration) -> Result<Option<Event>, TimedOut> {
        self.shared.recv_blocking(Some(timeout))
    }

    fn flush(&self) {
        flush(&self.shared, &self.writer);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.stop();
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
            Ok(n) if n > 0 => queue.advance(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The reader will see the connection fail.
            _ => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// The background I/O thread.
struct Io {
    shared: Arc<ClientShared>,
    writer: Writer,
    /// Every address the server's name resolved to, tried in order.
    addrs: Vec<SocketAddr>,
    connect_timeout: Duration,
    config: ClientConfig,
    reconnector: Reconnector,
}

impl Io {
    fn run(mut self, mut stream: TcpStream) {
        loop {
            self.connected(&stream);
            let _ = stream.shutdown(Shutdown::Both);
            *self.writer.lock().unwrap_or_else(PoisonError::into_inner) = None;
            match self.reconnect() {
                Some(next) => stream = next,
                None => {
                    self.shared.finish();
                    return;
                }
            }
        }
    }

    /// Reads until the connection ends (the core closed, or the socket
    /// failed).
    fn connected(&mut self, mut stream: &TcpStream) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            flush(&self.shared, &self.writer);
            if self.shared.close_reason().is_some() {
                return;
            }
            if self.reconnector.name_still_held(&self.shared) {
                self.shared.disconnected(Instant::now());
                return;
            }
            let wait = self.shared.poll_timeout().map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                left.max(Duration::from_millis(1))
            });
            if stream.set_read_timeout(wait).is_err() {
                self.shared.disconnected(Instant::now());
                return;
            }
            match stream.read(&mut buf) {
                Ok(0) => self.shared.disconnected(Instant::now()),
                Ok(n) => {
                    self.shared.input(Instant::now(), &buf[..n]);
                    self.reconnector.after_input(&self.shared);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.shared.timeout(Instant::now());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.shared.disconnected(Instant::now()),
            }
        }
    }

    /// Waits out the backoff and connects again, logging in under the same
    /// name; `None` when the client is done for good.
    fn reconnect(&mut self) -> Option<TcpStream> {
        loop {
            let delay = self.reconnector.after_close(&self.shared)?;
            tracing::info!(addrs = ?self.addrs, ?delay, "connection lost; reconnecting");
            std::thread::sleep(delay);
            if self.shared.is_stopped() {
                return None;
            }
            let Ok((stream, addr)) = open_any(&self.addrs, &self.config, self.connect_timeout)
            else {
                continue;
            };
            let writer = stream.try_clone().ok()?;
            let core = chat_proto::Client::new(self.config.clone(), Instant::now()).ok()?;
            // The name was accepted before, so it is valid.
            let _ = self.shared.reconnected(core);
            *self.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer);
            tracing::info!(%addr, "reconnected; logging in again");
            return Some(stream);
        }
    }
}
