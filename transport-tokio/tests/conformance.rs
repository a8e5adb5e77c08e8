//! The shared conformance suite, run against the tokio server and client.

use std::future::Future;

use chat_conformance::TestServer;
use chat_conformance::async_harness::{AsyncTestClient, Executor};
use transport_tokio::ServerConfig;
use transport_tokio::runtime::TokioRuntime;

/// A one-worker tokio runtime per server or client under test.
struct Tokio(tokio::runtime::Runtime);

impl Executor for Tokio {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Tokio(runtime)
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

fn start(config: ServerConfig) -> TestServer {
    chat_conformance::async_harness::start::<Tokio>(TokioRuntime, config)
}

chat_conformance::server_suite!(start);
chat_conformance::hardening_suite!(start);
chat_conformance::client_suite!(start, AsyncTestClient<TokioRuntime, Tokio>);
