//! Running the suite against an async transport: one harness for every
//! runtime, given a [`Runtime`] and an [`Executor`] that blocks on futures.
//!
//! The server runs on its own thread under the executor and stops through a
//! oneshot signal; the client is the shared async client, waited on with
//! the executor, with the transport's own timer for timeouts. Over TLS
//! ([`start_tls`], and the client with [`Tls`](crate::tls::Tls)) both use
//! the test CA.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_proto::{ClientConfig, Event, MAX_DURATION, ServerConfig, after};
use transport_async::{Address, Client, ClientOptions, Runtime, Server, ServerOptions};
use transport_common::DynStore;

use crate::tls::{Plain, Wire};
use crate::{TestClient, TestServer};

/// Runs futures to completion on one runtime.
pub trait Executor: Send + 'static {
    /// A new executor.
    fn new() -> Self;
    /// Runs `future` to completion on the calling thread.
    fn block_on<F: Future>(&self, future: F) -> F::Output;
}

/// Starts a server on runtime `rt`, run by executor `E` on a thread.
pub fn start<E: Executor>(rt: impl Runtime, config: ServerConfig) -> TestServer {
    start_serving::<E, _>(rt, config, ServerOptions::default(), false, None)
}

/// [`start`], with durable history in `store`.
pub fn start_stored<E: Executor>(
    rt: impl Runtime,
    config: ServerConfig,
    store: DynStore,
) -> TestServer {
    start_serving::<E, _>(rt, config, ServerOptions::default(), false, Some(store))
}

/// [`start`], serving TLS with the test CA's certificate.
pub fn start_tls<E: Executor>(rt: impl Runtime, config: ServerConfig) -> TestServer {
    start_serving::<E, _>(rt, config, ServerOptions::default(), true, None)
}

/// [`start_tls`] with transport options.
pub fn start_tls_with<E: Executor>(
    rt: impl Runtime,
    config: ServerConfig,
    options: ServerOptions,
) -> TestServer {
    start_serving::<E, _>(rt, config, options, true, None)
}

fn start_serving<E: Executor, R: Runtime>(
    rt: R,
    config: ServerConfig,
    options: ServerOptions,
    tls: bool,
    store: Option<DynStore>,
) -> TestServer {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = futures_channel::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let executor = E::new();
        executor.block_on(async move {
            let mut server = match tls {
                false => Server::bind_on(rt, "127.0.0.1:0", config).await,
                true => {
                    let certificate = crate::tls::test_ca().server();
                    Server::bind_tls_on(rt, "127.0.0.1:0", config, certificate).await
                }
            }
            .expect("bind")
            .with_options(options);
            if let Some(store) = store {
                server = server.with_history_store(store).expect("restore");
            }
            addr_tx
                .send((server.local_addr().expect("addr"), server.handle()))
                .expect("send addr");
            let stop = async {
                let _ = stop_rx.await;
            };
            server.serve_with_shutdown(stop).await.expect("serve");
        });
    });
    let (addr, handle) = addr_rx.recv().expect("server started");
    let stop = move || {
        let _ = stop_tx.send(());
        thread.join().expect("server thread");
    };
    match tls {
        false => TestServer::new(addr, handle, stop),
        true => TestServer::new_tls(addr, handle, stop),
    }
}

/// The shared async client on runtime `R`, blocked on with `E`, over
/// wire `W`.
#[allow(missing_debug_implementations)]
pub struct AsyncTestClient<R, E, W = Plain> {
    client: Client,
    executor: E,
    _runtime: std::marker::PhantomData<fn() -> (R, W)>,
}

impl<R: Runtime + Default, E: Executor, W: Wire> TestClient for AsyncTestClient<R, E, W> {
    const TLS: bool = W::TLS;

    fn connect(
        addrs: &[SocketAddr],
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Self, String> {
        let executor = E::new();
        let addrs = Address::from(addrs);
        let client = executor
            .block_on(async {
                match W::TLS {
                    false => Client::connect_on(R::default(), addrs, name, config, options).await,
                    true => {
                        let tls = W::ca().client();
                        Client::connect_tls_on(R::default(), addrs, name, config, options, tls)
                            .await
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(AsyncTestClient {
            client,
            executor,
            _runtime: std::marker::PhantomData,
        })
    }

    fn say(&self, text: &str) {
        self.executor.block_on(self.client.say(text)).expect("say");
    }

    fn who(&self) {
        self.client.who().expect("who");
    }

    fn join(&self, room: &str) {
        self.client.join(room).expect("join");
    }

    fn say_in(&self, room: &str, text: &str) {
        self.executor
            .block_on(self.client.say_in(room, text))
            .expect("say_in");
    }

    fn pm(&self, to: &str, text: &str) {
        self.executor
            .block_on(self.client.pm(to, text))
            .expect("pm");
    }

    fn close(&self) {
        self.client.close("bye").expect("close");
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        let deadline = after(Instant::now(), timeout.min(MAX_DURATION));
        self.executor.block_on(async {
            let mut sleep = R::default().sleep_until(deadline);
            let mut event = std::pin::pin!(self.client.next_event());
            std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(e) = event.as_mut().poll(cx) {
                    return std::task::Poll::Ready(e);
                }
                sleep.as_mut().poll(cx).map(|()| None)
            })
            .await
        })
    }
}
