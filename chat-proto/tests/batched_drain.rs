//! A server loop may apply a batch of inputs that arrived together and
//! drain the hub once after them (the drain contract in the crate docs):
//! every connection gets the same bytes, and the application the same
//! events, as when the hub is drained after every input.
//!
//! Two hubs are fed the same inputs, generated at random from a seed: one
//! drained after each input, the other after batches of 1 to 12 inputs.
//! Everything handed out is reported written at once (readers keep up), so
//! only the drains differ.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_proto::{ConnId, Hub, HubEvent, Output, ServerConfig};

/// A small deterministic generator (xorshift), so a failure can be replayed
/// from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a hub did for the application and each connection.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    bytes: HashMap<ConnId, Vec<u8>>,
    closes: Vec<ConnId>,
    events: Vec<HubEvent>,
}

fn drain(hub: &mut Hub, now: Instant, seen: &mut Seen) {
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Transmit(t) => {
                hub.written(t.conn, now, t.len());
                seen.bytes
                    .entry(t.conn)
                    .or_default()
                    .extend(t.data.concat());
            }
            Output::Close(id) => seen.closes.push(id),
            Output::Event(e) => seen.events.push(e),
            _ => {}
        }
    }
}

/// One input: bytes from connection `conn` (by its place among the
/// connections), or its end of input.
enum Input {
    Bytes(usize, Vec<u8>),
    Eof(usize),
}

fn inputs(rng: &mut Rng, conns: usize, steps: usize) -> Vec<Input> {
    let mut out = Vec::new();
    for step in 0..steps {
        let conn = rng.below(conns);
        let frame = match rng.below(10) {
            0 => format!("iam:n{conn}\n"),
            1 => "who:\n".to_owned(),
            2 => format!("ping:{step}\n"),
            3 => "cap:rooms\n".to_owned(),
            4 => format!("join:r{}\n", rng.below(3)),
            5 => format!("say:r{}:{step}\n", rng.below(3)),
            6 => "nonsense\n".to_owned(),
            7 if rng.below(20) == 0 => {
                out.push(Input::Eof(conn));
                continue;
            }
            _ => format!("msg:{step} from {conn}\n"),
        };
        // Sometimes a frame arrives in two pieces.
        let bytes = frame.into_bytes();
        if rng.below(4) == 0 && bytes.len() > 2 {
            let cut = 1 + rng.below(bytes.len() - 1);
            out.push(Input::Bytes(conn, bytes[..cut].to_vec()));
            out.push(Input::Bytes(conn, bytes[cut..].to_vec()));
        } else {
            out.push(Input::Bytes(conn, bytes));
        }
    }
    out
}

/// Feeds `inputs` to a new hub, draining after batches of sizes drawn by
/// `batch` (a batch of 1 is draining after every input).
fn run(inputs: &[Input], conns: usize, mut batch: impl FnMut() -> usize) -> Seen {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    let start = Instant::now();
    let mut hub = Hub::new(config).unwrap();
    let mut seen = Seen::default();
    let ids: Vec<ConnId> = (0..conns).map(|_| hub.accept(start, None)).collect();
    drain(&mut hub, start, &mut seen);
    let mut left = batch();
    for (i, input) in inputs.iter().enumerate() {
        // Time moves on as it would, the same for both hubs.
        let now = start + Duration::from_micros(i as u64 * 100);
        match input {
            Input::Bytes(c, bytes) => hub.handle_input(ids[*c], now, bytes),
            Input::Eof(c) => hub.handle_eof(ids[*c], now),
        }
        left -= 1;
        if left == 0 {
            drain(&mut hub, now, &mut seen);
            left = batch();
        }
    }
    let end = start + Duration::from_micros(inputs.len() as u64 * 100);
    drain(&mut hub, end, &mut seen);
    seen
}

#[test]
fn draining_after_a_batch_gives_what_draining_after_each_input_gives() {
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let conns = 2 + rng.below(6);
        let inputs = inputs(&mut rng, conns, 300);
        let each = run(&inputs, conns, || 1);
        let batched = run(&inputs, conns, || 1 + rng.below(12));
        assert!(!each.bytes.is_empty());
        assert_eq!(each.bytes, batched.bytes, "seed {seed}: bytes differ");
        assert_eq!(each.closes, batched.closes, "seed {seed}: closes differ");
        assert_eq!(each.events, batched.events, "seed {seed}: events differ");
    }
}
