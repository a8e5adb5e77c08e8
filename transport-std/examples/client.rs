//! The smallest real client:
//! `cargo run -p transport-std --example std-client [ADDR] [NAME]`.
//! Logs in, says hello, prints what the room says until the server closes.

#![allow(clippy::print_stdout)]

use transport_std::{Client, ClientConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let name = args.next().unwrap_or_else(|| "zhangsan".into());
    let client = Client::connect(addr, &name, ClientConfig::default())?;
    client.say("hello")?;
    while let Some(event) = client.next_event() {
        println!("{event:?}");
    }
    Ok(())
}
