//! The shared conformance suite, run against the tokio server and client,
//! in plain text and over TLS.

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

fn start_stored(config: ServerConfig, store: transport_tokio::DynStore) -> TestServer {
    chat_conformance::async_harness::start_stored::<Tokio>(TokioRuntime, config, store)
}

chat_conformance::server_suite!(start);
chat_conformance::hardening_suite!(start);
chat_conformance::flow_suite!(start);
chat_conformance::history_suite!(start, start_stored);
chat_conformance::client_suite!(start, AsyncTestClient<TokioRuntime, Tokio>);

mod over_tls {
    use super::*;
    use chat_conformance::tls::{Tls, Untrusted};
    use transport_tokio::ServerOptions;

    fn start(config: ServerConfig) -> TestServer {
        chat_conformance::async_harness::start_tls::<Tokio>(TokioRuntime, config)
    }

    fn start_with(config: ServerConfig, options: ServerOptions) -> TestServer {
        chat_conformance::async_harness::start_tls_with::<Tokio>(TokioRuntime, config, options)
    }

    chat_conformance::server_suite!(start);
    chat_conformance::client_suite!(start, AsyncTestClient<TokioRuntime, Tokio, Tls>);
    chat_conformance::tls_suite!(start_with, AsyncTestClient<TokioRuntime, Tokio, Untrusted>);
}
