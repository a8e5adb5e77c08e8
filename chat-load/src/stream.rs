//! A generator connection's bytes: plain TCP, or TLS over it (`--tls-ca`).
//!
//! The scenarios read and write a [`Stream`] and split it into a
//! [`ReadHalf`] and a [`WriteHalf`] for the fan-out's reader and writer
//! tasks. Plain TCP is split into tokio's owned halves, as before TLS
//! existed, so the plain figures are measured the same way; a TLS stream
//! (tokio-rustls, with the settings of `transport-common`'s `tls` module,
//! the same the servers and clients use) goes through `tokio::io::split`,
//! which shares the session between the two halves.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use transport_common::tls::ClientTls;

use crate::LoadError;

/// How the generator's connections speak to the server.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// TLS trusting the CA certificates in `ca_pem_file`, verifying the
    /// server as `name`, or as `target`'s IP address.
    pub fn new(
        ca_pem_file: &str,
        name: Option<&str>,
        target: SocketAddr,
    ) -> Result<TlsClient, LoadError> {
        let config_error = |e: transport_common::tls::TlsError| LoadError::Config(e.to_string());
        let mut tls = ClientTls::from_ca_file(ca_pem_file).map_err(config_error)?;
        if let Some(name) = name {
            tls = tls.with_server_name(name).map_err(config_error)?;
        }
        let name = tls.server_name_for(&target.into()).map_err(config_error)?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::clone(tls.config())),
            name,
        })
    }

    /// `tcp`, after a TLS handshake.
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<Stream> {
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A connection to the server.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The halves for a reader task and a writer task.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(tcp) => {
                let (rd, wr) = tcp.into_split();
                (ReadHalf::Plain(rd), WriteHalf::Plain(wr))
            }
            Stream::Tls(tls) => {
                let (rd, wr) = tokio::io::split(*tls);
                (ReadHalf::Tls(rd), WriteHalf::Tls(wr))
            }
        }
    }
}

/// The reading half of a [`Stream`].
#[derive(Debug)]
pub enum ReadHalf {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS over TCP.
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub enum WriteHalf {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS over TCP.
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

/// Forwards `AsyncRead` to the variant inside.
macro_rules! forward_read {
    ($type:ty) => {
        impl AsyncRead for $type {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

/// Forwards `AsyncWrite` to the variant inside.
macro_rules! forward_write {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
                    Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    Self::Plain(s) => s.is_write_vectored(),
                    Self::Tls(s) => s.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(s) => Pin::new(s).poll_flush(cx),
                    Self::Tls(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

forward_read!(Stream);
forward_write!(Stream);
forward_read!(ReadHalf);
forward_write!(WriteHalf);
