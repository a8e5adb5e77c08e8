//! The shared conformance suite, run against this crate's server and client
//! twice: spawning on async-std's executor (chosen explicitly, under
//! async-std's `block_on`), and on smol's (the default, under
//! `smol::block_on`).

use std::future::Future;

use chat_conformance::TestServer;
use chat_conformance::async_harness::{AsyncTestClient, Executor};
use transport_async_std::ServerConfig;
use transport_async_std::runtime::{AsyncStdRuntime, SmolRuntime};

/// async-std's `block_on`.
struct AsyncStd;

impl Executor for AsyncStd {
    fn new() -> Self {
        AsyncStd
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

/// smol's `block_on`.
struct Smol;

impl Executor for Smol {
    fn new() -> Self {
        Smol
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        smol::block_on(future)
    }
}

mod on_async_std {
    use super::*;

    fn start(config: ServerConfig) -> TestServer {
        chat_conformance::async_harness::start::<AsyncStd>(AsyncStdRuntime, config)
    }

    chat_conformance::server_suite!(start);
    chat_conformance::hardening_suite!(start);
    chat_conformance::client_suite!(start, AsyncTestClient<AsyncStdRuntime, AsyncStd>);
}

mod on_smol {
    use super::*;

    fn start(config: ServerConfig) -> TestServer {
        chat_conformance::async_harness::start::<Smol>(SmolRuntime, config)
    }

    chat_conformance::server_suite!(start);
    chat_conformance::hardening_suite!(start);
    chat_conformance::client_suite!(start, AsyncTestClient<SmolRuntime, Smol>);
}
