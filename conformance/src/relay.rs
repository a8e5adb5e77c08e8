//! A TCP relay in front of a server, which a test can cut: the way to lose
//! a client's connection without the server kicking it (a kick is final, a
//! lost connection is followed by a reconnect) and without restarting the
//! server (which would lose its in-memory history).
//!
//! [`Relay::start`] listens on a free port of 127.0.0.1 and passes every
//! connection's bytes both ways, as they are (TLS included), to the
//! server's address. [`Relay::cut`] ends every relayed connection at once
//! (both sides see the end of the stream) and from then on closes each new
//! connection as soon as it is accepted, as a network that is down would,
//! until [`Relay::reopen`]. Each connection costs two threads, which end
//! with it; dropping the relay cuts everything and stops its listener.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::wire::PATIENCE;

/// A relay between clients and one server; see the module's docs.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// New connections are closed at once.
    cut: AtomicBool,
    /// The relay is being dropped.
    stopping: AtomicBool,
    /// Both sockets of every relayed connection, to cut them.
    sockets: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn sockets(&self) -> MutexGuard<'_, Vec<TcpStream>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends every relayed connection, on both sides.
    fn cut_all(&self) {
        for socket in self.sockets().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Relay {
    /// A relay to `server`, listening on a free port of 127.0.0.1.
    pub fn start(server: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let listener = std::thread::spawn(move || accept(&listener, server, &accepting));
        Relay {
            addr,
            shared,
            listener: Some(listener),
        }
    }

    /// Where clients connect to reach the server through the relay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends every relayed connection, and closes new ones as soon as they
    /// are accepted, until [`reopen`](Self::reopen).
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.cut_all();
    }

    /// Relays new connections again.
    pub fn reopen(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the listener's `accept`.
        let _ = TcpStream::connect_timeout(&self.addr, PATIENCE);
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

/// Accepts connections until the relay is dropped, relaying each (or
/// closing it, while cut).
fn accept(listener: &TcpListener, server: SocketAddr, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.cut.load(Ordering::SeqCst) {
            // Dropped: the client sees its connection end at once.
            continue;
        }
        let Ok(upstream) = TcpStream::connect_timeout(&server, PATIENCE) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let clones = (client.try_clone(), upstream.try_clone());
        let (Ok(client_read), Ok(upstream_read)) = clones else {
            continue;
        };
        {
            let mut sockets = shared.sockets();
            for socket in [&client, &upstream] {
                if let Ok(socket) = socket.try_clone() {
                    sockets.push(socket);
                }
            }
        }
        std::thread::spawn(move || pass(client_read, upstream));
        std::thread::spawn(move || pass(upstream_read, client));
    }
}

/// Copies `from` to `to` until `from` ends or either fails, then ends
/// `to`'s writing side, so the end travels on.
fn pass(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
