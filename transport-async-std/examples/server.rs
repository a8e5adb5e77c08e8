//! The smallest real server: `cargo run -p transport-async-std --example async-std-server [ADDR]`.
//! Prints `listening on ADDR`. Its tasks run on async-std's executor.

#![allow(clippy::print_stdout)]

use transport_async_std::runtime::AsyncStdRuntime;
use transport_async_std::{Server, ServerConfig};

#[async_std::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let server = Server::bind_on(AsyncStdRuntime, addr, ServerConfig::default()).await?;
    println!("listening on {}", server.local_addr()?);
    server.serve().await
}
