//! A chat server with no runtime and no transport crate: the core's `Hub`
//! driven by a hand-written loop over non-blocking `std::net` sockets.
//!
//! `cargo run -p chat-proto --example nonblocking_server [ADDR]` serves on
//! ADDR (default 127.0.0.1:7878) until Ctrl-C kills it; talk to it with
//! `nc 127.0.0.1 7878` (`iam:zhangsan`, `msg:did you have dinner`).
//!
//! The loop is what every adapter does, in its plainest form: accept, read
//! what each socket has, write what the hub handed out (reporting it with
//! `written`), tell the hub the time, and after every call drain every
//! output. It polls with a 1 ms nap when nothing moved; a real program
//! would wait in `poll(2)` or `epoll` (mio), which is what the transport
//! crates do. `chat-proto/tests/examples.rs` runs [`serve`] in CI.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use chat_proto::{ConnId, Hub, Output, ServerConfig};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let listener = TcpListener::bind(&addr)?;
    println!("serving on {}", listener.local_addr()?);
    serve(listener, ServerConfig::default(), &AtomicBool::new(false))
}

/// One connection's socket and what waits to be written to it.
struct Conn {
    id: ConnId,
    stream: TcpStream,
    out: VecDeque<Bytes>,
    /// The hub paused its input.
    paused: bool,
    /// The peer sent EOF: nothing more to read.
    eof: bool,
    /// The hub ended it: close once `out` is written.
    closing: bool,
}

/// Serves `listener` until `stop` is set, then shuts down gracefully (every
/// client gets `bye:`) and returns once every socket is closed.
pub(crate) fn serve(
    listener: TcpListener,
    config: ServerConfig,
    stop: &AtomicBool,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut hub = Hub::new(config).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
    // Indexed by `ConnId::index`: the hub does not reuse an index before
    // `disconnected`, so this is safe.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stopping = false;
    loop {
        let now = Instant::now();
        let mut moved = false;
        if stop.load(Ordering::Relaxed) && !stopping {
            stopping = true;
            hub.shutdown(now);
            drain(&mut hub, &mut conns, now);
        }
        // Accept.
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    stream.set_nonblocking(true)?;
                    let id = hub.accept(now, Some(peer.ip()));
                    if conns.len() <= id.index() {
                        conns.resize_with(id.index() + 1, || None);
                    }
                    conns[id.index()] = Some(Conn {
                        id,
                        stream,
                        out: VecDeque::new(),
                        paused: false,
                        eof: false,
                        closing: false,
                    });
                    drain(&mut hub, &mut conns, now);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // Read.
        for index in 0..conns.len() {
            let Some(c) = &mut conns[index] else {
                continue;
            };
            if c.paused || c.eof || c.closing {
                continue;
            }
            let id = c.id;
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.eof = true;
                    hub.handle_eof(id, now);
                }
                Ok(n) => hub.handle_input(id, now, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(_) => {
                    conns[index] = None;
                    hub.disconnected(id, now);
                }
            }
            drain(&mut hub, &mut conns, now);
            moved = true;
        }
        // Write.
        for index in 0..conns.len() {
            let Some(c) = &mut conns[index] else {
                continue;
            };
            let id = c.id;
            let mut written = 0;
            let mut failed = false;
            while let Some(front) = c.out.front_mut() {
                match c.stream.write(front) {
                    Ok(n) => {
                        written += n;
                        front.advance(n);
                        if front.is_empty() {
                            c.out.pop_front();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if written > 0 {
                hub.written(id, now, written);
                moved = true;
            }
            let done = c.closing && c.out.is_empty();
            if failed || done {
                let _ = c.stream.shutdown(Shutdown::Both);
                conns[index] = None;
                hub.disconnected(id, now);
            }
            if written > 0 || failed || done {
                drain(&mut hub, &mut conns, now);
            }
        }
        // Time.
        if hub.poll_timeout().is_some_and(|at| at <= now) {
            hub.handle_timeout(now);
            drain(&mut hub, &mut conns, now);
        }
        if stopping && hub.is_finished() {
            return Ok(());
        }
        if !moved {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Does what the hub asks, until it asks nothing more.
fn drain(hub: &mut Hub, conns: &mut [Option<Conn>], now: Instant) {
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Transmit(t) => {
                if let Some(c) = slot(conns, t.conn) {
                    c.out.extend(t.data);
                }
            }
            Output::Close(id) => {
                if let Some(c) = slot(conns, id) {
                    c.closing = true;
                }
            }
            Output::Abort(id) => {
                if let Some(c) = slot(conns, id) {
                    let _ = c.stream.shutdown(Shutdown::Both);
                    conns[id.index()] = None;
                    hub.disconnected(id, now);
                }
            }
            Output::PauseInput(id) => {
                if let Some(c) = slot(conns, id) {
                    c.paused = true;
                }
            }
            Output::ResumeInput(id) => {
                if let Some(c) = slot(conns, id) {
                    c.paused = false;
                }
            }
            Output::Event(event) => eprintln!("{event:?}"),
            // Durable history is off in this server: nothing to store.
            _ => {}
        }
    }
}

/// The connection `id` names, if it is still there.
fn slot(conns: &mut [Option<Conn>], id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.index())
        .and_then(Option::as_mut)
        .filter(|c| c.id == id)
}
