//! The chat client on tokio.
//!
//! ```no_run
//! use chat_proto::{ClientConfig, Event};
//! use transport_tokio::Client;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:7878", "zhangsan", ClientConfig::default()).await?;
//! client.say("did you have dinner")?;
//! while let Some(event) = client.next_event().await {
//!     if let Event::Message { from, text } = event {
//!         println!("{from}: {text}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::ops::Deref;

use chat_proto::ClientConfig;
use tokio::net::{ToSocketAddrs, lookup_host};
use transport_common::{AsyncClient, ClientOptions, ConnectError, connect};

use crate::runtime::{TokioConnector, TokioRuntime};

/// A connected, logged-in chat client. Keepalive runs in a background task;
/// commands and events are those of [`AsyncClient`], which this derefs to.
/// Dropping it closes the connection.
#[derive(Debug)]
pub struct Client {
    inner: AsyncClient,
}

impl Client {
    /// Connects to `addr` and logs in as `name`; returns once the server
    /// answered `ok:` (or refused the login).
    pub async fn connect(
        addr: impl ToSocketAddrs,
        name: &str,
        config: ClientConfig,
    ) -> Result<Client, ConnectError> {
        Self::connect_with(addr, name, config, ClientOptions::default()).await
    }

    /// [`connect`](Self::connect) with transport options, such as a
    /// reconnect policy.
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConnectError> {
        let addr = lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let inner = connect(TokioRuntime, TokioConnector, addr, name, config, options).await?;
        Ok(Client { inner })
    }
}

impl Deref for Client {
    type Target = AsyncClient;

    fn deref(&self) -> &AsyncClient {
        &self.inner
    }
}
