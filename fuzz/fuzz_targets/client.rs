//! Fuzzes the `Client` state machine with arbitrary sequences of operations:
//! server bytes (raw, or valid server frames cut anywhere), time passing,
//! timeouts, application commands with arbitrary strings, and disconnects.
//! Every `poll_*` is drained after every operation. Checks that:
//!
//! * nothing panics;
//! * after `handle_timeout(t)`, `poll_timeout()` is `None` or later than `t`,
//!   and it is `None` exactly when the client is closed;
//! * `Event::Closed` comes at most once and nothing follows it: no event,
//!   and no byte after the drain that yielded it;
//! * `close()` queues a `bye:`, after which the client sends nothing but
//!   `pong:` (PROTOCOL.md section 6), and a closing or closed client refuses
//!   every command with `UsageError::Closed`;
//! * every byte the client transmits decodes, with a decoder of the same
//!   maximum frame length, as valid `ClientFrame`s.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use chat_proto::{
    Client, ClientConfig, ClientFrame, ClientState, CloseReason, Decoder, Event, Keepalive,
    ServerFrame, UsageError,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    /// Raw bytes from the server.
    Input(&'a [u8]),
    /// Valid server frames, delivered in two reads cut at `cut`.
    Frames {
        frames: Vec<ServerFrame<'a>>,
        cut: u16,
    },
    /// Time passes, at most two minutes a step.
    Advance(u32),
    /// `handle_timeout` at the current time.
    HandleTimeout,
    /// Time jumps to the client's deadline, which is then handled.
    AtDeadline,
    Login(&'a str),
    Say(&'a str),
    Who,
    Close(&'a str),
    Disconnected,
}

#[derive(Debug)]
struct Setup {
    max_frame_len: usize,
    idle_ms: u64,
    timeout_ms: u64,
}

impl<'a> Arbitrary<'a> for Setup {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Setup {
            max_frame_len: u.int_in_range(256..=1024)?,
            idle_ms: u.int_in_range(1..=60_000)?,
            timeout_ms: u.int_in_range(1..=30_000)?,
        })
    }
}

/// The harness's view of the client.
struct Harness {
    client: Client,
    now: Instant,
    /// Decodes everything the client transmits.
    wire: Decoder,
    /// The last client frame decoded from `wire`.
    last_sent: Option<ClientFrame<'static>>,
    /// The client sent its `bye:`.
    bye_sent: bool,
    /// `close()` succeeded: the coming drain must end with its `bye:`.
    expect_bye: bool,
    /// How the client closed, once `Event::Closed` was seen.
    closed: Option<CloseReason>,
    /// A drain completed after `Event::Closed`: no byte may come any more.
    silent: bool,
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    setup: Setup,
    ops: Vec<Op<'a>>,
}

fuzz_target!(|input: Input<'_>| {
    let Input { setup, ops } = input;
    let mut config = ClientConfig::default();
    config.max_frame_len = setup.max_frame_len;
    config.keepalive = Keepalive::new(
        Duration::from_millis(setup.idle_ms),
        Duration::from_millis(setup.timeout_ms),
    );
    let now = Instant::now();
    let mut h = Harness {
        client: Client::new(config, now).expect("valid config"),
        now,
        wire: Decoder::new(setup.max_frame_len),
        last_sent: None,
        bye_sent: false,
        expect_bye: false,
        closed: None,
        silent: false,
    };
    h.drain();
    for op in ops {
        h.apply(op);
        h.drain();
    }
});

impl Harness {
    fn apply(&mut self, op: Op<'_>) {
        let closed = matches!(
            self.client.state(),
            ClientState::Closing | ClientState::Closed
        );
        match op {
            Op::Input(bytes) => self.client.handle_input(self.now, bytes),
            Op::Frames { frames, cut } => {
                let mut bytes = BytesMut::new();
                for frame in &frames {
                    frame.encode(&mut bytes);
                }
                let cut = usize::from(cut) % (bytes.len() + 1);
                self.client.handle_input(self.now, &bytes[..cut]);
                self.drain();
                self.client.handle_input(self.now, &bytes[cut..]);
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms % 120_001)),
            Op::HandleTimeout => self.handle_timeout(),
            Op::AtDeadline => {
                if let Some(deadline) = self.client.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.handle_timeout();
            }
            Op::Login(name) => check_command(closed, self.client.login(name)),
            Op::Say(text) => check_command(closed, self.client.say(text)),
            Op::Who => check_command(closed, self.client.who()),
            Op::Close(reason) => {
                let result = self.client.close(reason);
                self.expect_bye = result.is_ok();
                check_command(closed, result);
            }
            Op::Disconnected => self.client.disconnected(self.now),
        }
    }

    fn handle_timeout(&mut self) {
        self.client.handle_timeout(self.now);
        if let Some(next) = self.client.poll_timeout() {
            assert!(
                next > self.now,
                "deadline {next:?} not after {:?}",
                self.now
            );
        }
    }

    /// Drains every output and checks it.
    fn drain(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            assert!(!bytes.is_empty(), "empty transmit");
            assert!(!self.silent, "transmitted {bytes:?} after Closed");
            let (last_sent, bye_sent) = (&mut self.last_sent, &mut self.bye_sent);
            self.wire.decode(&bytes, |raw| {
                let frame = raw
                    .and_then(ClientFrame::parse)
                    .unwrap_or_else(|e| panic!("client sent a bad frame: {e}"));
                assert!(
                    !*bye_sent || matches!(frame, ClientFrame::Pong(_)),
                    "client sent {frame:?} after its bye:"
                );
                *bye_sent |= matches!(frame, ClientFrame::Bye(_));
                *last_sent = Some(frame.into_owned());
            });
        }
        assert_eq!(self.wire.buffered(), 0, "client sent a partial frame");
        while let Some(event) = self.client.poll_event() {
            assert!(
                self.closed.is_none(),
                "event {event:?} after Closed {:?}",
                self.closed
            );
            if let Event::Closed { reason } = event {
                self.closed = Some(reason);
            }
        }
        assert_eq!(self.closed.is_some(), self.client.is_closed());
        // A live session always has a deadline (keepalive, reconnect); one
        // closed for good has none but its socket's linger
        // (`close_linger`), which ends once the socket is gone.
        match self.client.poll_timeout() {
            None => assert!(self.client.is_closed(), "a live session without a timer"),
            Some(at) if self.client.is_closed() => {
                let linger = self.client.config().close_linger;
                assert!(
                    at <= chat_proto::after(self.now, linger),
                    "a closed session's timer past its socket's linger"
                );
            }
            Some(_) => {}
        }
        if std::mem::take(&mut self.expect_bye) {
            assert!(
                matches!(self.last_sent, Some(ClientFrame::Bye(_))),
                "close() did not send bye: last sent {:?}",
                self.last_sent
            );
        }
        self.silent |= self.closed.is_some();
    }
}

/// A closed client refuses every command, and no command panics.
fn check_command(closed: bool, result: Result<(), UsageError>) {
    if closed {
        assert_eq!(result, Err(UsageError::Closed));
    }
}
