//! A bot on `transport-tokio` alone:
//! `cargo run -p transport-tokio --example tokio-bot [ADDR] [NAME]`.
//! Greets everyone who joins and answers `!time` with the seconds since the
//! Unix epoch; Ctrl-C says bye and leaves.

#![allow(clippy::print_stdout)]

use std::time::{SystemTime, UNIX_EPOCH};

use transport_tokio::{Client, ClientConfig, ClientOptions, Event, ReconnectPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let name = args.next().unwrap_or_else(|| "bot".into());
    let mut config = ClientConfig::default();
    config.reconnect = Some(ReconnectPolicy::default());
    let bot = Client::connect_with(addr, &name, config, ClientOptions::default()).await?;
    println!("logged in as {name}");
    loop {
        let event = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                bot.close("bot going to sleep")?;
                continue;
            }
            event = bot.next_event() => event,
        };
        match event {
            Some(Event::Joined { name: who, .. }) if who != name => {
                bot.say(&format!("welcome, {who}!")).await?
            }
            Some(Event::Message { text, .. }) if text.trim() == "!time" => {
                let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
                bot.say(&format!("it is {secs} seconds past the Unix epoch"))
                    .await?;
            }
            Some(other) => println!("{other:?}"),
            None => return Ok(()),
        }
    }
}
