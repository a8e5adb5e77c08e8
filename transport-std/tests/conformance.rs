//! The shared conformance suite, run against the blocking server and
//! client, in plain text and (feature `tls`) over TLS.

use std::net::SocketAddr;
use std::time::Duration;

use chat_conformance::tls::{Plain, Wire};
use chat_conformance::{TestClient, TestServer};
use transport_std::{Client, ClientConfig, ClientOptions, DynStore, Event, Server, ServerConfig};

fn start(config: ServerConfig) -> TestServer {
    serve(Server::bind("127.0.0.1:0", config).expect("bind"), false)
}

fn start_stored(config: ServerConfig, store: DynStore) -> TestServer {
    let server = Server::bind("127.0.0.1:0", config).expect("bind");
    serve(server.with_history_store(store).expect("restore"), false)
}

/// Serves `server` on a thread; `tls` if it serves the test CA's
/// certificate.
fn serve(server: Server, tls: bool) -> TestServer {
    let addr = server.local_addr().expect("addr");
    let stop = server.handle();
    let thread = std::thread::spawn(move || server.serve().expect("serve"));
    let handle = stop.clone();
    let stop = move || {
        stop.shutdown();
        thread.join().expect("server thread");
    };
    match tls {
        false => TestServer::new(addr, handle, stop),
        true => TestServer::new_tls(addr, handle, stop),
    }
}

/// The blocking client, over wire `W`.
struct StdClient<W = Plain>(Client, std::marker::PhantomData<W>);

impl<W: Wire> TestClient for StdClient<W> {
    const TLS: bool = W::TLS;

    fn connect(
        addrs: &[SocketAddr],
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Self, String> {
        connect::<W>(addrs, name, config, options)
            .map(|client| StdClient(client, std::marker::PhantomData))
            .map_err(|e| e.to_string())
    }

    fn say(&self, text: &str) {
        self.0.say(text).expect("say");
    }

    fn who(&self) {
        self.0.who().expect("who");
    }

    fn join(&self, room: &str) {
        self.0.join(room).expect("join");
    }

    fn say_in(&self, room: &str, text: &str) {
        self.0.say_in(room, text).expect("say_in");
    }

    fn pm(&self, to: &str, text: &str) {
        self.0.pm(to, text).expect("pm");
    }

    fn close(&self) {
        self.0.close("bye").expect("close");
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.0.next_event_timeout(timeout).ok().flatten()
    }
}

#[cfg(not(feature = "tls"))]
fn connect<W: Wire>(
    addrs: &[SocketAddr],
    name: &str,
    config: ClientConfig,
    options: ClientOptions,
) -> Result<Client, transport_std::ConnectError> {
    Client::connect_with(addrs, name, config, options)
}

#[cfg(feature = "tls")]
fn connect<W: Wire>(
    addrs: &[SocketAddr],
    name: &str,
    config: ClientConfig,
    options: ClientOptions,
) -> Result<Client, transport_std::ConnectError> {
    match W::TLS {
        false => Client::connect_with(addrs, name, config, options),
        true => {
            let tls = W::ca().client();
            Client::connect_tls(addrs, name, config, options, tls)
        }
    }
}

chat_conformance::server_suite!(start);
chat_conformance::hardening_suite!(start);
chat_conformance::flow_suite!(start);
chat_conformance::history_suite!(start, start_stored);
chat_conformance::client_suite!(start, StdClient);

#[cfg(feature = "tls")]
mod over_tls {
    use super::*;
    use chat_conformance::tls::{Tls, Untrusted};
    use transport_std::ServerOptions;

    fn start(config: ServerConfig) -> TestServer {
        start_with(config, ServerOptions::default())
    }

    fn start_with(config: ServerConfig, options: ServerOptions) -> TestServer {
        let certificate = chat_conformance::tls::test_ca().server();
        let server = Server::bind_tls("127.0.0.1:0", config, certificate).expect("bind");
        serve(server.with_options(options), true)
    }

    chat_conformance::server_suite!(start);
    chat_conformance::client_suite!(start, StdClient<Tls>);
    chat_conformance::tls_suite!(start_with, StdClient<Untrusted>);
}
