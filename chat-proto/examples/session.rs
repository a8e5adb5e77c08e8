//! A whole chat session played in memory: two clients and a hub, wired by
//! `chat_proto::sim` with a simulated clock, printing every byte on the wire.
//!
//! Run it with `cargo run -p chat-proto --example session`. Nothing here
//! touches a socket or sleeps: a minute of keepalive passes in microseconds.
//! PROTOCOL.md, section "The seed's session, byte for byte", shows its
//! output, and `chat-proto/tests/protocol_doc.rs` checks that it still
//! does.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chat_proto::sim::{Direction, Network, PeerId};
use chat_proto::{ClientConfig, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (net, text, peers) = play()?;
    print!("{text}");
    let mut net = net;
    for (peer, name) in peers {
        println!();
        println!("events of {name}:");
        for event in net.take_events(peer) {
            println!("  {event:?}");
        }
    }
    Ok(())
}

/// A played session: the network, the transcript as printed, and the
/// clients with their names.
pub(crate) type Played =
    Result<(Network, String, Vec<(PeerId, &'static str)>), Box<dyn std::error::Error>>;

/// Plays the session; returns the network, the transcript as printed, and
/// the clients with their names.
pub(crate) fn play() -> Played {
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

    let peers = vec![(zhangsan, "zhangsan"), (lisi, "lisi")];
    let text = transcript(&net, start, &peers);
    Ok((net, text, peers))
}

/// Every frame that crossed the wire, one per line, with its time and
/// direction.
pub(crate) fn transcript(net: &Network, start: Instant, peers: &[(PeerId, &str)]) -> String {
    let name = |peer| {
        peers
            .iter()
            .find(|(p, _)| *p == peer)
            .map_or("?", |(_, n)| *n)
    };
    let mut out = String::new();
    for wire in net.transcript() {
        let at = wire.at.duration_since(start).as_secs_f64();
        let arrow = match wire.direction {
            Direction::ToServer => format!("{:>8} -> server  ", name(wire.peer)),
            Direction::ToClient => format!("  server -> {:<8}", name(wire.peer)),
        };
        for line in String::from_utf8_lossy(&wire.bytes).lines() {
            out.push_str(&format!("{at:7.3}s  {arrow}  {line}\n"));
        }
    }
    out
}
