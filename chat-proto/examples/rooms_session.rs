//! A session with rooms, private messages, history and a resume, played in
//! memory like `session`: a client of the seed's protocol (`lisi`, as `nc`
//! would be), a client with the `rooms` and `history` capabilities
//! (`zhangsan`, the reference client), and the hub, printing every byte on
//! the wire.
//!
//! Run it with `cargo run -p chat-proto --example rooms_session`.
//! PROTOCOL.md, section "Rooms and a resume, byte for byte", shows its
//! output, and `chat-proto/tests/protocol_doc.rs` checks that it still
//! does.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chat_proto::sim::Network;
use chat_proto::{ClientConfig, ReconnectPolicy, ServerConfig};

#[path = "session.rs"]
#[allow(dead_code)]
pub(crate) mod session;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_, text, _) = play()?;
    print!("{text}");
    Ok(())
}

/// Plays the session; returns the network, the transcript as printed, and
/// the clients with their names.
pub(crate) fn play() -> session::Played {
    let start = Instant::now();
    let mut net = Network::new(ServerConfig::default(), start)?;
    net.record();

    // lisi speaks the seed's protocol, in the default room.
    let lisi = net.connect(ClientConfig::plain())?;
    net.client(lisi).login("lisi")?;
    net.run();
    net.client(lisi).say("anyone here?")?;
    net.run();

    // zhangsan asks for rooms and history, and reconnects by itself.
    let mut config = ClientConfig::default();
    config.reconnect = Some(ReconnectPolicy {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(5),
        max_attempts: None,
    });
    config.jitter_seed = 1;
    let zhangsan = net.connect(config)?;
    net.client(zhangsan).login("zhangsan")?;
    net.run();
    net.advance(Duration::from_secs(1));
    net.client(zhangsan).join("rust")?;
    net.run();
    net.client(zhangsan)
        .say_in("rust", "who writes rust here?")?;
    net.client(zhangsan).say("hi lisi")?;
    net.client(zhangsan).pm("lisi", "psst")?;
    net.run();
    net.advance(Duration::from_secs(1));
    net.client(zhangsan).who_in("rust")?;
    net.client(zhangsan).rooms()?;
    net.client(zhangsan).pm("wangwu", "are you there?")?;
    net.run();

    // zhangsan's connection drops; lisi speaks meanwhile.
    net.advance(Duration::from_secs(1));
    net.disconnect(zhangsan);
    net.client(lisi).say("zhangsan?")?;
    net.run();
    net.advance(Duration::from_secs(2));
    net.client(zhangsan).say("sorry, tunnel")?;
    net.run();

    let peers = vec![(zhangsan, "zhangsan"), (lisi, "lisi")];
    let text = session::transcript(&net, start, &peers);
    Ok((net, text, peers))
}
