//! The smallest real server: `cargo run -p transport-std --example std-server [ADDR]`.
//! Prints `listening on ADDR`.

#![allow(clippy::print_stdout)]

use transport_std::{Server, ServerConfig};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let server = Server::bind(addr, ServerConfig::default())?;
    println!("listening on {}", server.local_addr()?);
    server.serve()
}
