//! The shared conformance suite, run against this crate's server and client
//! twice: spawning on async-std, and spawning on smol under `smol::block_on`.

use std::future::Future;

use chat_conformance::async_harness::{AsyncTestClient, Executor, start};
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

    chat_conformance::server_suite!(start::<AsyncStdRuntime, AsyncStd>);
    chat_conformance::client_suite!(
        start::<AsyncStdRuntime, AsyncStd>,
        AsyncTestClient<AsyncStdRuntime, AsyncStd>
    );
}

mod on_smol {
    use super::*;

    chat_conformance::server_suite!(start::<SmolRuntime, Smol>);
    chat_conformance::client_suite!(start::<SmolRuntime, Smol>, AsyncTestClient<SmolRuntime, Smol>);
}
