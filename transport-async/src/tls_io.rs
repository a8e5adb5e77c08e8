//! TLS for the async server and client, over any runtime's streams.
//!
//! With feature `tls`, a listener may be a TLS one and a client may connect
//! with TLS; futures-rustls does the TLS over the runtime's `futures-io`
//! streams, so one piece of code serves tokio, async-std and smol alike
//! (tokio-rustls is the same code over tokio's traits: the tokio binding
//! already hands out `futures-io` streams, so it would be a second copy).
//! The settings (certificates, roots) come from `transport-common`'s `tls`
//! module, shared with the blocking transport.
//!
//! A server hands a TLS connection to the hub as soon as it is accepted,
//! wrapped in a [`LazyTls`] stream whose handshake runs as it is first
//! read or written: the connection task drives it like any other I/O, the
//! hub's login timeout covers it (a peer that never finishes is closed like
//! one that never logs in), and what the hub queues meanwhile is written
//! once the handshake is done. Each one holds a [`HandshakeSlot`] until its
//! handshake ends, which bounds how many are in progress.
//!
//! Without the feature the types here have only their plain variant, and
//! the server and client code that uses them stays the same.

use std::io;

#[cfg(feature = "tls")]
pub(crate) use with_tls::*;

use crate::runtime::Stream;

/// What a listener does with the connections it accepts.
#[derive(Clone)]
pub(crate) enum Accepting {
    /// Serves them as they are.
    Plain,
    /// Serves them over TLS.
    #[cfg(feature = "tls")]
    Tls(futures_rustls::TlsAcceptor),
}

impl Accepting {
    /// Whether connections are encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Accepting::Plain)
    }
}

impl std::fmt::Debug for Accepting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() { "Tls" } else { "Plain" })
    }
}

/// What a client does with each connection it opens.
#[derive(Clone)]
pub(crate) enum Connecting {
    /// Uses it as it is.
    Plain,
    /// Speaks TLS over it, verifying the server as `name`.
    #[cfg(feature = "tls")]
    Tls {
        connector: futures_rustls::TlsConnector,
        name: rustls::pki_types::ServerName<'static>,
    },
}

impl Connecting {
    /// `stream`, ready for the session: as it is, or after a TLS
    /// handshake.
    pub(crate) async fn open(&self, stream: Box<dyn Stream>) -> io::Result<Box<dyn Stream>> {
        match self {
            Connecting::Plain => Ok(stream),
            #[cfg(feature = "tls")]
            Connecting::Tls { connector, name } => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))?;
                Ok(Box::new(tls))
            }
        }
    }
}

#[cfg(feature = "tls")]
mod with_tls {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use futures_io::{AsyncRead, AsyncWrite};
    use futures_rustls::server::TlsStream;
    use futures_rustls::{Accept, TlsAcceptor};
    use transport_common::HandshakeSlot;
    use transport_common::tls::{ClientTls, ServerTls, TlsError};

    use super::{Accepting, Connecting};
    use crate::runtime::Stream;
    use transport_common::Address;

    impl Accepting {
        /// TLS with `tls`'s certificate.
        pub(crate) fn tls(tls: &ServerTls) -> Accepting {
            Accepting::Tls(TlsAcceptor::from(tls.config().clone()))
        }
    }

    impl Connecting {
        /// TLS with `tls`'s roots, verifying the server as the host of
        /// `addr` (or the name `tls` sets).
        pub(crate) fn tls(tls: &ClientTls, addr: &Address) -> Result<Connecting, TlsError> {
            Ok(Connecting::Tls {
                connector: futures_rustls::TlsConnector::from(tls.config().clone()),
                name: tls.server_name_for(addr)?,
            })
        }
    }

    /// A server connection's TLS stream, whose handshake runs as it is
    /// first read or written (see the module's docs).
    pub(crate) struct LazyTls {
        state: State,
    }

    enum State {
        Handshaking {
            accept: Box<Accept<Box<dyn Stream>>>,
            /// Given back when the handshake ends, however it ends.
            _slot: HandshakeSlot,
        },
        Ready(Box<TlsStream<Box<dyn Stream>>>),
        /// The handshake failed (reported once) or the stream was closed
        /// before it ended.
        Done,
    }

    impl LazyTls {
        /// `stream`, to be spoken to over TLS by `acceptor`, holding
        /// `slot` until the handshake ends.
        pub(crate) fn new(
            acceptor: &TlsAcceptor,
            stream: Box<dyn Stream>,
            slot: HandshakeSlot,
        ) -> Self {
            LazyTls {
                state: State::Handshaking {
                    accept: Box::new(acceptor.accept(stream)),
                    _slot: slot,
                },
            }
        }

        /// The TLS stream, once the handshake is done.
        fn poll_ready(
            &mut self,
            cx: &mut Context<'_>,
        ) -> Poll<io::Result<&mut TlsStream<Box<dyn Stream>>>> {
            if let State::Handshaking { accept, .. } = &mut self.state {
                match ready!(Pin::new(&mut **accept).poll(cx)) {
                    Ok(stream) => {
                        tracing::debug!("TLS handshake done");
                        self.state = State::Ready(Box::new(stream));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        self.state = State::Done;
                        return Poll::Ready(Err(e));
                    }
                }
            }
            match &mut self.state {
                State::Ready(stream) => Poll::Ready(Ok(stream)),
                _ => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the TLS handshake did not complete",
                ))),
            }
        }
    }

    use std::future::Future as _;

    impl AsyncRead for LazyTls {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let stream = ready!(self.get_mut().poll_ready(cx))?;
            Pin::new(stream).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for LazyTls {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let stream = ready!(self.get_mut().poll_ready(cx))?;
            Pin::new(stream).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let stream = ready!(self.get_mut().poll_ready(cx))?;
            Pin::new(stream).poll_write_vectored(cx, bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let stream = ready!(self.get_mut().poll_ready(cx))?;
            Pin::new(stream).poll_flush(cx)
        }

        /// Sends `close_notify` and shuts the socket down; a connection
        /// closed before its handshake ended is simply dropped.
        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            match &mut this.state {
                State::Ready(stream) => Pin::new(stream).poll_close(cx),
                _ => {
                    this.state = State::Done;
                    Poll::Ready(Ok(()))
                }
            }
        }
    }
}
