//! A bot on `transport-tokio` alone:
//! `cargo run -p transport-tokio --example tokio-bot [ADDR] [NAME]`.
//! Greets everyone who joins and answers `!time` with the seconds since the
//! Unix epoch; Ctrl-C says bye and leaves. It answers live messages only:
//! what the server replays from a room's history (on joining, or resuming
//! after a reconnect) was answered before, or is stale.
//!
//! `transport-tokio/tests/examples.rs` runs [`serve_bot`] against a real
//! server, so this example is tested in CI.

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
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            bot.close("bot going to sleep")?;
            // Drain until the session ends, so the bye goes out.
            while bot.next_event().await.is_some() {}
            Ok(())
        }
        done = serve_bot(&bot, &name, |event| println!("{event:?}")) => done,
    }
}

/// Answers `bot`'s events until its session ends: greets who joins, answers
/// `!time`; hands every other event to `other`.
pub(crate) async fn serve_bot(
    bot: &Client,
    name: &str,
    mut other: impl FnMut(&Event),
) -> Result<(), Box<dyn std::error::Error>> {
    while let Some(event) = bot.next_event().await {
        match &event {
            Event::Joined { name: who, .. } if who != name => {
                bot.say(&format!("welcome, {who}!")).await?
            }
            Event::Message {
                text,
                history: false,
                ..
            } if text.trim() == "!time" => {
                let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
                bot.say(&format!("it is {secs} seconds past the Unix epoch"))
                    .await?;
            }
            _ => other(&event),
        }
    }
    Ok(())
}
