//! A whole chat session played in memory: two clients and a hub, wired by
//! `chat_proto::sim` with a simulated clock, printing every byte on the wire.
//!
//! Run it with `cargo run -p chat-proto --example session`. Nothing here
//! touches a socket or sleeps: a minute of keepalive passes in microseconds.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chat_proto::sim::{Direction, Network};
use chat_proto::{ClientConfig, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut net = Network::new(ServerConfig::default(), start)?;
    net.record();

    let zhangsan = net.connect(ClientConfig::plain())?;
    let lisi = net.connect(ClientConfig::plain())?;
    net.client(zhangsan).login("zhangsan")?;
    net.run();
    net.client(lisi).login("lisi")?;
    net.run();
    net.client(zhangsan).say("did you have dinner")?;
    net.run();
    net.advance(Duration::from_secs(2));
    net.client(lisi).say("yes, 饺子. you?")?;
    net.client(lisi).who()?;
    net.run();
    // Half a minute of silence: both sides ping, both answer.
    net.advance(Duration::from_secs(31));
    net.client(lisi).close("gotta go")?;
    net.run();

    let name = |peer| if peer == zhangsan { "zhangsan" } else { "lisi" };
    for wire in net.transcript() {
        let at = wire.at.duration_since(start).as_secs_f64();
        let arrow = match wire.direction {
            Direction::ToServer => format!("{:>8} -> server  ", name(wire.peer)),
            Direction::ToClient => format!("  server -> {:<8}", name(wire.peer)),
        };
        for line in String::from_utf8_lossy(&wire.bytes).lines() {
            println!("{at:7.3}s  {arrow}  {line}");
        }
    }
    for peer in [zhangsan, lisi] {
        println!();
        println!("events of {}:", name(peer));
        for event in net.take_events(peer) {
            println!("  {event:?}");
        }
    }
    Ok(())
}
