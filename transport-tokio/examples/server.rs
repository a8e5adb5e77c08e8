//! The smallest real server: `cargo run -p transport-tokio --example tokio-server [ADDR]`.
//! Prints `listening on ADDR`; Ctrl-C shuts it down gracefully.

#![allow(clippy::print_stdout)]

use transport_tokio::{Server, ServerConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let server = Server::bind(addr, ServerConfig::default()).await?;
    println!("listening on {}", server.local_addr()?);
    server
        .serve_with_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
