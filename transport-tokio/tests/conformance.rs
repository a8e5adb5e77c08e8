//! The shared conformance suite, run against the tokio server and client.

use std::net::SocketAddr;
use std::time::Duration;

use chat_conformance::{TestClient, TestServer};
use chat_proto::{ClientConfig, Event, ReconnectPolicy, ServerConfig};
use tokio::runtime::Runtime;
use transport_tokio::{Client, ClientOptions, Server};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn start(config: ServerConfig) -> TestServer {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime().block_on(async move {
            let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
            addr_tx
                .send(server.local_addr().expect("addr"))
                .expect("send addr");
            let stop = async {
                let _ = stop_rx.await;
            };
            server.serve_with_shutdown(stop).await.expect("serve");
        });
    });
    let addr = addr_rx.recv().expect("server started");
    TestServer::new(addr, move || {
        let _ = stop_tx.send(());
        thread.join().expect("server thread");
    })
}

struct TokioClient {
    client: Client,
    rt: Runtime,
}

impl TestClient for TokioClient {
    fn connect(
        addr: SocketAddr,
        name: &str,
        config: ClientConfig,
        reconnect: Option<ReconnectPolicy>,
    ) -> Result<Self, String> {
        let rt = runtime();
        let mut options = ClientOptions::default();
        options.reconnect = reconnect;
        let client = rt
            .block_on(Client::connect_with(addr, name, config, options))
            .map_err(|e| e.to_string())?;
        Ok(TokioClient { client, rt })
    }

    fn say(&self, text: &str) {
        self.client.say(text).expect("say");
    }

    fn who(&self) {
        self.client.who().expect("who");
    }

    fn close(&self) {
        self.client.close("bye").expect("close");
    }

    fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.rt
            .block_on(async { tokio::time::timeout(timeout, self.client.next_event()).await })
            .ok()
            .flatten()
    }
}

chat_conformance::server_suite!(start);
chat_conformance::client_suite!(start, TokioClient);
