//! The smallest real client:
//! `cargo run -p transport-async-std --example async-std-client [ADDR] [NAME]`.
//! Logs in, says hello, prints what the room says until the server closes.

#![allow(clippy::print_stdout)]

use transport_async_std::runtime::AsyncStdRuntime;
use transport_async_std::{Client, ClientConfig, ClientOptions};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let name = args.next().unwrap_or_else(|| "zhangsan".into());
    let client = Client::connect_on(
        AsyncStdRuntime,
        addr,
        &name,
        ClientConfig::default(),
        ClientOptions::default(),
    )
    .await?;
    client.say("hello").await?;
    while let Some(event) = client.next_event().await {
        println!("{event:?}");
    }
    Ok(())
}
