//! The sans-IO core of a line-based chat protocol.
//!
//! `chat-proto` parses and emits chat frames, runs login, the room,
//! presence, keepalive and every limit, and never touches a socket, a thread,
//! a runtime or the clock: bytes and time (`Instant`) are passed in, and
//! bytes, events and deadlines come out. The transports (`transport-tokio`,
//! `transport-async-std`, `transport-std`) only move bytes and time between
//! sockets and this crate. PROTOCOL.md in the repository is the wire
//! specification.
//!
//! * [`Client`]: one client connection.
//! * [`Hub`]: the server, every connection and the room, over [`ConnId`]s.
//! * [`Decoder`], [`ClientFrame`], [`ServerFrame`]: the framing layer, for
//!   those who build their own state machines.
//! * [`Backoff`]: when a transport should retry a lost connection.
//! * [`NameKey`], [`is_mixed_script`]: a canonical key under which
//!   look-alike names are equal, and the test for names that mix scripts.
//! * [`sim`]: an in-memory network with a simulated clock, for tests.
//!
//! # The drain contract
//!
//! **After every call that changes a state machine (a command, an action or
//! a `handle_*` call), drain every `poll_*` method until it returns
//! `None`.** For a [`Hub`] that is one method, [`Hub::poll_output`], whose
//! [`Output`]s come in the order they must be acted on; for a [`Client`],
//! write what `poll_transmit` yields and act on what `poll_event` yields.
//! Then sleep no later than what `poll_timeout` returns, and call
//! `handle_timeout`. Skipping a drain delays output: a pong left in the
//! queue because nobody was reading lets the peer's keepalive expire. A
//! server loop that has several inputs in hand at once (what its
//! connections sent while it was busy) may apply them all, then drain the
//! hub once: the outputs are the same, in the same order, and a busy
//! room's messages go out together (a drain must still come before the
//! loop waits for anything).
//!
//! # A complete exchange
//!
//! Two clients and a hub, wired together by hand with a plain loop:
//!
//! ```
//! use std::time::Instant;
//! use chat_proto::{Client, ClientConfig, ConnId, Event, Hub, Output, ServerConfig};
//!
//! let now = Instant::now();
//! let mut hub = Hub::new(ServerConfig::default())?;
//! let mut zhangsan = (Client::new(ClientConfig::default(), now)?, hub.accept(now, None));
//! let mut lisi = (Client::new(ClientConfig::default(), now)?, hub.accept(now, None));
//!
//! // Moves bytes both ways until nothing is left to move (the drain).
//! fn pump(hub: &mut Hub, clients: &mut [&mut (Client, ConnId)], now: Instant) {
//!     loop {
//!         let mut moved = false;
//!         for (client, conn) in clients.iter_mut() {
//!             while let Some(bytes) = client.poll_transmit() {
//!                 hub.handle_input(*conn, now, &bytes);
//!                 moved = true;
//!             }
//!         }
//!         while let Some(output) = hub.poll_output() {
//!             // No connection closes in this exchange, and events are not
//!             // needed: only transmits are acted on.
//!             if let Output::Transmit(t) = output {
//!                 let (client, conn) = clients.iter_mut().find(|c| c.1 == t.conn).unwrap();
//!                 for bytes in &t.data {
//!                     client.handle_input(now, bytes);
//!                     hub.written(*conn, now, bytes.len());
//!                 }
//!                 moved = true;
//!             }
//!         }
//!         if !moved {
//!             return;
//!         }
//!     }
//! }
//!
//! zhangsan.0.login("zhangsan")?;
//! lisi.0.login("lisi")?;
//! pump(&mut hub, &mut [&mut zhangsan, &mut lisi], now);
//! lisi.0.say("did you have dinner")?;
//! pump(&mut hub, &mut [&mut zhangsan, &mut lisi], now);
//!
//! let events: Vec<Event> = std::iter::from_fn(|| zhangsan.0.poll_event()).collect();
//! assert_eq!(
//!     events,
//!     [
//!         Event::LoggedIn { name: "zhangsan".into() },
//!         Event::Joined { room: "lobby".into(), name: "zhangsan".into() },
//!         Event::Joined { room: "lobby".into(), name: "lisi".into() },
//!         Event::Message {
//!             room: "lobby".into(),
//!             from: "lisi".into(),
//!             text: "did you have dinner".into(),
//!             offset: Some(0),
//!             history: false,
//!         },
//!     ]
//! );
//! // The sender receives its own message too, in the same room order.
//! assert_eq!(
//!     std::iter::from_fn(|| lisi.0.poll_event()).last(),
//!     Some(Event::Message {
//!         room: "lobby".into(),
//!         from: "lisi".into(),
//!         text: "did you have dinner".into(),
//!         offset: Some(0),
//!         history: false,
//!     })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! * `arbitrary`: implements `arbitrary::Arbitrary` for the frame and
//!   string types, producing only valid values, for fuzz targets.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod config;
mod decode;
mod error;
mod frame;
pub mod history;
mod hub;
mod keepalive;
mod names;
mod reconnect;
pub mod sim;
mod text;

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;

pub use client::{Client, ClientOutput, ClientState, CloseReason, Event};
pub use config::{
    AddressLimits, AddressRange, Allowance, ClientConfig, DEFAULT_MAX_FRAME_LEN, FailedLogins,
    History, Keepalive, LoginMode, MAX_DURATION, MAX_MAX_FRAME_LEN, MIN_MAX_FRAME_LEN, RateLimit,
    ServerConfig,
};
pub use decode::{Decoder, MAX_TAG_LEN, RawFrame};
pub use error::{
    ConfigError, ErrorCode, InvalidName, InvalidText, InvalidToken, PeerError, UsageError,
};
pub use frame::{ClientFrame, ServerFrame};
pub use hub::{
    ConnId, Hub, HubCloseReason, HubEvent, HubStats, Output, Peer, SHUTDOWN_REASON, Transmit,
};
pub use keepalive::after;
pub use names::{NameKey, is_mixed_script};
pub use reconnect::{Backoff, ReconnectPolicy};
pub use text::{
    CapList, Code, MAX_CODE_LEN, MAX_NAME_CHARS, MAX_TOKEN_LEN, Name, NameList, RoomList, Text,
    Token,
};
