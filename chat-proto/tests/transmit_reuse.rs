//! The adapter may give a transmit's buffer back ([`Hub::recycle`]) once
//! its bytes are written: the next transmit is handed out in it, rather
//! than in a new allocation, and its bytes are the same.

use std::time::Instant;

use bytes::Bytes;
use chat_proto::{Hub, Output, ServerConfig, Transmit};

fn transmit(hub: &mut Hub) -> Transmit {
    loop {
        match hub.poll_output() {
            Some(Output::Transmit(t)) => return t,
            Some(_) => {}
            None => panic!("no transmit"),
        }
    }
}

#[test]
fn a_recycled_buffer_carries_the_next_transmit() {
    let now = Instant::now();
    let mut hub = Hub::new(ServerConfig::default()).unwrap();
    let a = hub.accept(now, None);
    hub.handle_input(a, now, b"iam:a\n");
    let first = transmit(&mut hub);
    assert_eq!(first.data.concat(), b"ok:a\n");
    while hub.poll_output().is_some() {}
    hub.written(a, now, first.len());
    while hub.poll_output().is_some() {}

    // A buffer with room (of the size the hub keeps: a burst's larger
    // buffers are dropped), and old contents that must not leak out.
    let mut buffer = Vec::with_capacity(16);
    buffer.push(Bytes::from_static(b"stale"));
    let address = buffer.as_ptr();
    hub.recycle(buffer);
    hub.handle_input(a, now, b"msg:hi\n");
    let second = transmit(&mut hub);
    assert_eq!(second.data.concat(), b"msg:a:hi\n");
    assert_eq!(second.data.as_ptr(), address, "a new buffer was allocated");

    // A buffer without room is not worth keeping.
    hub.recycle(Vec::new());
    hub.handle_input(a, now, b"ping:x\n");
    assert_eq!(transmit(&mut hub).data.concat(), b"pong:x\n");
}
