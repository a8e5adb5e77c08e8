//! The shared conformance suite, run against this crate's server and client
//! twice: spawning on async-std's executor (chosen explicitly, under
//! async-std's `block_on`), and on smol's (the default, under
//! `smol::block_on`); each in plain text and over TLS.

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

    fn start_stored(config: ServerConfig, store: transport_async_std::DynStore) -> TestServer {
        chat_conformance::async_harness::start_stored::<AsyncStd>(AsyncStdRuntime, config, store)
    }

    chat_conformance::server_suite!(start);
    chat_conformance::hardening_suite!(start);
    chat_conformance::flow_suite!(start);
    chat_conformance::history_suite!(start, start_stored);
    chat_conformance::client_suite!(start, AsyncTestClient<AsyncStdRuntime, AsyncStd>);

    mod over_tls {
        use super::*;
        use chat_conformance::tls::{Tls, Untrusted};
        use transport_async_std::ServerOptions;

        fn start(config: ServerConfig) -> TestServer {
            chat_conformance::async_harness::start_tls::<AsyncStd>(AsyncStdRuntime, config)
        }

        fn start_with(config: ServerConfig, options: ServerOptions) -> TestServer {
            chat_conformance::async_harness::start_tls_with::<AsyncStd>(
                AsyncStdRuntime,
                config,
                options,
            )
        }

        chat_conformance::server_suite!(start);
        chat_conformance::client_suite!(start, AsyncTestClient<AsyncStdRuntime, AsyncStd, Tls>);
        chat_conformance::tls_suite!(start_with, AsyncTestClient<AsyncStdRuntime, AsyncStd, Untrusted>);
    }
}

mod on_smol {
    use super::*;

    fn start(config: ServerConfig) -> TestServer {
        chat_conformance::async_harness::start::<Smol>(SmolRuntime, config)
    }

    fn start_stored(config: ServerConfig, store: transport_async_std::DynStore) -> TestServer {
        chat_conformance::async_harness::start_stored::<Smol>(SmolRuntime, config, store)
    }

    chat_conformance::server_suite!(start);
    chat_conformance::hardening_suite!(start);
    chat_conformance::flow_suite!(start);
    chat_conformance::history_suite!(start, start_stored);
    chat_conformance::client_suite!(start, AsyncTestClient<SmolRuntime, Smol>);

    mod over_tls {
        use super::*;
        use chat_conformance::tls::{Tls, Untrusted};
        use transport_async_std::ServerOptions;

        fn start(config: ServerConfig) -> TestServer {
            chat_conformance::async_harness::start_tls::<Smol>(SmolRuntime, config)
        }

        fn start_with(config: ServerConfig, options: ServerOptions) -> TestServer {
            chat_conformance::async_harness::start_tls_with::<Smol>(SmolRuntime, config, options)
        }

        chat_conformance::server_suite!(start);
        chat_conformance::client_suite!(start, AsyncTestClient<SmolRuntime, Smol, Tls>);
        chat_conformance::tls_suite!(start_with, AsyncTestClient<SmolRuntime, Smol, Untrusted>);
    }
}
