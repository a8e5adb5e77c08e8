//! Binding a listening socket the same way in every transport.
//!
//! `std::net::TcpListener::bind` listens with a backlog of 128, which a
//! burst of connections overflows; the protocol's servers ask for
//! [`LISTEN_BACKLOG`] (1024) and set `SO_REUSEADDR` so that a restarted
//! server can bind at once. socket2 does the system calls.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

use crate::options::LISTEN_BACKLOG;

/// Binds the first of `addrs` that works, with a backlog of 1024. The
/// listener is left blocking; async transports make it non-blocking.
pub fn bind_listener(addrs: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in addrs.to_socket_addrs()? {
        match bind_one(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG as i32)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_port_zero_on_loopback() {
        let listener = bind_listener("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert!(listener.accept().is_ok());
    }
}
