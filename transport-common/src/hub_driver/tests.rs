//! The hub driver's tests: routing, writing through, pausing, TLS peers,
//! shutdown. The handle's commands and reads are tested beside them, in
//! `commands.rs`.

use super::*;

pub(super) fn peer() -> SocketAddr {
    "127.0.0.1:1".parse().unwrap()
}

pub(super) fn take(outbox: &Outbox) -> crate::outbox::Taken {
    outbox
        .take_blocking(Some(std::time::Duration::ZERO))
        .unwrap_or_default()
}

#[test]
fn routes_output_and_tracks_sockets_until_writers_finish() {
    let now = Instant::now();
    let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
    let (a, out_a) = driver.accept(now, peer());
    let (b, out_b) = driver.accept(now, peer());
    driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
    driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
    // Routed when the batch ends.
    assert_eq!(take(&out_a).data.concat(), b"");
    driver.end_batch(now);
    assert_eq!(take(&out_a).data.concat(), b"ok:a\njoin:b\n");
    assert_eq!(take(&out_b).data.concat(), b"ok:b\n");

    driver.handle(HubMsg::Input(b, Bytes::from_static(b"bye:x\n")), now);
    driver.end_batch(now);
    let last = take(&out_b);
    assert_eq!(
        (last.data.concat(), last.close),
        (b"bye:x\n".to_vec(), true)
    );
    assert_eq!(take(&out_a).data.concat(), b"left:b\n");
    // The writer of b is still flushing: its socket still counts, and
    // its index is not reused meanwhile.
    assert_eq!(driver.sockets(), 2);
    let (c, _out_c) = driver.accept(now, peer());
    assert_ne!(c.index(), b.index());
    driver.handle(HubMsg::Closed(b), now);
    assert_eq!(driver.sockets(), 2);
    assert_eq!(driver.hub().connections(), 2);
    driver.handle(HubMsg::Closed(a), now);
    assert_eq!(driver.sockets(), 1);
    assert_eq!(driver.hub().members(), 0);
}

/// A socket that takes `room` bytes, then would block.
#[derive(Debug)]
struct Socket {
    room: std::sync::Mutex<usize>,
    got: std::sync::Mutex<Vec<u8>>,
}

impl TryWrite for Socket {
    fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let mut room = self.room.lock().unwrap();
        let mut got = self.got.lock().unwrap();
        let mut n = 0;
        for buf in bufs {
            let take = buf.len().min(*room - n);
            got.extend_from_slice(&buf[..take]);
            n += take;
        }
        *room -= n;
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

#[test]
fn a_batch_is_written_through_where_the_socket_takes_it_and_reported() {
    let now = Instant::now();
    let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
    let (a, out_a) = driver.accept(now, peer());
    let (b, out_b) = driver.accept(now, peer());
    let roomy = Arc::new(Socket {
        room: std::sync::Mutex::new(1 << 20),
        got: Default::default(),
    });
    let tight = Arc::new(Socket {
        room: std::sync::Mutex::new(4),
        got: Default::default(),
    });
    driver.set_writer(a, roomy.clone());
    driver.set_writer(b, tight.clone());
    driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
    driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
    driver.handle(HubMsg::Input(a, Bytes::from_static(b"msg:hi\n")), now);
    driver.end_batch(now);
    // a's socket took the whole batch: nothing is left for its writer,
    // and the hub counts it written.
    assert_eq!(*roomy.got.lock().unwrap(), b"ok:a\njoin:b\nmsg:a:hi\n");
    assert_eq!(take(&out_a).data.concat(), b"");
    assert_eq!(driver.hub().in_flight(a), Some(0));
    // b's took 4 bytes; its writer gets the rest, in order.
    assert_eq!(*tight.got.lock().unwrap(), b"ok:b");
    assert_eq!(take(&out_b).data.concat(), b"\nmsg:a:hi\n");
    assert_eq!(driver.hub().in_flight(b), Some(10));
}

#[test]
fn reading_pauses_within_the_batch_and_resumes_with_the_hub() {
    let now = Instant::now();
    let mut config = ServerConfig::default();
    config.rate_limit = Some(chat_proto::RateLimit {
        per_second: 1000,
        burst: 1,
    });
    let mut driver = HubDriver::new(config, Duration::ZERO).unwrap();
    let (a, out_a) = driver.accept(now, peer());
    driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
    driver.end_batch(now);
    // Over the rate: paused at once, before the batch ends.
    driver.handle(HubMsg::Input(a, Bytes::from_static(b"msg:1\nmsg:2\n")), now);
    assert!(out_a.input_paused());
    // The next token is due by the time the batch ends: reading
    // resumes, although the hub never said it paused.
    let later = now + Duration::from_millis(5);
    driver.handle(HubMsg::Written(a, 0), later);
    driver.end_batch(later);
    assert!(!driver.hub().is_input_paused(a));
    assert!(!out_a.input_paused());
}

#[test]
fn a_secret_is_taken_over_tls_and_refused_in_clear_off_loopback() {
    let now = Instant::now();
    let mut config = ServerConfig::default();
    config.login = chat_proto::LoginMode::Application;
    let mut driver = HubDriver::new(config, Duration::ZERO).unwrap();
    let events = driver.server_handle().events();
    // A documentation address (RFC 5737): not loopback.
    let remote: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let (plain, out_plain) = driver.accept(now, remote);
    let (tls, out_tls) = driver.accept_tls(now, remote);
    driver.handle(HubMsg::Input(plain, Bytes::from_static(b"iam:a:pw\n")), now);
    // The batch's output is routed at its end.
    driver.end_batch(now);
    assert!(
        take(&out_plain).data.concat().starts_with(b"err:insecure:"),
        "a secret in clear from afar is refused"
    );
    driver.handle(HubMsg::Input(tls, Bytes::from_static(b"iam:b:pw\n")), now);
    driver.end_batch(now);
    let mut requested = None;
    while let Some(event) = events.try_next() {
        if let HubEvent::LoginRequested { conn, name, secret } = event {
            requested = Some((conn, name, secret));
        }
    }
    assert_eq!(
        requested,
        Some((tls, "b".to_owned(), Some("pw".to_owned())))
    );
    assert_eq!(take(&out_tls).data.concat(), b"");
}

#[test]
fn shutdown_and_abort_reach_every_writer() {
    let now = Instant::now();
    let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
    let (_, out) = driver.accept(now, peer());
    driver.shutdown(now);
    let taken = take(&out);
    assert_eq!(taken.data.concat(), b"bye:server shutting down\n");
    assert!(taken.close);
    driver.abort_all();
    assert!(take(&out).abort);
}

#[test]
fn a_huge_timer_slack_does_not_overflow() {
    let now = Instant::now();
    let mut driver = HubDriver::new(ServerConfig::default(), Duration::MAX).unwrap();
    let _ = driver.accept(now, peer());
    let at = driver.wake_at().expect("a login timeout is armed");
    assert!(at > now);
    assert!(matches!(driver.end_batch(now), Next::Wait(Some(_))));
}
