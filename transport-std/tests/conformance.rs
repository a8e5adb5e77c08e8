//! The shared conformance suite, run against the blocking server and client.

use std::net::SocketAddr;
use std::time::Duration;

use chat_conformance::{TestClient, TestServer};
use transport_std::{Client, ClientConfig, ClientOptions, DynStore, Event, Server, ServerConfig};

fn start(config: ServerConfig) -> TestServer {
    serve(Server::bind("127.0.0.1:0", config).expect("bind"))
}

fn start_stored(config: ServerConfig, store: DynStore) -> TestServer {
    let server = Server::bind("127.0.0.1:0", config).expect("bind");
    serve(server.with_history_store(store).expect("restore"))
}

fn serve(server: Server) -> TestServer {
    let addr = server.local_addr().expect("addr");
    let stop = server.handle();
    let thread = std::thread::spawn(move || server.serve().expect("serve"));
    TestServer::new(addr, stop.clone(), move || {
        stop.shutdown();
        thread.join().expect("server thread");
    })
}

impl TestClient for StdClient {
    fn connect(
        addrs: &[SocketAddr],
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Self, String> {
        Client::connect_with(addrs, name, config, options)
            .map(StdClient)
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

struct StdClient(Client);

chat_conformance::server_suite!(start);
chat_conformance::hardening_suite!(start);
chat_conformance::history_suite!(start, start_stored);
chat_conformance::client_suite!(start, StdClient);
